"""A fallback chain: providers tried in order until one answers well enough.

Per provider: its circuit breaker may skip it; each attempt runs under the
provider's timeout (cut to what is left of the chain's); a retryable failure is
tried again up to ``retries`` times, after the vendor's ``Retry-After`` or a short
backoff, if the chain has time for it. An answer that is empty, refused by the
vendor, or less confident than ``min_confidence`` falls through to the next
provider without a retry (asking again would give the same answer). The chain
ends with the first good answer, when the providers are exhausted, or at its
timeout.

Every attempt is recorded (:class:`Attempt`) and counted in the ``flowdesk_ai_*``
metrics. Failure details are scrubbed of the secrets the providers were given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.ai.breaker import CircuitBreaker
from engine.ai.types import AIProvider, AIReply, AIRequest, ProviderError, ProviderTimeout
from engine.flow.events import CallFailure
from engine.metrics import AI_LATENCY, AI_REQUESTS, AI_TOKENS

log = logging.getLogger(__name__)

#: Backoff before retrying a provider that gave no Retry-After: 0.25 s, 0.5 s, 1 s, 2 s.
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 2.0
#: Outcomes where the vendor answered: they close a breaker rather than count as failures.
ANSWERED = frozenset({"ok", "low_confidence", "empty", "refused"})


@dataclass(frozen=True, slots=True)
class Link:
    """One provider of a chain, ready to call (``problem`` when it could not be built)."""

    label: str  # for people and metrics: ``openai`` or ``openai/default``
    provider: AIProvider | None
    timeout_s: float
    retries: int = 0
    breaker: CircuitBreaker | None = None
    problem: ProviderError | None = None
    request: AIRequest | None = None  # the request for this provider, if it differs from the chain's


@dataclass(frozen=True, slots=True)
class Attempt:
    provider: str
    outcome: str
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass
class ChainOutcome:
    """The answer (``reply`` and the ``provider`` label that gave it), or why there is none."""

    reply: AIReply | None = None
    provider: str | None = None
    link: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: when there is no reply: ``timeout`` (the chain ran out of time) or ``failed``
    reason: str = ""
    detail: str = ""


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that replaces every secret (of 4+ characters) in a text by ``***``."""
    values = sorted({s for s in secrets if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return redact


async def run_chain(
    links: Sequence[Link],
    request: AIRequest,
    *,
    timeout_s: float,
    min_confidence: float | None = None,
    redact: Callable[[str], str] = str,
    clock: Callable[[], float] = time.monotonic,
) -> ChainOutcome:
    run = _ChainRun(clock() + timeout_s, min_confidence, redact, clock)
    outcome = run.outcome
    for position, link in enumerate(links):
        reply = await run.try_link(link, link.request or request)
        if reply is not None:
            outcome.reply, outcome.provider, outcome.link = reply, link.label, position
            return outcome
        if clock() >= run.deadline:
            outcome.reason = CallFailure.TIMEOUT
            outcome.detail = f"the chain's {timeout_s:g} s ran out"
            return outcome
    outcome.reason = CallFailure.FAILED
    outcome.detail = "; ".join(f"{a.provider}: {a.detail or a.outcome}" for a in outcome.attempts) or "no provider"
    return outcome


@dataclass
class _ChainRun:
    deadline: float
    min_confidence: float | None
    redact: Callable[[str], str]
    clock: Callable[[], float]
    outcome: ChainOutcome = field(default_factory=ChainOutcome)

    def record(self, attempt: Attempt) -> None:
        self.outcome.attempts.append(count_attempt(attempt))

    async def try_link(self, link: Link, request: AIRequest) -> AIReply | None:
        """The provider's good answer, after its retries; ``None`` to move on."""
        if link.problem is not None or link.provider is None:
            problem = link.problem
            self.record(Attempt(link.label, problem.outcome if problem else "error", detail=self._why(problem)))
            return None
        if link.breaker is not None and not link.breaker.allow():
            self.record(Attempt(link.label, "skipped", detail="circuit breaker open"))
            return None
        for attempt in range(link.retries + 1):
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                return None
            if attempt and link.breaker is not None and not link.breaker.allow():
                return None  # the failure just opened the breaker (or failed its probe): move on
            result, reply, error = await _call(
                link, request, min(link.timeout_s, remaining), self.min_confidence, self.redact
            )
            self.record(result)
            _settle_breaker(link.breaker, result.outcome)
            if reply is not None:
                return reply
            if error is None or not error.retryable or attempt == link.retries:
                return None  # an answer that was not good enough is not asked for again
            backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)
            wait = error.retry_after if error.retry_after is not None else backoff
            if self.clock() + wait >= self.deadline:
                return None  # no time to wait for this vendor: the next provider may answer in time
            await asyncio.sleep(wait)
        return None

    def _why(self, problem: ProviderError | None) -> str:
        return self.redact(str(problem)) if problem else "not available"


async def _call(
    link: Link,
    request: AIRequest,
    timeout_s: float,
    min_confidence: float | None,
    redact: Callable[[str], str],
) -> tuple[Attempt, AIReply | None, ProviderError | None]:
    """One attempt: its record, the reply if it is good enough, the error if it failed."""
    assert link.provider is not None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            reply = await link.provider.reply(request)
    except TimeoutError:
        error: ProviderError = ProviderTimeout(f"no answer in {timeout_s:g} s")
        return Attempt(link.label, error.outcome, _ms(started), detail=str(error)), None, error
    except ProviderError as exc:
        return Attempt(link.label, exc.outcome, _ms(started), detail=redact(str(exc))), None, exc
    except asyncio.CancelledError:
        if link.breaker is not None:
            link.breaker.released()
        raise
    except Exception as exc:  # a provider's bug must not take the conversation down
        detail = redact(f"{type(exc).__name__}: {exc}")
        log.warning("AI provider %s raised %s", link.label, detail)
        return Attempt(link.label, "error", _ms(started), detail=detail), None, ProviderError(detail)
    verdict, why = judge(reply, min_confidence)
    attempt = Attempt(
        link.label,
        verdict,
        reply.latency_ms or _ms(started),
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
        reply.model,
        why,
    )
    return attempt, (reply if verdict == "ok" else None), None


def judge(reply: AIReply, min_confidence: float | None) -> tuple[str, str]:
    """``ok``, or why an answer is not good enough (``refused``, ``empty``, ``low_confidence``), and a detail."""
    if reply.refused:
        return "refused", "the vendor refused to answer"
    if not reply.text.strip():
        return "empty", "empty answer"
    # A vendor that cannot tell how sure it is (confidence None) is taken at its word.
    if min_confidence is not None and reply.confidence is not None and reply.confidence < min_confidence:
        return "low_confidence", f"confidence {reply.confidence:.2f} < {min_confidence:g}"
    return "ok", ""


def _settle_breaker(breaker: CircuitBreaker | None, outcome: str) -> None:
    if breaker is None:
        return
    if outcome in ANSWERED:
        breaker.succeeded()
    elif outcome == "misconfigured":
        breaker.released()  # our configuration, not the vendor, is at fault
    else:
        breaker.failed()


def count_attempt(attempt: Attempt) -> Attempt:
    """Add an attempt to the AI metrics; returns it."""
    AI_REQUESTS.labels(attempt.provider, attempt.outcome).inc()
    if attempt.outcome != "skipped" and attempt.latency_ms:
        AI_LATENCY.labels(attempt.provider).observe(attempt.latency_ms / 1000)
    model = attempt.model or ""
    if attempt.prompt_tokens:
        AI_TOKENS.labels(attempt.provider, model, "prompt").inc(attempt.prompt_tokens)
    if attempt.completion_tokens:
        AI_TOKENS.labels(attempt.provider, model, "completion").inc(attempt.completion_tokens)
    return attempt


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
