"""Failed sign-ins counted per account and per address, so that guessing passwords is slow.

After ``people.login_attempts`` failures within ``people.login_window`` for an
account (the e-mail given, known or not: the answer must not tell) or for an address,
further attempts are refused with 429 and ``Retry-After`` until the oldest failure
leaves the window. A good sign-in clears its account's failures, not its address's
(one valid account must not reset the address's count for guessing others).

The counts live in this node's memory: in a cluster each node counts on its own, so
an attacker spreading attempts over N nodes gets N times the attempts; restarting a
node forgets them. That is the price of needing no shared store for it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable

#: Keys remembered at most (oldest dropped first): a flood of made-up e-mails cannot fill memory.
MAX_KEYS = 100_000


class LoginLimits:
    """Failure times by key (``account:<email>``, ``address:<ip>``), pruned as they leave the window."""

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def retry_after(self, keys: Iterable[str], *, attempts: int, window_s: float) -> int | None:
        """Seconds until another attempt is allowed for all ``keys``; None if one is allowed now."""
        now = self._now()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if not times:
                    continue
                while times and times[0] <= now - window_s:
                    times.popleft()
                if not times:
                    del self._failures[key]
                    continue
                if len(times) >= attempts:
                    wait = max(wait, times[len(times) - attempts] + window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self._now()
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None) or deque(maxlen=1000)
                times.append(now)
                self._failures[key] = times  # re-inserted: dict order is least recently failed first
            while len(self._failures) > MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def keys_for(email: str, address: str) -> tuple[str, str]:
    return f"account:{email.strip().lower()}", f"address:{address}"
