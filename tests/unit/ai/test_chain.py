"""The fallback chain: which provider answers, what is retried, what is recorded and counted."""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client import REGISTRY

from engine.ai.chain import BACKOFF_BASE_S, ChainOutcome, Link, redactor, run_chain
from engine.ai.types import (
    AIReply,
    AIRequest,
    ProviderConfigError,
    ProviderError,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
    Usage,
)
from tests.unit.ai.scripted import Fake

SECRET = "sk-live-4f9a8b7c6d5e"
REQUEST = AIRequest(message="Where is my parcel?")


def link(label: str, provider: Fake, *, timeout_s: float = 1.0, retries: int = 0) -> Link:
    return Link(label, provider, timeout_s, retries=retries)


def outcomes(result: ChainOutcome) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in result.attempts]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- which provider answers ----------------------------------------------------------


async def test_first_provider_answers_alone() -> None:
    first, second = Fake("Tomorrow before noon."), Fake("never asked")

    result = await run_chain([link("first", first), link("second", second)], REQUEST, timeout_s=2)

    assert result.reply is not None
    assert result.reply.text == "Tomorrow before noon."
    assert result.provider == "first"
    assert result.link == 0
    assert outcomes(result) == [("first", "ok")]
    assert first.calls == [REQUEST]
    assert second.calls == []


async def test_unavailable_provider_falls_through_to_the_next() -> None:
    down, backup = Fake(Unavailable("HTTP 503 from vendor")), Fake("Tomorrow.")

    result = await run_chain([link("down", down), link("backup", backup)], REQUEST, timeout_s=2)

    assert result.reply is not None and result.reply.text == "Tomorrow."
    assert result.provider == "backup"
    assert result.link == 1
    assert outcomes(result) == [("down", "unavailable"), ("backup", "ok")]
    assert result.attempts[0].detail == "HTTP 503 from vendor"
    assert backup.calls == [REQUEST]


async def test_every_provider_failing_gives_failed_with_each_outcome() -> None:
    a, b = Fake(Unavailable("HTTP 502")), Fake(Unauthorized("HTTP 401 invalid_api_key"))

    result = await run_chain([link("a", a), link("b", b)], REQUEST, timeout_s=2)

    assert result.reply is None
    assert result.provider is None
    assert result.reason == "failed"
    assert outcomes(result) == [("a", "unavailable"), ("b", "unauthorized")]
    assert "a: HTTP 502" in result.detail
    assert "b: HTTP 401 invalid_api_key" in result.detail


async def test_no_provider_at_all_fails() -> None:
    result = await run_chain([], REQUEST, timeout_s=1)

    assert result.reply is None
    assert result.reason == "failed"
    assert result.attempts == []


# -- retries -------------------------------------------------------------------------


async def test_retryable_error_is_retried_then_the_chain_moves_on() -> None:
    flaky, backup = Fake(Unavailable("HTTP 503", retry_after=0)), Fake("From the backup.")

    result = await run_chain([link("flaky", flaky, retries=2), link("backup", backup)], REQUEST, timeout_s=2)

    assert len(flaky.calls) == 3  # the first attempt and two retries
    assert outcomes(result) == [
        ("flaky", "unavailable"),
        ("flaky", "unavailable"),
        ("flaky", "unavailable"),
        ("backup", "ok"),
    ]
    assert result.provider == "backup"


async def test_a_retry_that_succeeds_answers_from_the_same_provider() -> None:
    flaky, backup = Fake(Unavailable("HTTP 503", retry_after=0), "Second time lucky."), Fake("backup")

    result = await run_chain([link("flaky", flaky, retries=1), link("backup", backup)], REQUEST, timeout_s=2)

    assert result.provider == "flaky"
    assert result.reply is not None and result.reply.text == "Second time lucky."
    assert outcomes(result) == [("flaky", "unavailable"), ("flaky", "ok")]
    assert backup.calls == []


async def test_retry_without_retry_after_waits_a_backoff() -> None:
    flaky = Fake(Unavailable("HTTP 503"), "ok now")

    result = await run_chain([link("flaky", flaky, retries=1)], REQUEST, timeout_s=2)

    assert result.provider == "flaky"
    gap = flaky.called_at[1] - flaky.called_at[0]
    assert BACKOFF_BASE_S * 0.9 <= gap < BACKOFF_BASE_S + 0.2


@pytest.mark.parametrize("error", [Unauthorized("HTTP 401"), Rejected("HTTP 400 unknown model")])
async def test_non_retryable_error_is_not_retried(error: ProviderError) -> None:
    wrong, backup = Fake(error), Fake("backup answer")

    result = await run_chain([link("wrong", wrong, retries=3), link("backup", backup)], REQUEST, timeout_s=2)

    assert len(wrong.calls) == 1
    assert outcomes(result) == [("wrong", error.outcome), ("backup", "ok")]
    assert result.provider == "backup"


