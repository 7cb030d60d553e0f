"""The shape of a channel: what every connector under ``connectors/channels/`` provides.

A channel is one account of one kind (``telegram``, ``whatsapp:sales``, ``webchat``).
It says what it can show (:class:`Capabilities`), sends one
:class:`OutboundMessage` and returns a :class:`Receipt`. A channel that receives
webhooks also checks a request's signature on the raw bytes before anything is
parsed (``verify``) and turns a verified request into what it carries
(``decode``: :class:`Incoming` messages and :class:`StatusUpdate` s). A channel
may serve routes of its own (web chat's socket, a vendor's handshake) and reach
the server only through the :class:`~engine.channels.host.ChannelHost` it is
given, never by importing it.

These types are the public contract for channel authors: the runtime converts its
Temporal-facing ``DeliverInput`` into an :class:`OutboundMessage`, so a channel
never sees workflow internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, runtime_checkable

# The account a channel's top-level keys configure (``channels.<kind>: {...}``).
from engine.settings_sections import DEFAULT_ACCOUNT


def channel_address(kind: str, account: str = DEFAULT_ACCOUNT) -> str:
    """How flows, deliveries and the log name one account: ``telegram``, ``whatsapp:sales``."""
    return kind if account == DEFAULT_ACCOUNT else f"{kind}:{account}"


def webhook_path(kind: str, account: str = DEFAULT_ACCOUNT) -> str:
    """The path a vendor calls for one account (``/webhooks/telegram``, ``/webhooks/whatsapp/sales``)."""
    return f"/webhooks/{kind}" if account == DEFAULT_ACCOUNT else f"/webhooks/{kind}/{account}"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can show; the rest is degraded (:mod:`engine.channels.degrade`)."""

    text: bool = True
    #: tappable choices (buttons, quick replies); without them choices become a numbered list
    choices: bool = False
    images: bool = False
    files: bool = False
    #: longest text one message may carry, in characters; None: no limit worth splitting for
    max_text_length: int | None = None
    #: how long after the customer's last message a reply may be sent (WhatsApp: 24 h); None: always
    reply_window: timedelta | None = None
    #: vendor-approved templates can be sent (``say: {template: ...}``; WhatsApp): outside the
    #: reply window they are the only way to reach the customer
    templates: bool = False
    #: replies reach the customer only through the node holding their connection (web chat
    #: sockets): in a cluster the node delivers them from its own task queue
    held_by_node: bool = False


