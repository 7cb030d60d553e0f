"""The deliver activity's boundary with channels: Temporal's ``DeliverInput`` in, a channel's ``Receipt`` out.

Channels see the public :class:`~engine.channels.types.OutboundMessage`, never the
workflow's types, and raise channel errors that this module turns into what
Temporal's retry policy understands: ``DeliveryRejected`` is not retried,
``ChannelThrottled`` is retried after the vendor's ``Retry-After``, and
``ChannelUnavailable`` (like any other exception) with the activity's back-off.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from engine.channels.errors import ChannelThrottled, ChannelUnavailable, DeliveryRejected
from engine.channels.types import OutboundMessage, Receipt
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
        recipient=str(contact.get("external_id") or ""),
        at=data.at,
        meta=dict(data.meta),
        flow=data.flow,
        revision=data.revision,
    )


def delivered(key: str, receipt: Receipt) -> Delivered:
    return Delivered(key, receipt.status, channel_message_id=receipt.channel_message_id, logged=receipt.logged)


def retry_policy_error(exc: Exception) -> ApplicationError | None:
    """The ``ApplicationError`` a channel error stands for; None to let Temporal retry as usual."""
    if isinstance(exc, DeliveryRejected):
        return ApplicationError(str(exc), type=Failure.DELIVERY_REJECTED, non_retryable=True)
    if isinstance(exc, ChannelThrottled):
        return ApplicationError(
            str(exc), type=Failure.CHANNEL_THROTTLED, next_retry_delay=timedelta(seconds=max(exc.retry_after, 0.1))
        )
    if isinstance(exc, ChannelUnavailable):
        return ApplicationError(str(exc), type=Failure.CHANNEL_UNAVAILABLE)
    return None
