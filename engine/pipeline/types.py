"""What pipeline stages see and return.

A channel's :class:`Decoder` turns its raw payload into a :class:`Message`; the
flow's processors (:class:`Processor`) run in order on it — inbound before the
interpreter sees the message, outbound before the reply is encoded — and a
channel's :class:`Encoder` turns the result into its payload.

A processor returns the message (changed or not; it may add ``flags`` and
``tags`` that flows read as ``message.flags.<name>``) or a :class:`Block` that
stops it, with a reason for the log and an optional reply to the customer.
Processors are synchronous: they run inside a (local) activity, in a worker
thread beside the event loop, and should take microseconds to milliseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Block", "Decoder", "Encoder", "Message", "PipelineContext", "Processor"]


@dataclass
class Message:
    """One message going through a pipeline.

    ``flags`` are named annotations for routing (``{"profanity": True}``), ``tags``
    free labels; both reach the flow with the message. ``ai_text``, when set, is
    what AI providers get instead of ``text`` (``pii_redact`` with ``scope: ai``).
    """

    id: str
    text: str
    channel: str
    direction: str = "in"  # in | out
    flags: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    ai_text: str | None = None
    choices: list[str] = field(default_factory=list)

    def replace(self, **changes: Any) -> Message:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Block:
    """Stop the message. ``reason`` goes to the log; ``reply`` (if any) to the customer."""

    reason: str
    reply: str | None = None


@dataclass(frozen=True)
class PipelineContext:
    """Where a message is and what the installation provides.

    ``key`` identifies the sender for per-sender state (``rate_limit``): the
    contact when known, else the conversation. ``word_lists`` are the settings'
    named word lists, files already resolved to absolute paths.
    """

    flow: str
    conversation_id: str
    direction: str
    key: str
    now: float
    word_lists: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)


@runtime_checkable
class Processor(Protocol):
    """Message -> Message or Block. Built from its stage's config: ``Class(config)``."""

    def process(self, message: Message, context: PipelineContext) -> Message | Block: ...


@runtime_checkable
class Decoder(Protocol):
    """A channel's raw payload -> the messages in it (a webhook may carry several)."""

    def decode(self, raw: Any) -> list[Message]: ...


@runtime_checkable
class Encoder(Protocol):
    """A message -> the channel's payload (rich content degrades to what the channel shows)."""

    def encode(self, message: Message) -> Any: ...
