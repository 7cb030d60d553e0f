"""What a channel raises, and what each means for the delivery or the webhook.

A webhook request fails :class:`SignatureInvalid` (answered 401, nothing stored)
or :class:`PayloadInvalid` (400, with the reason). A send fails
:class:`DeliveryRejected` (for good: the deliver activity does not retry),
:class:`ChannelThrottled` (the vendor said 429: retried after ``retry_after``) or
:class:`ChannelUnavailable` (5xx or no answer: retried with back-off).
"""

from __future__ import annotations

from engine.errors import FlowdeskError


class ChannelError(FlowdeskError):
    """Base of the errors a channel raises on purpose."""


class SignatureInvalid(ChannelError):
    """A webhook request's signature is missing, wrong or too old: answered 401, nothing is kept."""


class PayloadInvalid(ChannelError):
    """A signed webhook body the channel cannot read; the message says what was wrong (400)."""


class DeliveryRejected(ChannelError):
    """The channel refused the message for good (bad recipient, blocked bot): do not retry.

    ``code`` is the vendor's error code when it gave one (WhatsApp ``131047``, Telegram
    ``403``): delivery failures are counted by it.
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ReplyWindowClosed(DeliveryRejected):
    """A free-form reply after the channel's reply window (WhatsApp: 24 h since the customer wrote)."""

    def __init__(self, message: str = "window closed", code: str = "window_closed") -> None:
        super().__init__(message, code)


class ChannelThrottled(ChannelError):
    """The vendor asked us to slow down (429); ``retry_after`` seconds is when to try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelUnavailable(ChannelError):
    """The vendor failed (5xx) or did not answer: the delivery is retried with back-off."""


class NoFlowLive(ChannelError):
    """No flow is live for the channel, so a message cannot start a conversation."""
