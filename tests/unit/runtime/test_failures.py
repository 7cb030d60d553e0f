"""Failure kinds are read by their type, and their names never change (histories hold them)."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError, TimeoutType

from engine.runtime.failures import Failure, failure_text, is_failure, timed_out


def _activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "activity failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="flowdesk.call_http",
        activity_id="1",
        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    error.__cause__ = cause
    return error


def test_the_names_written_to_histories_are_the_ones_recorded() -> None:
    # Recorded histories and running conversations hold these; a renamed value breaks their replay.
    assert {f.name: f.value for f in Failure} == {
        "NO_CHANNEL": "NoChannel",
        "DELIVERY_REJECTED": "DeliveryRejected",
        "CHANNEL_THROTTLED": "ChannelThrottled",
        "CHANNEL_UNAVAILABLE": "ChannelUnavailable",
        "SECRET_MISSING": "SecretMissing",
        "HTTP_TIMEOUT": "HttpTimeout",
        "HTTP_ERROR": "HttpError",
        "HTTP_STATUS": "HttpStatus",
        "CONVERSATION_ENDED": "ConversationEnded",
        "NO_TEST_MOCKS": "NoTestMocks",
        "CONVERSATION_TAKEN": "ConversationTaken",
        "AGENT_ACTION_REFUSED": "AgentActionRefused",
        "AGENT_ACTION_INVALID": "AgentActionInvalid",
    }


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (ApplicationError("timed out", type=Failure.HTTP_TIMEOUT), True),
        (TimeoutError("start-to-close", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]), True),
        (ApplicationError("request failed (ConnectError)", type=Failure.HTTP_ERROR), False),
        (ApplicationError("HTTP 503", type="HttpStatus"), False),
    ],
)
def test_a_call_timed_out_when_temporal_or_the_request_ran_out_of_time(cause: BaseException, expected: bool) -> None:
    assert timed_out(_activity_error(cause)) is expected  # a regular activity: the reason is the cause
    assert timed_out(cause) is expected  # a local activity: the reason itself


def test_the_failure_text_is_the_reason_not_the_wrapper() -> None:
    failure = _activity_error(ApplicationError("HTTP 503", type=Failure.HTTP_STATUS))
    assert failure_text(failure) == "HTTP 503"
    assert is_failure(failure.cause, Failure.HTTP_STATUS) and not is_failure(failure, Failure.HTTP_STATUS)
