"""The inbound pipeline as the runtime runs it (a local activity of the workflow).

Only ``normalize`` is built in so far; the Decoder/Processor/Encoder protocols and
the other processors (sensitive_words, pii_redact, rate_limit, plugins) arrive
with the message-pipeline work. Until then a stage without an implementation
passes the message on unchanged and says so in the worker log once.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from engine.flow.model import CompiledFlow, Stage

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 4000
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_warned: set[str] = set()


def normalize_text(text: str, *, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Trim, drop control characters (keeping line breaks), collapse runs of spaces, cap length."""
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    lines = [_SPACES.sub(" ", line).strip() for line in kept.splitlines()]
    collapsed = "\n".join(line for line in lines if line)
    return collapsed[:max_length]


def _apply(stage: Stage, message: dict[str, Any]) -> dict[str, Any]:
    if stage.processor == "normalize":
        config = stage.config if isinstance(stage.config, dict) else {}
        limit = int(config.get("max_length", DEFAULT_MAX_LENGTH))
        text = normalize_text(str(message.get("text", "")), max_length=limit)
        return {**message, "text": text}
    if stage.processor not in _warned:
        _warned.add(stage.processor)
        log.warning("processor %r is not available yet; messages pass through it unchanged", stage.processor)
    return message


def run_inbound(flow: CompiledFlow, message: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """Run the flow's inbound stages; returns (message, blocked reason, reply)."""
    current = dict(message)
    for stage in flow.inbound:
        try:
            current = _apply(stage, current)
        except Exception:  # a processor must never crash a conversation
            log.exception("processor %r failed on a message of flow %r", stage.processor, flow.name)
            if stage.on_error == "block":
                return current, f"processor {stage.processor} failed", None
    return current, None, None
