"""Circuit breakers: a provider that keeps failing is skipped, then probed after a cool-down."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import REGISTRY

from engine.ai.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker
from engine.ai.chain import ChainOutcome, Link, run_chain
from engine.ai.types import AIReply, AIRequest, ProviderConfigError, Unavailable
from tests.unit.ai.scripted import Fake

REQUEST = AIRequest(message="Is my order shipped?")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def gauge(label: str) -> float | None:
    return REGISTRY.get_sample_value("flowdesk_ai_breaker_state", {"provider": label})


def breaker(failures: int = 3, cooldown_s: float = 30.0) -> tuple[CircuitBreaker, Clock, str]:
    clock = Clock()
    label = f"vendor-{uuid.uuid4().hex[:8]}"
    return CircuitBreaker(label, failures=failures, cooldown_s=cooldown_s, clock=clock), clock, label


async def ask(
    provider: Fake, guard: CircuitBreaker, *, retries: int = 0, min_confidence: float | None = None
) -> ChainOutcome:
    backup = Fake("from the backup")
    result = await run_chain(
        [Link(guard.provider, provider, 1.0, retries=retries, breaker=guard), Link("backup", backup, 1.0)],
        REQUEST,
        timeout_s=2,
        min_confidence=min_confidence,
    )
    return result


def outcomes_of(result: ChainOutcome) -> list[str]:
    return [a.outcome for a in result.attempts if a.provider != "backup"]


# -- the state machine ---------------------------------------------------------------


def test_opens_after_n_consecutive_failures() -> None:
    guard, _, label = breaker(failures=3)

    guard.failed()
    guard.failed()
    assert guard.state == CLOSED
    assert guard.allow()

    guard.failed()
    assert guard.state == OPEN
    assert not guard.allow()
    assert gauge(label) == 1


def test_non_consecutive_failures_do_not_open() -> None:
    guard, _, label = breaker(failures=3)

    for _ in range(3):
        guard.failed()
        guard.failed()
        guard.succeeded()

    assert guard.state == CLOSED
    assert guard.allow()
    assert gauge(label) in (None, 0)


def test_stays_open_until_the_cooldown_has_passed() -> None:
    guard, clock, _ = breaker(failures=1, cooldown_s=30)
    guard.failed()

    clock.advance(29.9)
    assert not guard.allow()
    assert guard.state == OPEN


def test_half_open_after_cooldown_lets_exactly_one_probe_through() -> None:
    guard, clock, label = breaker(failures=1, cooldown_s=30)
    guard.failed()
    clock.advance(30)

    assert guard.allow()  # the probe
    assert guard.state == HALF_OPEN
    assert gauge(label) == 2
    assert not guard.allow()  # a second caller while the probe is in flight
    assert not guard.allow()


def test_probe_success_closes() -> None:
    guard, clock, label = breaker(failures=2, cooldown_s=30)
    guard.failed()
    guard.failed()
    clock.advance(30)
    assert guard.allow()

    guard.succeeded()

    assert guard.state == CLOSED
    assert gauge(label) == 0
    assert all(guard.allow() for _ in range(5))
    guard.failed()  # the failure count started afresh
    assert guard.state == CLOSED


def test_probe_failure_reopens_for_another_cooldown() -> None:
    guard, clock, label = breaker(failures=2, cooldown_s=30)
    guard.failed()
    guard.failed()
    clock.advance(30)
    assert guard.allow()

    guard.failed()

    assert guard.state == OPEN
    assert gauge(label) == 1
    clock.advance(29)
    assert not guard.allow()
    clock.advance(1)
    assert guard.allow()
    assert guard.state == HALF_OPEN


def test_a_cancelled_probe_frees_the_probe_slot() -> None:
    guard, clock, _ = breaker(failures=1, cooldown_s=5)
    guard.failed()
    clock.advance(5)
    assert guard.allow()

    guard.released()

    assert guard.allow()


def test_gauge_shows_closed_open_half_open() -> None:
    clock = Clock()
    label = f"gauge-{uuid.uuid4().hex[:8]}"
    guard = Breakers(clock).get(f"{label}|https://api", label, failures=1, cooldown_s=10)
    assert gauge(label) == 0

    guard.failed()
    assert gauge(label) == 1

    clock.advance(10)
    guard.allow()
    assert gauge(label) == 2

    guard.succeeded()
    assert gauge(label) == 0


def test_breakers_get_returns_the_same_breaker_per_key() -> None:
    breakers = Breakers(Clock())

    first = breakers.get("openai/default|https://a", "openai/default", failures=5, cooldown_s=30)
    again = breakers.get("openai/default|https://a", "openai/default", failures=2, cooldown_s=10)
    other = breakers.get("openai/default|https://b", "openai/default", failures=5, cooldown_s=30)

    assert again is first
    assert other is not first
    # a new revision of the flow may change the settings: the existing breaker takes them
    assert (first.failures, first.cooldown_s) == (2, 10)
    first.failed()
    first.failed()
    assert breakers.states() == {"openai/default|https://a": OPEN, "openai/default|https://b": CLOSED}


# -- in a chain ----------------------------------------------------------------------


async def test_open_breaker_skips_the_provider_without_calling_it() -> None:
    guard, _, label = breaker(failures=2)
    dead = Fake(Unavailable("HTTP 503"))

    first = await ask(dead, guard)
    second = await ask(dead, guard)
    third = await ask(dead, guard)

    assert outcomes_of(first) == ["unavailable"]
    assert outcomes_of(second) == ["unavailable"]
    assert outcomes_of(third) == ["skipped"]
    assert third.attempts[0].detail == "circuit breaker open"
    assert third.provider == "backup"
    assert len(dead.calls) == 2
    assert REGISTRY.get_sample_value("flowdesk_ai_requests_total", {"provider": label, "outcome": "skipped"}) == 1


async def test_in_a_chain_the_probe_after_cooldown_closes_the_breaker() -> None:
    guard, clock, label = breaker(failures=1, cooldown_s=30)
    vendor = Fake(Unavailable("HTTP 503"), "back up again")
    await ask(vendor, guard)
    assert guard.state == OPEN

    clock.advance(30)
    result = await ask(vendor, guard)

    assert result.provider == label
    assert guard.state == CLOSED
    assert gauge(label) == 0


async def test_only_one_of_two_concurrent_chains_probes_a_half_open_provider() -> None:
    guard, clock, _ = breaker(failures=1, cooldown_s=30)
    guard.failed()
    clock.advance(30)
    vendor = Fake("recovered", delay=0.05)

    results = await asyncio.gather(ask(vendor, guard), ask(vendor, guard))

    assert len(vendor.calls) == 1
    assert sorted(outcomes_of(r)[0] for r in results) == ["ok", "skipped"]
    assert guard.state == CLOSED


async def test_a_failed_probe_is_not_retried() -> None:
    # Half-open lets exactly one call through; the provider's retries must not add more
    # calls to a vendor that the failed probe has just shown to be down.
    guard, clock, _ = breaker(failures=1, cooldown_s=30)
    guard.failed()
    clock.advance(30)
    dead = Fake(Unavailable("HTTP 503", retry_after=0))

    result = await ask(dead, guard, retries=2)

    assert guard.state == OPEN
    assert len(dead.calls) == 1
    assert outcomes_of(result) == ["unavailable"]
    assert result.provider == "backup"


async def test_answered_but_unusable_outcomes_count_as_success() -> None:
    guard, _, _ = breaker(failures=2)
    vendor = Fake(
        Unavailable("HTTP 503"),
        AIReply(""),  # empty
        Unavailable("HTTP 503"),
        AIReply("not sure", confidence=0.1),  # low confidence
        Unavailable("HTTP 503"),
        AIReply("no", refused=True),  # refused
        Unavailable("HTTP 503"),
    )

    seen = [outcomes_of(await ask(vendor, guard, min_confidence=0.5))[0] for _ in range(7)]

    assert seen == [
        "unavailable",
        "empty",
        "unavailable",
        "low_confidence",
        "unavailable",
        "refused",
        "unavailable",
    ]
    assert guard.state == CLOSED  # never two failures in a row: the vendor is up, just not helpful
    assert len(vendor.calls) == 7


async def test_misconfiguration_does_not_count_against_the_vendor() -> None:
    guard, _, _ = breaker(failures=2)
    misconfigured = Fake(ProviderConfigError("dify: `api_key` is not set"))

    for _ in range(4):
        result = await ask(misconfigured, guard)
        assert outcomes_of(result) == ["misconfigured"]

    assert guard.state == CLOSED
    assert len(misconfigured.calls) == 4


async def test_timeouts_count_as_failures() -> None:
    guard, _, _ = breaker(failures=2)
    slow = Fake("late", delay=1.0)

    for _ in range(2):
        await run_chain([Link(guard.provider, slow, 0.05, breaker=guard)], REQUEST, timeout_s=1)

    assert guard.state == OPEN
