"""The deliver activity's boundary with channels: Temporal's ``DeliverInput`` in, a channel's ``Receipt`` out.

Channels see the public :class:`~engine.channels.types.OutboundMessage`, never the
workflow's types, and raise channel errors that this module turns into what
Temporal's retry policy understands: ``DeliveryRejected`` is not retried,
``ChannelThrottled`` is retried after the vendor's ``Retry-After``, and
``ChannelUnavailable`` (like any other exception) with the activity's back-off.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from engine.channels.errors import (
    ChannelError,
    ChannelThrottled,
    ChannelUnavailable,
    DeliveryRejected,
    ReplyWindowClosed,
)
from engine.channels.types import Attachment, Capabilities, OutboundMessage, Receipt
from engine.runtime.failures import Failure
from engine.runtime.types import Delivered, DeliverInput


def outbound_message(data: DeliverInput) -> OutboundMessage:
    """What the channel is asked to send for one delivery."""
    contact = dict(data.contact)
    return OutboundMessage(
        conversation_id=data.conversation_id,
        key=data.key,
        text=data.text,
        choices=tuple(data.choices),
        sender=data.sender,
        contact=contact,
        recipient=data.recipient or str(contact.get("external_id") or ""),
        at=data.at,
        meta=dict(data.meta),
        flow=data.flow,
        revision=data.revision,
        customer_at=data.customer_at,
        template=dict(data.template),
        attachments=tuple(Attachment.from_dict(a) for a in data.attachments),
    )


def within_window(message: OutboundMessage, capabilities: Capabilities, now: datetime) -> OutboundMessage:
    """The message the channel may send now: free text inside its reply window, the flow's template after it.

    A template goes out when the window has passed or there is no text; a channel
    without templates gets the text. Raises ReplyWindowClosed when the window has
    passed and there is no template to send (the delivery is then logged ``failed:
    window closed``, not attempted), DeliveryRejected for a template-only message on
    a channel that has no templates.
    """
    window = capabilities.reply_window
    closed = window is not None and _since(message.customer_at, now) > window
    template = message.template if capabilities.templates else {}
    if template and (closed or not message.text):
        return message
    if closed:
        hours = window.total_seconds() / 3600 if window else 0
        raise ReplyWindowClosed(
            f"window closed: the customer last wrote more than {hours:g} h ago, and the flow names no template"
        )
    if not message.text:
        raise DeliveryRejected(f"template {message.template.get('name')!r} has no text for a channel without templates")
    return replace(message, template={}) if message.template else message


def failure_code(exc: ChannelError) -> str:
    """The label a failed send is counted by: the vendor's code, else what kind of failure it was."""
    if isinstance(exc, DeliveryRejected) and exc.code:
        return exc.code
    if isinstance(exc, ChannelThrottled):
        return "throttled"
    if isinstance(exc, ChannelUnavailable):
        return "unavailable"
    return "rejected"


def _since(at: str, now: datetime) -> timedelta:
    """How long ago ``at`` (ISO 8601) was; zero when unknown (a window is never closed on a guess)."""
    if not at:
        return timedelta(0)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return timedelta(0)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return now - moment


def delivered(key: str, receipt: Receipt) -> Delivered:
    return Delivered(key, receipt.status, channel_message_id=receipt.channel_message_id, logged=receipt.logged)


def retry_policy_error(exc: Exception) -> ApplicationError | None:
    """The ``ApplicationError`` a channel error stands for; None to let Temporal retry as usual."""
    # BENIGN: a vendor's answer is an outcome, not a worker bug: no traceback in the log
    # (the workflow logs a delivery that fails for good, once, with its reason).
    benign = ApplicationErrorCategory.BENIGN
    if isinstance(exc, DeliveryRejected):
        return ApplicationError(str(exc), type=Failure.DELIVERY_REJECTED, non_retryable=True, category=benign)
    if isinstance(exc, ChannelThrottled):
        delay = timedelta(seconds=max(exc.retry_after, 0.1))
        return ApplicationError(str(exc), type=Failure.CHANNEL_THROTTLED, next_retry_delay=delay, category=benign)
    if isinstance(exc, ChannelUnavailable):
        return ApplicationError(str(exc), type=Failure.CHANNEL_UNAVAILABLE, category=benign)
    return None
