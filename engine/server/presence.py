"""Agents' presence: online, away, offline; set by them (or a supervisor) and dropped when they are gone.

Presence is a column of the user (the store), so every node and the dispatcher read
the same answer. A change is published on the agent hub (``presence`` events: the
consoles show it) and, when someone comes online, pokes the dispatcher: waiting
conversations are assigned at once rather than at its next tick.

The agent socket (``/ws/agent``) calls :meth:`Presence.connected` and
:meth:`Presence.disconnected`. When a user's last socket on this node closes, a
timer of ``people.presence_grace_s`` starts; a socket back within it cancels it
(a reload, a flaky network), else the user goes offline. Only this node's sockets
are counted: a user with sockets on two nodes who closes the ones on one node
keeps presence as long as the hub says another connection is open
(``connections_of``: nodes on PostgreSQL tell each other whose sockets they hold).
Nothing sets a person online again by itself: an agent dropped to offline goes
online by saying so (the console does at sign-in). Away is kept while
connected: it is the agent's own choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from engine.server.agent_hub import AgentHub
from engine.store import Store
from engine.store.people import PRESENCES

log = logging.getLogger("flowdesk.presence")

ONLINE, AWAY, OFFLINE = PRESENCES


class Presence:
    def __init__(
        self,
        store: Store,
        hub: AgentHub,
        *,
        grace_s: Callable[[], float],
        on_online: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.grace_s = grace_s
        self.on_online = on_online
        self._connections: dict[int, int] = {}
        self._dropping: dict[int, asyncio.Task[None]] = {}

    async def set(self, user_id: int, presence: str, by: str = "") -> bool:
        """Set ``user_id``'s presence (``by``: who did, for the event); False if there is no such user."""
        if presence not in PRESENCES:
            raise ValueError(f"presence {presence!r} is not one of {', '.join(PRESENCES)}")
        before = await self.store.in_write_thread(self.store.set_presence, user_id, presence)
        if before is None:
            return False
        if before != presence:
            self.hub.publish(
                "presence",
                {"user_id": user_id, "agent_id": str(user_id), "presence": presence, "before": before, "by": by},
            )
            log.info("user %s is %s (was %s; set by %s)", user_id, presence, before, by or "themselves")
        if presence == ONLINE:
            self.on_online()
        return True

    async def get(self, user_id: int) -> tuple[str, datetime | None] | None:
        return await asyncio.to_thread(self.store.get_presence, user_id)

    def connected(self, user_id: int) -> None:
        """A console socket of ``user_id`` opened on this node: a pending drop to offline is called off."""
        self._connections[user_id] = self._connections.get(user_id, 0) + 1
        pending = self._dropping.pop(user_id, None)
        if pending is not None:
            pending.cancel()

    def disconnected(self, user_id: int) -> None:
        """A console socket closed; with none left, the user goes offline after the grace period."""
        left = self._connections.get(user_id, 0) - 1
        if left > 0:
            self._connections[user_id] = left
            return
        self._connections.pop(user_id, None)
        if user_id not in self._dropping:
            self._dropping[user_id] = asyncio.create_task(self._drop_later(user_id), name=f"presence drop {user_id}")

    def connections(self, user_id: int) -> int:
        return self._connections.get(user_id, 0)

    async def _drop_later(self, user_id: int) -> None:
        try:
            await asyncio.sleep(max(0.0, self.grace_s()))
            if self._connections.get(user_id, 0) > 0 or self.hub.connections_of(user_id) > 0:
                return
            await self.set(user_id, OFFLINE, by="system")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not set user %s offline after their last connection closed", user_id)
        finally:
            if self._dropping.get(user_id) is asyncio.current_task():
                self._dropping.pop(user_id, None)

    async def aclose(self) -> None:
        """Stop pending drops (a stopping node does not decide who is gone: the next one to start does not know)."""
        tasks = list(self._dropping.values())
        self._dropping.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