_ATTACHMENT_KINDS = ("image", "file", "audio", "video", "sticker")


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image or file, kept as a reference the channel can fetch (never the bytes)."""

    kind: Literal["image", "file", "audio", "video", "sticker"]
    url: str = ""
    #: the vendor's own id of the media, when it is fetched by id rather than by URL
    media_id: str = ""
    name: str = ""
    mime_type: str = ""

    def as_dict(self) -> dict[str, str]:
        """As flows (``message.attachments``), the log and workflow inputs carry it: only the fields it has."""
        fields = {
            "kind": self.kind,
            "url": self.url,
            "media_id": self.media_id,
            "name": self.name,
            "mime_type": self.mime_type,
        }
        return {k: v for k, v in fields.items() if v}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        """The attachment :meth:`as_dict` gave; an unknown kind is a file."""
        kind = str(data.get("kind") or "image")
        return cls(
            kind=kind if kind in _ATTACHMENT_KINDS else "file",  # type: ignore[arg-type]
            url=str(data.get("url") or ""),
            media_id=str(data.get("media_id") or ""),
            name=str(data.get("name") or ""),
            mime_type=str(data.get("mime_type") or ""),
        )


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to a customer; ``key`` is the same on every retry of one delivery."""

    conversation_id: str
    key: str
    text: str
    choices: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    #: bot | agent | system
    sender: str = "bot"
    #: the contact as the flow sees it (``id``, ``name``, ``locale`` ...); the recipient's
    #: address on the channel is in ``recipient``
    contact: Mapping[str, Any] = field(default_factory=dict)
    #: the customer's id on this channel (a Telegram chat id, a phone number); "" for web chat
    recipient: str = ""
    account: str = DEFAULT_ACCOUNT
    #: when the reply was queued (ISO 8601, workflow time)
    at: str = ""
    #: what produced the reply (an AI answer's provider ...); logged with it
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: the flow revision that wrote it, for a channel that writes the log entry itself
    flow: str = ""
    revision: str = ""
    #: when the customer last wrote (ISO 8601); "" when unknown. A channel with a reply
    #: window (WhatsApp: 24 h) refuses a free-form reply after it
    customer_at: str = ""
    #: a vendor template to send instead of free text (WhatsApp outside its window):
    #: ``{"name": ..., "language": ..., "params": [...]}``; empty: none
    template: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the channel did with an :class:`OutboundMessage`."""

    #: sent: the vendor took it; duplicate: this key was sent before; stored: kept for the
    #: customer's next connection (web chat with no socket open)
    status: Literal["sent", "duplicate", "stored"]
    #: the vendor's id of the message (for delivery statuses and edits)
    channel_message_id: str | None = None
    #: the channel wrote the conversation log's entry itself (web chat: its seq is the cursor)
    logged: bool = False


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook request as the channel sees it: raw bytes, before anything is parsed."""

    method: str
    path: str
    #: header names in lower case
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    #: when the server received it (Unix seconds): the reference for stale signatures
    received_at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Incoming:
    """A customer's message in the unified model, decoded from a verified request."""

    #: the vendor's id of the message: a redelivery has the same one and changes nothing
    message_id: str
    #: the customer's id on the channel (chat id, phone number, user id)
    sender: str
    text: str
    #: what the customer tapped, when the message is a button press (the text is its label)
    choice: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sender_name: str | None = None
    locale: str | None = None
    #: when the vendor says it was sent (ISO 8601); "" when it does not say
    at: str = ""
    #: the vendor's payload of this message, kept in the store as it came
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: typed parts the text stands for: ``{"type": "location", "latitude": ..., "longitude": ...}``,
    #: ``{"type": "sticker", ...}``; the text is their fallback for flows
    parts: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """The vendor's news about a message we sent (delivered, read, failed)."""

    channel_message_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    at: str = ""
    #: for ``failed``: the vendor's reason, with its error code
    detail: str = ""
    #: the vendor's error code of a failure, for the delivery-failure metric
    code: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event the channel received and deliberately does nothing with (answered 200, counted).

    ``reason`` is a short label for the metric: ``edited_message``, ``unknown_event``,
    ``bot_message``...
    """

    reason: str


#: The reason of an event for another account of the same kind (one URL for several
#: accounts: one Meta app, several WhatsApp numbers): the server offers the request to
#: the kind's other accounts, and each takes what is its own.
OTHER_ACCOUNT = "other_account"

Decoded = Incoming | StatusUpdate | Ignored


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the server answers a vendor's handshake (WhatsApp's ``hub.challenge``)."""

    status: int
    body: str = ""
    content_type: str = "text/plain"


@runtime_checkable
class Channel(Protocol):
    """One account of one channel kind; built by its connector's factory."""

    #: the kind (``webchat``, ``telegram``): the first part of its address
    name: str
    capabilities: Capabilities

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send one message; a ``key`` sent before returns ``duplicate`` and sends nothing.

        Raises DeliveryRejected, ChannelThrottled or ChannelUnavailable
        (:mod:`engine.channels.errors`) for what the vendor answered.
        """
        ...


@runtime_checkable
class WebhookChannel(Channel, Protocol):
    """A channel the vendor calls: ``/webhooks/<kind>`` (and ``/<account>``)."""

    def verify(self, request: WebhookRequest) -> None:
        """Raise SignatureInvalid unless the request is signed by the vendor (and recent)."""
        ...

    def decode(self, request: WebhookRequest) -> Sequence[Decoded]:
        """What a verified request carries; PayloadInvalid says what is wrong with the body.

        An event the channel does not handle decodes to nothing (the webhook answers 200).
        """
        ...


@runtime_checkable
class HandshakeChannel(Protocol):
    """A channel whose vendor checks the webhook URL first (a GET the server passes on)."""

    def handshake(self, request: WebhookRequest) -> WebhookAnswer:
        """The answer to the vendor's check: its challenge (200), or 403 on a wrong token."""
        ...


@runtime_checkable
class AcknowledgingChannel(Protocol):
    """A channel that tells the vendor once its messages are durably accepted.

    Telegram answers a button press (``answerCallbackQuery``) so the customer's
    spinner stops; called after the webhook's messages are accepted, errors logged.
    """

    async def acknowledge(self, decoded: Sequence[Decoded]) -> None: ...


@runtime_checkable
class SetupChannel(Protocol):
    """A channel that can register its webhook with the vendor (``flowdesk channels setup``)."""

    async def setup(self, public_url: str) -> str:
        """Point the vendor at ``public_url`` (this account's webhook URL); returns what was done, in words.

        Raises ChannelError (:mod:`engine.channels.errors`) with the vendor's answer when it refuses.
        """
        ...


def required_settings(factory: object) -> tuple[str, ...]:
    """The settings keys a connector's factory needs (its ``required_settings`` attribute).

    ``flowdesk channels list`` names the missing ones, and the registry does not build
    an account that lacks one (fail closed: a webhook without its secret is not mounted).
    """
    return tuple(getattr(factory, "required_settings", ()))
