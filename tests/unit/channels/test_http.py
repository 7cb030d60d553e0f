"""Vendor answers as channel errors, and what the deliver activity makes of them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from engine.channels.errors import ChannelThrottled, ChannelUnavailable, DeliveryRejected
from engine.channels.http import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, raise_for_status, retry_after
from engine.runtime.deliveries import retry_policy_error


def answer(status: int, text: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, text=text, headers=headers, request=httpx.Request("POST", "http://vendor/send"))


def test_a_429_waits_for_what_the_vendor_names_in_seconds_or_as_a_date() -> None:
    with pytest.raises(ChannelThrottled) as caught:
        raise_for_status(answer(429, "slow down", {"Retry-After": "12"}), vendor="Telegram")
    assert caught.value.retry_after == 12 and "Telegram answered 429: slow down" in str(caught.value)
    assert retry_after("Wed, 02 Dec 2026 10:01:00 GMT", now=1796205600.0) == 60.0
    assert retry_after(None) == DEFAULT_RETRY_AFTER == retry_after("soon")
    assert retry_after("999999") == MAX_RETRY_AFTER


def test_5xx_is_retried_and_other_4xx_are_rejected_for_good() -> None:
    with pytest.raises(ChannelUnavailable):
        raise_for_status(answer(503), vendor="v")
    with pytest.raises(DeliveryRejected, match="400: chat not found"):
        raise_for_status(answer(400, "chat not found"), vendor="v")
    raise_for_status(answer(200), vendor="v")


def test_the_deliver_activity_retries_throttled_sends_after_the_vendors_delay() -> None:
    rejected = retry_policy_error(DeliveryRejected("blocked"))
    assert rejected is not None and rejected.non_retryable
    throttled = retry_policy_error(ChannelThrottled("429", 7.0))
    assert throttled is not None and not throttled.non_retryable
    assert throttled.next_retry_delay == timedelta(seconds=7)
    unavailable = retry_policy_error(ChannelUnavailable("500"))
    assert unavailable is not None and not unavailable.non_retryable
    assert retry_policy_error(RuntimeError("other")) is None
