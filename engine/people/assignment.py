"""Who gets a waiting conversation: the assignment policy, pure (no I/O, no clock).

The dispatcher (engine/server/dispatcher.py) reads the waiting conversations and the
candidate agents of a queue from the store and asks :func:`plan` what to do. Keeping
the decision here lets it be tested exhaustively; the claim itself is decided by the
conversation's workflow, so a plan that loses a race (another node, an agent's take)
is only a skipped assignment, never a conversation held twice.

Policy (issue 18): conversations in arrival order (a higher hand-off priority first,
then the oldest wait); each goes to the candidate with the most free capacity; among
equally free candidates, round robin: the first one after the queue's cursor (the
agent picked last time, kept by the caller between rounds), so that a quiet queue
does not always wake the same person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    """A conversation waiting in a queue for an agent."""

    conversation_id: str
    waiting_since: datetime
    #: higher goes first; 0 when the hand-off says nothing
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent who may get conversations of the queue now: online and a member."""

    agent_id: str
    #: conversations in hand-off they hold now
    load: int
    capacity: int

    @property
    def free(self) -> int:
        return self.capacity - self.load


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What one round does in one queue: who gets what, who keeps waiting, and the cursor after it."""

    assignments: tuple[Assignment, ...] = ()
    #: still waiting, in arrival order (their position is their index + 1)
    waiting: tuple[str, ...] = ()
    #: the agent picked last; the caller passes it back next round
    cursor: str | None = None
    #: loads after the plan, by agent (for the caller's next queue in the same round)
    loads: dict[str, int] = field(default_factory=dict)


def arrival_order(waiting: Sequence[Waiting]) -> list[Waiting]:
    """Higher priority first, then the longest wait, then the id (a stable order for equal times)."""
    return sorted(waiting, key=lambda w: (-w.priority, w.waiting_since, w.conversation_id))


def _pick(candidates: Sequence[Candidate], loads: dict[str, int], cursor: str | None) -> Candidate | None:
    """The candidate with the most free capacity; ties go to the first one after ``cursor`` (by id)."""
    free = {c.agent_id: c.capacity - loads[c.agent_id] for c in candidates}
    best = max(free.values(), default=0)
    if best <= 0:
        return None
    tied = sorted(c for c in free if free[c] == best)
    if cursor is not None:
        after = [agent for agent in tied if agent > cursor]
        if after:
            tied = after
    chosen = tied[0]
    return next(c for c in candidates if c.agent_id == chosen)


def plan(waiting: Sequence[Waiting], candidates: Sequence[Candidate], *, cursor: str | None = None) -> Plan:
    """Assign each waiting conversation, in arrival order, while anyone has free capacity.

    ``candidates`` are the queue's members who may take work now (online); those
    at or over capacity are considered and never chosen. Agent ids repeated in
    ``candidates`` count once (the first entry).
    """
    unique: dict[str, Candidate] = {}
    for candidate in candidates:
        unique.setdefault(candidate.agent_id, candidate)
    people = list(unique.values())
    loads = {c.agent_id: c.load for c in people}
    assignments: list[Assignment] = []
    left: list[str] = []
    for item in arrival_order(waiting):
        chosen = _pick(people, loads, cursor)
        if chosen is None:
            left.append(item.conversation_id)
            continue
        loads[chosen.agent_id] += 1
        cursor = chosen.agent_id
        assignments.append(Assignment(item.conversation_id, chosen.agent_id))
    return Plan(assignments=tuple(assignments), waiting=tuple(left), cursor=cursor, loads=loads)
