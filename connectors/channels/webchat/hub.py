"""The web-chat sockets this node holds, and the per-visitor rate limit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import WebSocket

from engine.metrics import ACTIVE_SOCKETS

#: Buckets kept before those of departed visitors are swept.
PRUNE_AT = 10_000


@dataclass
class Bucket:
    """Token bucket: ``rate`` messages per second, bursts up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def full(self) -> bool:
        """Refilled to the brim: forgetting it changes nothing (a new bucket starts full)."""
        return self.tokens < 0 or self.tokens + (time.monotonic() - self.stamp) * self.rate >= self.burst


class Connection:
    """One open socket; sends are serialized (the delivery activity sends too)."""

    __slots__ = ("_lock", "contact_id", "socket")

    def __init__(self, socket: WebSocket[Any, Any, Any], contact_id: str) -> None:
        self.socket = socket
        self.contact_id = contact_id
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        """Send a frame; False if the socket is gone (the message stays in the store)."""
        try:
            async with self._lock:
                await self.socket.send_text(msgspec.json.encode(frame).decode())
        except Exception:  # closed under us: the visitor gets it from history on reconnect
            return False
        return True


class WebChatHub:
    """The sockets this node holds, by contact (a visitor may have several tabs open)."""

    def __init__(self, *, rate: float = 1.0, burst: int = 5) -> None:
        self._by_contact: dict[str, set[Connection]] = {}
        self._buckets: dict[str, Bucket] = {}
        self.rate = rate
        self.burst = burst

    def add(self, connection: Connection) -> None:
        self._by_contact.setdefault(connection.contact_id, set()).add(connection)
        ACTIVE_SOCKETS.inc()

    def remove(self, connection: Connection) -> None:
        sockets = self._by_contact.get(connection.contact_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self._by_contact[connection.contact_id]
                # A visitor who reconnects keeps a bucket that is not full yet: closing
                # and reopening the socket is no way around the limit.
                bucket = self._buckets.get(connection.contact_id)
                if bucket is not None and bucket.full():
                    del self._buckets[connection.contact_id]
        ACTIVE_SOCKETS.dec()

    def rekey(self, old: str, new: str) -> None:
        """Sockets (and the rate bucket) known by ``old`` are ``new``'s from now on.

        A visitor's contact is created with their first message, not when they
        connect; until then their sockets go by a placeholder id.
        """
        for connection in self._by_contact.pop(old, set()):
            connection.contact_id = new
            self._by_contact.setdefault(new, set()).add(connection)
        bucket = self._buckets.pop(old, None)
        if bucket is not None:
            self._buckets.setdefault(new, bucket)

    def online(self, contact_id: str) -> bool:
        return bool(self._by_contact.get(contact_id))

    def allow(self, contact_id: str) -> bool:
        """Rate limit per visitor, shared by all their tabs."""
        bucket = self._buckets.get(contact_id)
        if bucket is None:
            if len(self._buckets) >= PRUNE_AT:
                self._prune()
            bucket = self._buckets[contact_id] = Bucket(self.rate, float(self.burst))
        return bucket.take()

    def _prune(self) -> None:
        """Forget the full buckets of visitors who are gone (kept to close the reconnect loophole)."""
        for contact_id in [c for c, b in self._buckets.items() if c not in self._by_contact and b.full()]:
            del self._buckets[contact_id]

    async def push(self, contact_id: str, frame: dict[str, Any], *, skip: Connection | None = None) -> int:
        """Send a frame to every socket of a contact; returns how many took it."""
        targets = [c for c in self._by_contact.get(contact_id, ()) if c is not skip]
        results = await asyncio.gather(*(c.send(frame) for c in targets))
        return sum(results)

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_contact.values())
