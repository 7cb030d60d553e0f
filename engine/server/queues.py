"""The queues of this installation, read when asked: the settings' and the admins', members as user ids.

Read at most once per ``CACHE_S`` (two small queries: the admin queues, and the
settings' members' e-mails): every agent request asks what its caller may see, and
on a busy node those reads were a tenth of the process's time. A change made on
this node (an admin's queue edit, a user created or changed: the store's
``people_generation``) is seen at once; one made on another node, or a member added to
the settings, counts within ``CACHE_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.people.queues import AdminQueue, merge, open_queue, queues_of
from engine.people.roles import Principal, sees_every_queue
from engine.people.settings import QueueSpec
from engine.settings import Settings
from engine.store import Store
from engine.store.people import InboxFilter

#: Longest a read of the queues is reused (a change on another node counts within it).
CACHE_S = 2.0


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which conversations a principal sees: all (None), or those of ``queues``, of open queues, and their own."""

    queues: frozenset[str] | None
    described: frozenset[str]
    agent_id: str

    def sees(self, queue: str | None, assigned_agent: str | None) -> bool:
        if self.queues is None or (assigned_agent is not None and assigned_agent == self.agent_id):
            return True
        if queue is None:
            return False
        return queue in self.queues or queue not in self.described

    def narrow(self, where: InboxFilter) -> InboxFilter:
        """``where``, restricted to what this principal may see."""
        if self.queues is None:
            return where
        return replace(where, visible_queues=self.queues, viewer_agent=self.agent_id, described_queues=self.described)


class QueueDirectory:
    """The merged queue view for handlers and the dispatcher (``settings`` read live, through ``settings_of``)."""

    def __init__(self, store: Store, settings_of: Callable[[], Settings]) -> None:
        self.store = store
        self.settings_of = settings_of
        #: (when read, the store's people generation and the settings it was read with, the queues)
        self._cached: tuple[float, int, Settings, dict[str, QueueSpec]] | None = None

    def described_now(self) -> dict[str, QueueSpec]:
        """Every described queue (blocking: call it in a thread); at most ``CACHE_S`` old."""
        settings, generation = self.settings_of(), self.store.people_generation
        cached = self._cached
        if (
            cached is not None
            and cached[1] == generation
            and cached[2] is settings
            and time.monotonic() - cached[0] < CACHE_S
        ):
            return cached[3]
        described = self._read(settings)
        self._cached = (time.monotonic(), generation, settings, described)
        return described

    def _read(self, settings: Settings) -> dict[str, QueueSpec]:
        settings_queues = settings.people.queues
        emails = {e for spec in settings_queues.values() for e in spec.member_emails}
        admin = [
            AdminQueue(
                name=row.name,
                display_name=row.display_name,
                description=row.description,
                members=tuple(int(m) for m in row.members or ()),
                capacity=row.capacity,
                hours=row.hours,
                when_nobody=row.when_nobody,
            )
            for row in self.store.list_admin_queues()
        ]
        return merge(settings_queues, admin, self.store.users_by_email(emails))

    async def described(self) -> dict[str, QueueSpec]:
        return await asyncio.to_thread(self.described_now)

    async def spec(self, name: str) -> QueueSpec:
        """The queue ``name``: described, or open (nobody described it)."""
        return (await self.described()).get(name) or open_queue(name)

    async def visibility(self, principal: Principal) -> Visibility:
        if sees_every_queue(principal.role):
            return Visibility(None, frozenset(), principal.agent_id)
        described = await self.described()
        mine = queues_of(principal.user_id, described) if principal.user_id is not None else frozenset()
        return Visibility(mine, frozenset(described), principal.agent_id)
