"""Circuit breakers: stop calling a provider that keeps failing, probe it after a cool-down.

``closed`` (calls go through) -> after ``failures`` consecutive failures ->
``open`` (calls are skipped, the chain moves on at once) -> after ``cooldown``
seconds -> ``half_open``: one call goes through as a probe; its success closes
the breaker, its failure opens it for another cool-down.

State is per worker process, keyed by provider (name, profile, base URL): workers
learn independently, which is enough to stop a dead vendor from adding its
timeout to every answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.metrics import AI_BREAKER_STATE

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: The gauge's value for each state.
STATE_VALUES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}

DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN_S = 30.0


@dataclass
class CircuitBreaker:
    provider: str
    failures: int = DEFAULT_FAILURES
    cooldown_s: float = DEFAULT_COOLDOWN_S
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    probing: bool = field(default=False)

    def allow(self) -> bool:
        """Whether a call may go through now (a half-open breaker lets one probe at a time)."""
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._move(HALF_OPEN)
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.consecutive = 0
        self.probing = False
        if self.state != CLOSED:
            self._move(CLOSED)

    def failed(self) -> None:
        self.probing = False
        self.consecutive += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.consecutive >= self.failures):
            self.opened_at = self.clock()
            self._move(OPEN)

    def released(self) -> None:
        """A call that neither succeeded nor failed (cancelled): free the probe slot."""
        self.probing = False

    def _move(self, state: str) -> None:
        self.state = state
        AI_BREAKER_STATE.labels(self.provider).set(STATE_VALUES[state])


class Breakers:
    """The breakers of one process, created on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str, label: str, *, failures: int, cooldown_s: float) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(label, failures=failures, cooldown_s=cooldown_s, clock=self.clock)
            self._breakers[key] = breaker
            AI_BREAKER_STATE.labels(label).set(STATE_VALUES[CLOSED])
        else:
            # The flow's settings may have changed since (a new revision).
            breaker.failures, breaker.cooldown_s = failures, cooldown_s
        return breaker

    def states(self) -> dict[str, str]:
        return {key: breaker.state for key, breaker in self._breakers.items()}
