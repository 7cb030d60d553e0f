"""How the runtime names what went wrong: one :class:`Failure` per kind, and how to read one.

An activity (or an update handler) that fails on purpose raises
``ApplicationError(message, type=Failure.X)``; workflow code and the client tell
failures apart by that type, never by their message. The values are written to
workflow history (an activity's failure, an update's rejection) and old histories
replay against them, so a value never changes: a new kind gets a new member.

Why an AI or HTTP call gave no result, as the interpreter sees it, is another
vocabulary, part of the flow language: :class:`engine.flow.events.CallFailure`.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError


class Failure(StrEnum):
    """The ``type`` of every ``ApplicationError`` Flowdesk raises across the Temporal boundary."""

    #: the delivery names a channel this worker does not serve (not retried)
    NO_CHANNEL = "NoChannel"
    #: the channel refused the message for good (not retried)
    DELIVERY_REJECTED = "DeliveryRejected"
    #: the channel's vendor asked us to slow down (retried after its Retry-After)
    CHANNEL_THROTTLED = "ChannelThrottled"
    #: the channel's vendor is down or unreachable (retried with the activity's back-off)
    CHANNEL_UNAVAILABLE = "ChannelUnavailable"
    #: an HTTP call names a secret the worker does not have: a setup mistake (not retried)
    SECRET_MISSING = "SecretMissing"
    #: an HTTP call's request timed out; the step's ``on_timeout`` applies
    HTTP_TIMEOUT = "HttpTimeout"
    #: an HTTP call got no response (refused, reset); retried as the step says
    HTTP_ERROR = "HttpError"
    #: an HTTP call got a 5xx or 429; retried as the step says
    HTTP_STATUS = "HttpStatus"
    #: a message was sent to a conversation that has ended (the update is rejected)
    CONVERSATION_ENDED = "ConversationEnded"
    #: ``flowdesk test --live``: a call of a conversation that has no test mocks
    NO_TEST_MOCKS = "NoTestMocks"
    #: an agent action lost the claim: another agent holds the conversation (details: the holder)
    CONVERSATION_TAKEN = "ConversationTaken"
    #: an agent action the conversation cannot take now (not handed off, not resolved, ...)
    AGENT_ACTION_REFUSED = "AgentActionRefused"
    #: an agent action whose fields are wrong (no text, no queue, an unknown action)
    AGENT_ACTION_INVALID = "AgentActionInvalid"


#: What awaiting an activity can raise when it failed: a regular activity fails with
#: ActivityError (the reason is its cause); a local activity whose retries are used
#: up raises the reason itself.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)


def cause(exc: BaseException) -> BaseException | None:
    """What went wrong: an activity's error carries it as its cause, a local activity's is it."""
    return exc.cause if isinstance(exc, ActivityError) else exc


def is_failure(exc: BaseException | None, kind: Failure) -> bool:
    """Whether ``exc`` is an ``ApplicationError`` of ``kind``."""
    return isinstance(exc, ApplicationError) and exc.type == kind


def timed_out(exc: BaseException) -> bool:
    """Whether an activity failed for lack of time: Temporal's own timeout, or a request's."""
    reason = cause(exc)
    return isinstance(reason, TimeoutError) or is_failure(reason, Failure.HTTP_TIMEOUT)


def failure_text(exc: BaseException) -> str:
    """The failure's message, for logs and log entries (never a traceback)."""
    reason = cause(exc)
    return str(reason.message if isinstance(reason, ApplicationError) else reason or exc)
