"""What a channel may ask of the server: the narrow interface instead of ``engine.server``.

The server implements :class:`ChannelHost` (``engine/server/channel_host.py``) over
its store and the conversations' runtime client; a channel gets it in its
:class:`~engine.channels.registry.ChannelConfig`. Everything here speaks in the
channel's terms (contacts, logged messages, an inbound text), so a connector
imports neither the store nor the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.channels.types import Attachment, OutboundMessage, channel_address
from engine.settings_sections import DEFAULT_ACCOUNT


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer as the flow sees them (``contact``)."""

    id: str
    name: str | None = None
    locale: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """A message of the conversation log; ``seq`` orders the log and is a client's cursor."""

    seq: int
    conversation_id: str
    message_id: str
    #: in | out
    direction: str
    sender: str
    text: str
    at: str
    choices: tuple[str, ...] = ()
    status: str = ""


@dataclass(frozen=True, slots=True)
class InboundText:
    """A customer's message a channel hands over, already tied to its contact."""

    #: the channel's address (``webchat``, ``telegram:support``)
    channel: str
    #: unique per channel; a repeat of one id is the same message (redelivery, retry)
    message_id: str
    text: str
    contact: Contact
    #: when it arrived (ISO 8601)
    at: str
    #: replies must come back through the node that holds the customer's connection
    held_by_node: bool = False
    #: the customer's id on the channel (a chat id, a phone number): replies go there; "" for web chat
    sender: str = ""
    #: what the customer tapped (a button press), when the text is its label
    choice: str | None = None
    #: images and files as references (flows see them as ``message.attachments``)
    attachments: tuple[Attachment, ...] = ()
    #: typed parts (location, sticker ...) the text is the fallback of
    parts: tuple[Mapping[str, Any], ...] = ()
    #: the vendor's payload of the message, kept in the store as it came
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message durably accepted: logged, and queued in its conversation."""

    message: LoggedMessage
    conversation_id: str
    #: the conversation already had it (a retry): nothing new happens
    duplicate: bool


class ChannelHost(Protocol):
    """The server's side of a channel."""

    #: where a channel may keep files of its own (web chat's visitor key)
    data_dir: Path
    #: longest inbound message, in characters (``limits.message_max_chars``)
    max_message_chars: int

    async def find_contact(self, channel: str, external_id: str) -> Contact | None:
        """The contact known on ``channel`` by ``external_id``; None before their first message."""
        ...

    async def resolve_contact(self, channel: str, external_id: str, *, name: str | None, locale: str | None) -> Contact:
        """The contact of ``external_id`` on ``channel``, created on first use."""
        ...

    async def history(self, contact_id: str, *, after_seq: int) -> list[LoggedMessage]:
        """The customer-visible messages of the contact's latest conversation after ``after_seq``."""
        ...

    async def accept(
        self,
        message: InboundText,
        *,
        conversation_id: str | None = None,
        typing: Callable[[], Awaitable[None]] | None = None,
    ) -> Accepted:
        """Log the message, then hand it to its conversation (a new one after the last ended).

        ``conversation_id`` is the channel's guess (the one its session used last);
        ``typing`` is called once the message is logged when a bot reply is coming
        (not while the conversation waits for an agent). Raises NoFlowLive, or what
        made the hand-over fail (the logged message is then marked failed, and a
        retry of the same ``message_id`` sets it right).
        """
        ...

    async def enqueue(self, message: InboundText) -> Accepted:
        """Log the message (durable from then on) and hand it to its conversation in the background.

        For channels whose vendor waits for the answer (webhooks): the answer need not
        wait for the conversation. Messages of one chat keep their order; a failed
        hand-over is retried, and one a stop cut off is resumed at the next start.
        """
        ...

    def customer_typing(self, conversation_id: str, typing: bool) -> None:
        """The customer started (or stopped) typing in a conversation: the agents who see it are told."""
        ...

    async def log_reply(self, message: OutboundMessage, *, channel: str, status: str) -> LoggedMessage:
        """Write a reply to the log (a channel that logs itself: its ``seq`` is the cursor)."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What a connector's factory is given for one account."""

    kind: str
    account: str
    #: the account's settings, ``${env:}`` references resolved
    params: Mapping[str, Any]
    #: the server, when one runs here (``flowdesk serve``); None in a standalone worker
    host: ChannelHost | None = None

    @property
    def address(self) -> str:
        return channel_address(self.kind, self.account)

    @property
    def settings_path(self) -> str:
        """Where the account is written in the settings, for messages: ``channels.whatsapp.accounts.sales``."""
        account = "" if self.account == DEFAULT_ACCOUNT else f".accounts.{self.account}"
        return f"channels.{self.kind}{account}"
