"""The dispatcher: gives waiting conversations to online agents, and tells customers where they stand.

A round reads, for each queue with conversations waiting, who waits (arrival
order) and who may take them (online members below capacity), asks the policy
(engine/people/assignment.py) and sends each decision to the conversation's
workflow as an ``assign`` action. The workflow decides the claim: a conversation
an agent took by hand in the meantime (or another node's dispatcher gave away) is
refused with ConversationTaken, and the round skips it. So dispatchers can run on
every node of a cluster: correctness never depends on there being one.

Rounds run when poked (a hand-off, a resolve, a transfer, someone coming online:
through :meth:`Dispatcher.poke`, called by the agent hub's events and by
Presence) and every ``interval_s`` regardless, for what a poke missed (a timer, an
event of another node the hub did not carry).

What the customer is told, once per hand-off:

- nobody of the queue is online, or the queue's ``hours`` say it is closed:
  ``unavailable`` (with ``fall_through`` for queues whose ``when_nobody`` says so:
  the hand-off then takes its ``on_timeout`` path at once);
- it could not be assigned at once: ``position`` (their place in the queue).

"Once" is this node's memory: a hand-off is told about only in the round that
first sees it waiting, and a node that starts does not tell those that were
waiting before it started (the node that was running told them). In a cluster
two nodes whose rounds both see a new hand-off before either assigned it both
tell it, which is rare (the first node's round usually assigns it first: the
hand-off's event reaches the node of the worker that wrote it first); the price
of never telling twice would be a shared claim per message in the database. A
hand-off no node saw waiting (every node was down) is not told; its own timeout
still runs.

Loads come from the store, which learns of an assignment from the workflow's log
a moment after the update returned; the assignments this node made in the last
``RECENT_S`` seconds are counted on top until the store shows them, so two quick
rounds do not give one agent more than their capacity. Across nodes capacity is each
node's view: two nodes' rounds that run within the moment an assignment takes to reach
the store may both give the freest agent one conversation more (the claim itself is
still the workflow's: never one conversation to two agents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from engine.flow.calendar import BusinessCalendar
from engine.people.assignment import Candidate, Waiting, plan
from engine.people.queues import capacity_of, members_of, open_queue
from engine.people.roles import AGENT_ROLES
from engine.people.settings import FALL_THROUGH, QueueSpec
from engine.runtime.client import ConversationEnded, Conversations
from engine.runtime.types import AgentAction
from engine.server.agent_calls import AgentActionRefused, ConversationTaken, refusal
from engine.server.agent_hub import AgentHub
from engine.server.queues import QueueDirectory
from engine.store import Store
from engine.store.columns import utcnow
from engine.store.people import PRESENCES
from engine.store.tables import UserAccount

log = logging.getLogger("flowdesk.dispatcher")

ONLINE = PRESENCES[0]
#: How long this node counts an assignment it made before the store shows it.
RECENT_S = 30.0
#: Conversations read per queue per round: the oldest ones, which are the ones assigned first.
PER_QUEUE = 200


@dataclass
class RoundReport:
    """What a round did (tests and logs read it)."""

    assigned: list[tuple[str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    positions: list[tuple[str, int]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


def pokes(event: Mapping[str, Any]) -> bool:
    """Whether a hub event can change what a round does: a log event (a hand-off, an assignment,
    a resolve, a transfer, an end: capacity or a queue changed), a conversation waiting, someone online.

    Customers' and bots' messages do not: on a busy node they would run a round per message.
    """
    kind, data = event.get("kind"), event.get("data") or {}
    if kind == "message":
        return bool(data.get("direction") == "event")
    if kind == "conversation":
        return bool(data.get("status") == "handoff" and not data.get("assigned_agent"))
    if kind == "presence":
        return bool(data.get("presence") == ONLINE)
    return False


class Dispatcher:
    def __init__(
        self,
        store: Store,
        conversations: Conversations,
        hub: AgentHub,
        directory: QueueDirectory,
        *,
        interval_s: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.conversations = conversations
        self.hub = hub
        self.directory = directory
        self.interval_s = interval_s
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cursors: dict[str, str | None] = {}
        #: conversation id -> the waiting_since of the hand-off this node has seen waiting
        self._seen: dict[str, datetime | None] = {}
        #: conversation id -> (agent id, monotonic time, the hand-off's waiting_since) of assignments
        #: this node made that the store may not show yet
        self._recent: dict[str, tuple[str, float, datetime | None]] = {}
        self._started_at: datetime | None = None
        self._bad_calendars: set[str] = set()
        self.rounds = 0
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started_at = self.clock()
        self.hub.subscribe(self._on_event)
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def aclose(self) -> None:
        # The flag and the wake-up end the loop even where a cancel is lost on the way (a call of
        # the round that swallows it): a stopping node must never wait for this task forever.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Run a round soon (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def _on_event(self, event: Mapping[str, Any]) -> None:
        if pokes(event):
            self.poke()

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives as the event is set, and a stop would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.run_round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("an assignment round failed; the next one tries again")

    # -- a round ----------------------------------------------------------------------

    async def run_round(self) -> RoundReport:
        """One assignment round over every queue with conversations waiting."""
        report = RoundReport()
        store = self.store
        now = self.clock()
        described = await self.directory.described()
        stats = await asyncio.to_thread(store.queue_stats, now)
        people = {u.id: u for u in await asyncio.to_thread(store.list_people, [str(r) for r in AGENT_ROLES])}
        loads = await asyncio.to_thread(store.agent_loads)
        seen_now: dict[str, datetime | None] = {}
        for name in sorted(stats):
            spec = described.get(name) or open_queue(name)
            waiting = await asyncio.to_thread(store.waiting_conversations, name, limit=PER_QUEUE, now=now)
            fresh = self._fresh(waiting, seen_now)
            waiting = [c for c in waiting if not self._assigned_recently(c, loads)]
            await self._round_in_queue(spec, waiting, fresh, people, loads, now, report)
        self._seen = seen_now
        self._forget_recent(loads)
        self.rounds += 1
        if report.assigned or report.unavailable:
            log.info(
                "assigned %d conversation(s), told %d nobody is available",
                len(report.assigned),
                len(report.unavailable),
            )
        return report

    def _fresh(self, waiting: list[Any], seen_now: dict[str, datetime | None]) -> set[str]:
        """The hand-offs this round is the first (of this node) to see waiting."""
        fresh = set()
        for conversation in waiting:
            since = conversation.waiting_since
            seen_now[conversation.id] = since
            if conversation.id in self._seen and self._seen[conversation.id] == since:
                continue
            if self.rounds == 0 and since is not None and self._started_at is not None and since < self._started_at:
                continue  # waiting before this node started: the node then running told them
            fresh.add(conversation.id)
        return fresh

    def _assigned_recently(self, conversation: Any, loads: dict[str, int]) -> bool:
        """True if this node assigned this hand-off moments ago (the store does not show it yet): counted as held.

        A conversation waiting since another time is a new hand-off (transferred back to a
        queue, reopened): the assignment made for the old one no longer counts.
        """
        recent = self._recent.get(conversation.id)
        if recent is None:
            return False
        agent, at, since = recent
        if time.monotonic() - at > RECENT_S or since != conversation.waiting_since:
            self._recent.pop(conversation.id, None)
            return False
        loads[agent] = loads.get(agent, 0) + 1
        return True

    def _forget_recent(self, loads: dict[str, int]) -> None:
        cutoff = time.monotonic() - RECENT_S
        for conversation_id in [c for c, (_a, at, _s) in self._recent.items() if at < cutoff]:
            self._recent.pop(conversation_id, None)

    def _is_closed(self, spec: QueueSpec, now: datetime) -> bool:
        if not spec.hours:
            return False
        calendars = self.directory.settings_of().get("business_hours", default={}) or {}
        block = calendars.get(spec.hours) if isinstance(calendars, Mapping) else None
        try:
            if block is None:
                raise ValueError(f"there is no business_hours calendar {spec.hours!r}")
            return not BusinessCalendar.from_settings(block).is_open(now)
        except ValueError as exc:
            if spec.hours not in self._bad_calendars:
                self._bad_calendars.add(spec.hours)
                log.warning("queue %s: its hours are not usable (%s); treated as always open", spec.name, exc)
            return False

    async def _round_in_queue(  # noqa: PLR0917 - one round's state, passed down once
        self,
        spec: QueueSpec,
        waiting: list[Any],
        fresh: set[str],
        people: Mapping[int | None, UserAccount],
        loads: dict[str, int],
        now: datetime,
        report: RoundReport,
    ) -> None:
        if not waiting:
            return
        agent_ids = [uid for uid, u in people.items() if uid is not None and u.role != "editor"]
        default = self.directory.settings_of().people.default_capacity
        candidates = [
            Candidate(str(uid), loads.get(str(uid), 0), capacity_of(people[uid].capacity, spec, default))
            for uid in members_of(spec, agent_ids)
            if uid in people and people[uid].presence == ONLINE
        ]
        if not candidates or self._is_closed(spec, now):
            for conversation in waiting:
                if conversation.id in fresh:
                    action = AgentAction(
                        action="unavailable",
                        by="system",
                        queue=spec.name,
                        fall_through=spec.when_nobody == FALL_THROUGH,
                    )
                    if await self._send(conversation.id, action):
                        report.unavailable.append(conversation.id)
            return
        since = {c.id: c.waiting_since for c in waiting}
        decided = plan(
            [Waiting(c.id, c.waiting_since or c.created_at) for c in waiting],
            candidates,
            cursor=self._cursors.get(spec.name),
        )
        self._cursors[spec.name] = decided.cursor
        for assignment in decided.assignments:
            user = people.get(int(assignment.agent_id))
            action = AgentAction(
                action="assign",
                agent=assignment.agent_id,
                by="system",
                name=user.display_name if user is not None else assignment.agent_id,
            )
            if await self._send(assignment.conversation_id, action):
                loads[assignment.agent_id] = loads.get(assignment.agent_id, 0) + 1
                self._recent[assignment.conversation_id] = (
                    assignment.agent_id,
                    time.monotonic(),
                    since.get(assignment.conversation_id),
                )
                report.assigned.append((assignment.conversation_id, assignment.agent_id))
            else:
                report.lost.append(assignment.conversation_id)
        for place, conversation_id in enumerate(decided.waiting, start=1):
            if conversation_id in fresh and await self._send(
                conversation_id, AgentAction(action="position", by="system", queue=spec.name, position=place)
            ):
                report.positions.append((conversation_id, place))

    async def _send(self, conversation_id: str, action: AgentAction) -> bool:
        """Send one action; False (logged at debug) when the workflow refuses it: a lost race is normal here."""
        try:
            await self.conversations.agent(conversation_id, action)
        except (ConversationTaken, AgentActionRefused, ConversationEnded, WorkflowUpdateFailedError) as exc:
            log.debug("%s of %s refused: %s", action.action, conversation_id, refusal(exc))
            return False
        except RPCError as exc:
            log.warning("%s of %s not sent: %s", action.action, conversation_id, exc.message)
            return False
        return True
