"""Agent and queue reports, computed from a conversation log's events: pure functions, no database.

The store reads the log lines that matter (hand-off events and agents' replies) of
the conversations active in a range and the CSAT ratings given in it; this module
walks each conversation's lines in order and measures:

- **first reply**: from the moment the agent got the conversation (its ``assigned``
  event; when the agent took it by replying, the moment it entered the queue) to
  the agent's first reply;
- **resolution**: from that same moment to the ``resolved`` / ``handoff_resolved`` event;
- **assignment wait**: from entering a queue (``handoff``) to an agent getting it;
- **abandoned**: the conversation ended while waiting in a queue.

Each measurement belongs to the range its *closing* event falls in (a reply at 09:01
to a hand-off at 08:59 counts for the 09:00 hour); a hand-off is counted when it
starts and a conversation is *handled* by an agent when they got it. Percentiles are
nearest-rank: the value reported is one that was measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: Log events that hand a conversation back to the bot (an agent's holding ends with it).
RESOLVED = frozenset({"resolved", "handoff_resolved"})


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One log line that matters to reports: an event (``kind`` = its status) or an agent's reply (``reply``)."""

    conversation_id: str
    seq: int
    kind: str
    at: datetime
    #: the agent's id for ``assigned`` and ``reply`` (from ``agent:<id>``); "" otherwise
    agent: str = ""
    #: the queue of a ``handoff``
    queue: str = ""


@dataclass(frozen=True, slots=True)
class Rating:
    """A customer's CSAT rating (1-5) and whom it rates."""

    rating: int
    at: datetime
    agent: str | None
    queue: str | None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` 0.5 is the median); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class AgentStats:
    agent: str
    handled: set[str] = field(default_factory=set)
    first_reply: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)


@dataclass
class QueueStats:
    queue: str
    handoffs: int = 0
    assignment_wait: list[float] = field(default_factory=list)
    abandoned: int = 0
    ratings: list[int] = field(default_factory=list)


@dataclass
class Report:
    """What a range's events add up to, per agent and per queue (sorted by name)."""

    agents: list[AgentStats]
    queues: list[QueueStats]


@dataclass
class _Holding:
    """Where one conversation stands while its events are walked."""

    queue: str = ""
    #: entered its queue at; None unless it waits for an agent
    waiting_since: datetime | None = None
    agent: str = ""
    #: the agent got it at (the clock of first reply and resolution)
    since: datetime | None = None
    replied: bool = False


def compute(events: Iterable[LogEvent], ratings: Iterable[Rating], since: datetime, until: datetime) -> Report:
    """The report of ``[since, until)`` from every relevant event of the conversations active in it.

    ``events`` may include lines before ``since`` (a hand-off that started earlier) and
    after ``until``; each conversation's lines are taken in ``seq`` order.
    """
    agents: dict[str, AgentStats] = {}
    queues: dict[str, QueueStats] = {}

    def agent(name: str) -> AgentStats:
        return agents.setdefault(name, AgentStats(name))

    def queue(name: str) -> QueueStats:
        return queues.setdefault(name, QueueStats(name))

    def inside(at: datetime) -> bool:
        return since <= at < until

    def first_reply(state: _Holding, event: LogEvent) -> None:
        if state.replied or state.since is None:
            return
        state.replied = True
        if inside(event.at):
            agent(event.agent).first_reply.append(_seconds(state.since, event.at))

    by_conversation: dict[str, list[LogEvent]] = {}
    for event in events:
        by_conversation.setdefault(event.conversation_id, []).append(event)
    for conversation_id, lines in by_conversation.items():
        state = _Holding()
        for event in sorted(lines, key=lambda e: e.seq):
            if event.at >= until:
                break  # nothing later can close a measurement of this range
            if event.kind == "handoff":
                state = _Holding(queue=event.queue, waiting_since=event.at)
                if inside(event.at):
                    queue(event.queue).handoffs += 1
            elif event.kind == "assigned" or (event.kind == "reply" and not state.agent):
                if not event.agent or (event.kind == "reply" and state.waiting_since is None):
                    continue  # a reply while nobody waits (before any hand-off, after resolving): no holding
                started = state.waiting_since
                if started is not None and state.queue and inside(event.at):
                    queue(state.queue).assignment_wait.append(_seconds(started, event.at))
                if inside(event.at):
                    agent(event.agent).handled.add(conversation_id)
                # Took it by replying: the customer waited since the queue entry for this reply.
                clock = started if event.kind == "reply" and started is not None else event.at
                state.agent, state.since, state.waiting_since, state.replied = event.agent, clock, None, False
                if event.kind == "reply":
                    first_reply(state, event)
            elif event.kind == "reply" and event.agent == state.agent:
                first_reply(state, event)
            elif event.kind in RESOLVED:
                if state.agent and state.since is not None and inside(event.at):
                    agent(state.agent).resolution.append(_seconds(state.since, event.at))
                state = _Holding(queue=state.queue)
            elif event.kind == "handoff_cancelled":
                state = _Holding(queue=state.queue)
            elif event.kind == "ended":
                if state.waiting_since is not None and state.queue and inside(event.at):
                    queue(state.queue).abandoned += 1
                state = _Holding(queue=state.queue)
    for rating in ratings:
        if not inside(rating.at):
            continue
        if rating.agent:
            agent(rating.agent).ratings.append(rating.rating)
        if rating.queue:
            queue(rating.queue).ratings.append(rating.rating)
    return Report(
        agents=[agents[name] for name in sorted(agents)],
        queues=[queues[name] for name in sorted(queues)],
    )


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def average(values: Sequence[int]) -> float | None:
    """The mean rating, two decimals; None without ratings."""
    return round(sum(values) / len(values), 2) if values else None
