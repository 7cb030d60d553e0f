"""``order_numbers``: a pipeline processor that spots order numbers and flags the message.

It finds the first order number written as ``#123456``, ``订单123456``,
``订单号：123456`` or ``order 123456`` / ``order no. 123456`` (full-width digits and
``＃`` too) and sets ``message.flags[<flag>]`` to its digits, so a flow routes on it::

    pipeline:
      inbound:
        - order_numbers: { flag: order_number }
    ...
    route:
      switch:
        - if: "message.flags.order_number"
          goto: track_order

The text itself is left as it is. Config (every key optional):

- ``flag``: the flag's name (default ``order_number``);
- ``min_digits`` / ``max_digits``: how long an order number is (default 6 to 12).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from engine.pipeline.types import Message, PipelineContext

DEFAULT_FLAG = "order_number"
DEFAULT_MIN_DIGITS = 6
DEFAULT_MAX_DIGITS = 12

#: What may stand right before the digits: a hash sign, 订单(号|编号), "order" (no., number, #).
_PREFIX = r"(?:[#＃]|订单(?:编号|号)?[:：]?\s*|\border\s*(?:no\.?|number|[#＃])?\s*[:：]?\s*)"


class OrderNumbers:
    """Flags a message that mentions an order number; built once per flow stage, used for every message."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.flag = str(config.get("flag", DEFAULT_FLAG))
        if not self.flag.isidentifier():
            # Flows read it as message.flags.<flag>: it must be a valid name there.
            raise ValueError(f"flag must be a name made of letters, digits and '_', got {self.flag!r}")
        low = int(config.get("min_digits", DEFAULT_MIN_DIGITS))
        high = int(config.get("max_digits", DEFAULT_MAX_DIGITS))
        if not 1 <= low <= high:
            raise ValueError(f"min_digits ({low}) must be at least 1 and at most max_digits ({high})")
        # Compiled once here, not per message: the runner keeps this instance.
        self.pattern = re.compile(_PREFIX + rf"(\d{{{low},{high}}})(?!\d)", re.IGNORECASE)

    def find(self, text: str) -> str | None:
        """The first order number in ``text`` as ASCII digits, or None."""
        match = self.pattern.search(text)
        if match is None:
            return None
        return "".join(str(unicodedata.decimal(c)) for c in match.group(1))

    def process(self, message: Message, context: PipelineContext) -> Message:
        number = self.find(message.text)
        if number is None:
            return message
        return message.replace(flags={**message.flags, self.flag: number})