async def test_rate_limited_waits_retry_after_before_retrying() -> None:
    limited = Fake(RateLimited("HTTP 429", retry_after=0.05), "after the wait")

    result = await run_chain([link("limited", limited, retries=1)], REQUEST, timeout_s=2)

    assert result.provider == "limited"
    assert outcomes(result) == [("limited", "rate_limited"), ("limited", "ok")]
    gap = limited.called_at[1] - limited.called_at[0]
    # the vendor's Retry-After, not the 0.25 s backoff
    assert 0.045 <= gap < BACKOFF_BASE_S


async def test_retry_after_beyond_the_chain_deadline_moves_on_at_once() -> None:
    limited, backup = Fake(RateLimited("HTTP 429", retry_after=5)), Fake("backup answer")

    started = time.monotonic()
    result = await run_chain([link("limited", limited, retries=3), link("backup", backup)], REQUEST, timeout_s=0.5)
    elapsed = time.monotonic() - started

    assert len(limited.calls) == 1
    assert outcomes(result) == [("limited", "rate_limited"), ("backup", "ok")]
    assert result.provider == "backup"
    assert elapsed < 0.1


# -- timeouts ------------------------------------------------------------------------


async def test_provider_timeout_moves_on_to_the_next() -> None:
    slow, fast = Fake("too late", delay=1.0), Fake("in time")

    started = time.monotonic()
    result = await run_chain([link("slow", slow, timeout_s=0.05), link("fast", fast)], REQUEST, timeout_s=2)
    elapsed = time.monotonic() - started

    assert outcomes(result) == [("slow", "timeout"), ("fast", "ok")]
    assert result.reply is not None and result.reply.text == "in time"
    assert elapsed < 0.5


async def test_chain_timeout_ends_the_chain_with_reason_timeout() -> None:
    slow, never = Fake("too late", delay=1.0), Fake("never asked")

    started = time.monotonic()
    result = await run_chain([link("slow", slow, timeout_s=5), link("never", never)], REQUEST, timeout_s=0.1)
    elapsed = time.monotonic() - started

    assert result.reply is None
    assert result.reason == "timeout"
    assert outcomes(result) == [("slow", "timeout")]
    assert never.calls == []
    assert 0.09 <= elapsed < 0.5


# -- answers that are not good enough -----------------------------------------------


async def test_low_confidence_falls_through_without_retry() -> None:
    unsure, sure = Fake(AIReply("Maybe Tuesday?", confidence=0.3)), Fake(AIReply("Tuesday.", confidence=0.9))

    result = await run_chain(
        [link("unsure", unsure, retries=2), link("sure", sure)], REQUEST, timeout_s=2, min_confidence=0.5
    )

    assert len(unsure.calls) == 1
    assert outcomes(result) == [("unsure", "low_confidence"), ("sure", "ok")]
    assert result.reply is not None and result.reply.text == "Tuesday."


async def test_unknown_confidence_is_taken_at_its_word() -> None:
    vendor = Fake(AIReply("Tuesday.", confidence=None))

    result = await run_chain([link("vendor", vendor)], REQUEST, timeout_s=2, min_confidence=0.9)

    assert result.provider == "vendor"
    assert outcomes(result) == [("vendor", "ok")]


async def test_confidence_equal_to_the_minimum_is_enough() -> None:
    vendor = Fake(AIReply("Tuesday.", confidence=0.5))

    result = await run_chain([link("vendor", vendor)], REQUEST, timeout_s=2, min_confidence=0.5)

    assert result.provider == "vendor"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (AIReply("   \n"), "empty"),
        (AIReply(""), "empty"),
        (AIReply("I can't help with that.", refused=True), "refused"),
    ],
)
async def test_empty_or_refused_answer_falls_through_without_retry(answer: AIReply, expected: str) -> None:
    mute, backup = Fake(answer), Fake("backup answer")

    result = await run_chain([link("mute", mute, retries=2), link("backup", backup)], REQUEST, timeout_s=2)

    assert len(mute.calls) == 1
    assert outcomes(result) == [("mute", expected), ("backup", "ok")]
    assert result.reply is not None and result.reply.text == "backup answer"


# -- misconfigured and broken providers ----------------------------------------------


