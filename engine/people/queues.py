"""The queues people work in: those of ``flowdesk.yaml`` and those admins describe, as one view.

Pure: the server reads the settings, the admin queues and the users, and asks
:func:`merge` for the view; who may see and get a queue's conversations is
:func:`members_of` / :func:`queues_of`.

A name in both places is the settings' queue (settings queues are read-only
through the API, so an admin cannot shadow one by accident; the admin row stays
and reappears if the settings drop it). A queue a flow hands off to that nobody
described is *open*: every agent is a member, so a hand-off never waits for
nobody because a queue was not written down (the validator warns about it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from engine.people.settings import WAIT, QueueSpec

ADMIN = "admin"
SETTINGS = "settings"
OPEN = "open"


@dataclass(frozen=True, slots=True)
class AdminQueue:
    """An admin-described queue as the store keeps it (engine.store.tables.AgentQueue)."""

    name: str
    display_name: str = ""
    description: str = ""
    members: tuple[int, ...] = ()
    capacity: int | None = None
    hours: str | None = None
    when_nobody: str = WAIT


def merge(
    settings_queues: Mapping[str, QueueSpec],
    admin_queues: Iterable[AdminQueue],
    user_ids_by_email: Mapping[str, int],
) -> dict[str, QueueSpec]:
    """Every described queue by name, members as user ids (settings' e-mails resolved; unknown ones dropped)."""
    merged: dict[str, QueueSpec] = {}
    for queue in admin_queues:
        merged[queue.name] = QueueSpec(
            name=queue.name,
            display_name=queue.display_name,
            description=queue.description,
            member_ids=tuple(queue.members),
            capacity=queue.capacity,
            hours=queue.hours,
            when_nobody=queue.when_nobody,
            source=ADMIN,
        )
    for name, spec in settings_queues.items():
        ids = tuple(user_ids_by_email[e] for e in spec.member_emails if e in user_ids_by_email)
        merged[name] = replace(spec, member_ids=tuple(dict.fromkeys((*spec.member_ids, *ids))), source=SETTINGS)
    return dict(sorted(merged.items()))


def open_queue(name: str) -> QueueSpec:
    """A queue nobody described: every agent is a member, no hours, hand-offs wait."""
    return QueueSpec(name=name, source=OPEN)


def members_of(spec: QueueSpec, agent_user_ids: Collection[int]) -> tuple[int, ...]:
    """Who works a queue: its members, or every agent for an open queue."""
    if spec.source == OPEN:
        return tuple(sorted(agent_user_ids))
    return spec.member_ids


def queues_of(user_id: int, queues: Mapping[str, QueueSpec]) -> frozenset[str]:
    """The described queues a user is a member of."""
    return frozenset(name for name, spec in queues.items() if user_id in spec.member_ids)


def capacity_of(user_capacity: int | None, spec: QueueSpec, default: int) -> int:
    """The most conversations an agent holds: their own setting, else the queue's, else the settings'."""
    for value in (user_capacity, spec.capacity):
        if value is not None:
            return max(0, int(value))
    return max(0, default)
