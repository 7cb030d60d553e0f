"""``rate_limit``: at most ``max`` messages per sender in any ``per``-long window.

Config:

- ``max`` (required): most messages let through per window, at least 1.
- ``per``: the window, a duration (``30s``, ``1m``, ``2h``; a bare integer is
  seconds); default ``1m``.
- ``reply``: what the customer is told when a message is refused, at most once
  per window: the first refused message gets ``Block(reason, reply)``, the rest
  of that window ``Block(reason)`` with no reply, so a flood is not answered
  with a flood. The next reply can come ``per`` after the last one. Absent: a
  short sentence in English and Chinese (:data:`DEFAULT_REPLY`); ``""`` sends
  nothing. It is sent as written: the pipeline does not render templates, so
  ``{{ ... }}`` would reach the customer literally.

The window slides: a message passes when fewer than ``max`` messages of the
same sender (``context.key``: the contact, else the conversation) passed in the
``per`` seconds before ``context.now``. Refused messages do not count, so a
sender who keeps sending gets through again as soon as old messages leave the
window.

State lives in this processor instance, in memory — per worker process. With
several workers a sender's messages may be counted by different workers (the
limit is then up to ``max`` per worker), and a restart forgets the counts. That
is the price of keeping the hot path free of I/O: no store round trip for each
message of each conversation. Memory is bounded: a sender idle for ``per`` is
forgotten (its state could no longer refuse anything), and beyond
:data:`MAX_SENDERS` senders the least recently seen is forgotten first (it then
starts a fresh window). A sender costs about 300 bytes plus 8 per message in
its window (measured: ~40 MB for 100 000 senders with ten messages each).

The processor is built once per flow revision, so editing the flow starts every
sender afresh; a retried activity runs the pipeline again, so the retried
message counts twice.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from engine.flow.compile import parse_duration
from engine.pipeline.types import Block, Message, PipelineContext

__all__ = ["DEFAULT_PER", "DEFAULT_REPLY", "MAX_SENDERS", "RateLimit"]

DEFAULT_PER = "1m"
DEFAULT_REPLY = (
    "You are sending messages faster than we can read them; please wait a moment before sending more. "
    "您发送消息太频繁了，请稍等片刻再发。"
)
#: Senders remembered per processor; beyond this the least recently seen is dropped.
MAX_SENDERS = 100_000


class _Sender:
    """One sender's recent accepted messages (a ring of at most ``max`` times) and last reply."""

    __slots__ = ("next", "replied_at", "seen", "times")

    def __init__(self) -> None:
        # Filled up to ``max`` entries, then overwritten oldest first: the oldest of the
        # last ``max`` accepted messages is all a sliding window needs.
        self.times = array("d")
        self.next = 0
        self.replied_at: float | None = None
        self.seen = 0.0

    def admit(self, now: float, limit: int, per: float) -> bool:
        """Count the message and say yes, or say no if ``limit`` passed in the last ``per`` seconds."""
        if len(self.times) < limit:
            self.times.append(now)
            return True
        if now - self.times[self.next] < per:
            return False
        self.times[self.next] = now
        self.next = (self.next + 1) % limit
        return True

    def may_reply(self, now: float, per: float) -> bool:
        """True once per window: the first refusal gets the reply, the rest are silent."""
        if self.replied_at is not None and now - self.replied_at < per:
            return False
        self.replied_at = now
        return True


def _max_from(config: Mapping[str, Any]) -> int:
    limit = config.get("max")
    if limit is None:
        raise ValueError("rate_limit needs max: the most messages let through per period, e.g. {max: 10, per: 1m}")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"max must be a whole number of messages, e.g. 10; got {limit!r}")
    if limit < 1:
        raise ValueError(f"max must be at least 1; got {limit}")
    return limit


def _per_from(config: Mapping[str, Any]) -> tuple[float, str]:
    """The window in seconds, and as written (for the log)."""
    per = config.get("per", DEFAULT_PER)
    if isinstance(per, bool) or not isinstance(per, (str, int)):
        raise TypeError(f"per must be a duration such as 30s, 1m or 2h; got {per!r}")
    try:
        ms = parse_duration(per)
    except ValueError:
        raise ValueError(f"per must be a duration such as 30s, 1m or 2h; got {per!r}") from None
    if not ms or ms <= 0:
        raise ValueError(f"per must be longer than zero; got {per!r}")
    return ms / 1000, per if isinstance(per, str) else f"{per}s"


def _reply_from(config: Mapping[str, Any]) -> str | None:
    reply = config.get("reply", DEFAULT_REPLY)
    if not isinstance(reply, str):
        raise TypeError(f"reply must be text; got {reply!r}")
    return reply or None


class RateLimit:
    """Lets at most ``max`` messages per sender through in any ``per`` window."""

    def __init__(self, config: Mapping[str, Any], *, max_senders: int = MAX_SENDERS) -> None:
        self.max = _max_from(config)
        self.per, per_text = _per_from(config)
        self.reply = _reply_from(config)
        self.reason = f"rate limited: more than {self.max} messages in {per_text}"
        self.max_senders = max_senders
        # Least recently seen first, so both idle senders and the overflow leave from the front.
        self._senders: OrderedDict[str, _Sender] = OrderedDict()
        # Activities may run processors from several threads; one check-and-count must not interleave.
        self._lock = threading.Lock()

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        now = context.now
        with self._lock:
            self._forget_idle(now)
            sender = self._sender(context.key, now)
            if sender.admit(now, self.max, self.per):
                return message
            reply = self.reply if sender.may_reply(now, self.per) else None
        return Block(self.reason, reply=reply)

    @property
    def sender_count(self) -> int:
        """How many senders are remembered."""
        return len(self._senders)

    def _sender(self, key: str, now: float) -> _Sender:
        sender = self._senders.get(key)
        if sender is None:
            sender = self._senders[key] = _Sender()
            if len(self._senders) > self.max_senders:
                self._senders.popitem(last=False)
        else:
            self._senders.move_to_end(key)
        sender.seen = now
        return sender

    def _forget_idle(self, now: float) -> None:
        # A sender unseen for a whole window has nothing in it and no recent reply:
        # forgetting it changes nothing. The front is the least recently seen.
        while self._senders:
            oldest = next(iter(self._senders.values()))
            if now - oldest.seen < self.per:
                return
            self._senders.popitem(last=False)