async def test_misconfigured_link_is_recorded_and_skipped() -> None:
    backup = Fake("backup answer")
    broken = Link(
        "openai/default", None, 1.0, problem=ProviderConfigError("environment variable OPENAI_KEY is not set")
    )

    result = await run_chain([broken, link("backup", backup)], REQUEST, timeout_s=2)

    assert outcomes(result) == [("openai/default", "misconfigured"), ("backup", "ok")]
    assert result.attempts[0].detail == "environment variable OPENAI_KEY is not set"
    assert result.provider == "backup"


async def test_unexpected_exception_is_an_error_with_a_redacted_detail() -> None:
    buggy, backup = Fake(RuntimeError(f"cannot parse body of request with key {SECRET}")), Fake("backup answer")

    result = await run_chain(
        [link("buggy", buggy), link("backup", backup)], REQUEST, timeout_s=2, redact=redactor([SECRET])
    )

    assert outcomes(result) == [("buggy", "error"), ("backup", "ok")]
    detail = result.attempts[0].detail
    assert detail.startswith("RuntimeError: cannot parse body")
    assert SECRET not in detail
    assert "***" in detail
    assert result.provider == "backup"


async def test_secrets_are_scrubbed_from_every_detail() -> None:
    token = "dify-user-token-998877"
    a = Fake(Unauthorized(f"HTTP 401: key {SECRET} rejected"))
    b = Fake(Unavailable(f"HTTP 503 for token={token}"))
    broken = Link("c", None, 1.0, problem=ProviderConfigError(f"bad base_url https://x/{SECRET}"))

    result = await run_chain(
        [link("a", a), link("b", b), broken], REQUEST, timeout_s=2, redact=redactor([SECRET, token])
    )

    assert result.reason == "failed"
    texts = [a.detail for a in result.attempts] + [result.detail]
    for text in texts:
        assert SECRET not in text
        assert token not in text
    assert result.attempts[0].detail == "HTTP 401: key *** rejected"
    assert result.attempts[1].detail == "HTTP 503 for token=***"


def test_redactor_replaces_longer_secrets_first_and_ignores_short_ones() -> None:
    redact = redactor(["abcd", "abcdefgh", "xyz", None, 42])  # type: ignore[list-item]

    assert redact("key=abcdefgh") == "key=***"  # not "key=***efgh"
    assert redact("pin abcd") == "pin ***"
    assert redact("xyz stays") == "xyz stays"  # too short to be a secret worth hiding (and too common)
    assert redactor([])("nothing to hide") == "nothing to hide"


# -- metrics -------------------------------------------------------------------------


async def test_every_attempt_is_counted_by_provider_and_outcome() -> None:
    down_label, ok_label = unique("down"), unique("ok")
    before_down = sample("flowdesk_ai_requests_total", provider=down_label, outcome="unavailable")
    before_ok = sample("flowdesk_ai_requests_total", provider=ok_label, outcome="ok")

    await run_chain(
        [link(down_label, Fake(Unavailable("HTTP 503", retry_after=0)), retries=1), link(ok_label, Fake("fine"))],
        REQUEST,
        timeout_s=2,
    )

    assert sample("flowdesk_ai_requests_total", provider=down_label, outcome="unavailable") == before_down + 2
    assert sample("flowdesk_ai_requests_total", provider=ok_label, outcome="ok") == before_ok + 1
    assert sample("flowdesk_ai_requests_total", provider=ok_label, outcome="unavailable") == 0


async def test_tokens_are_counted_by_provider_model_and_kind() -> None:
    label = unique("tok")
    vendor = Fake(AIReply("Tuesday.", usage=Usage(prompt_tokens=120, completion_tokens=7), model="gpt-4o-mini"))

    result = await run_chain([link(label, vendor)], REQUEST, timeout_s=2)

    tokens = "flowdesk_ai_tokens_total"
    assert sample(tokens, provider=label, model="gpt-4o-mini", kind="prompt") == 120
    assert sample(tokens, provider=label, model="gpt-4o-mini", kind="completion") == 7
    attempt = result.attempts[0]
    assert (attempt.prompt_tokens, attempt.completion_tokens, attempt.model) == (120, 7, "gpt-4o-mini")
    assert attempt.as_dict()["model"] == "gpt-4o-mini"
    assert "detail" not in attempt.as_dict()  # empty fields are left out of the record


async def test_tokens_of_a_low_confidence_answer_are_counted_too() -> None:
    label = unique("tok-low")
    vendor = Fake(AIReply("Maybe.", confidence=0.1, usage=Usage(50, 3), model="m"))

    await run_chain([link(label, vendor)], REQUEST, timeout_s=2, min_confidence=0.5)

    assert sample("flowdesk_ai_tokens_total", provider=label, model="m", kind="prompt") == 50
    assert sample("flowdesk_ai_requests_total", provider=label, outcome="low_confidence") == 1
