"""The queues of this installation, read when asked: the settings' and the admins', members as user ids.

Read anew on every call (one small query each for the admin queues and for the
settings' members' e-mails) rather than cached: a queue an admin edits on another
node, or a member added to the settings, counts at the next round or request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.people.queues import AdminQueue, merge, open_queue, queues_of
from engine.people.roles import Principal, sees_every_queue
from engine.people.settings import QueueSpec
from engine.settings import Settings
from engine.store import Store
from engine.store.people import InboxFilter


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

    def described_now(self) -> dict[str, QueueSpec]:
        """Every described queue (blocking: call it in a thread)."""
        settings_queues = self.settings_of().people.queues
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
