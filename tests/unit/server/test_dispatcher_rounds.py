"""The dispatcher's rounds against a real store, with the workflow's side played by a recorder.

The recorder does what the workflow and the store's log derivation do for an
assignment (the conversation is held, no longer waiting), or refuses as a lost claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import Session

from engine.runtime.client import Conversations, ConversationTaken
from engine.runtime.types import ActionAccepted, AgentAction
from engine.server.agent_hub import AgentHub
from engine.server.dispatcher import Dispatcher, pokes
from engine.server.queues import QueueDirectory
from engine.settings import Settings
from engine.store import Store
from engine.store.tables import Conversation, UserAccount

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday, 10:00 UTC


@dataclass
class Workflows:
    """Stands in for the conversations' workflows: records actions, applies assignments to the store."""

    store: Store
    actions: list[tuple[str, AgentAction]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    apply: bool = True

    async def agent(self, conversation_id: str, action: AgentAction) -> ActionAccepted:
        if action.action == "assign" and conversation_id in self.taken:
            raise ConversationTaken("99")
        self.actions.append((conversation_id, action))
        if action.action == "assign" and self.apply:
            update(self.store, conversation_id, assigned_agent=action.agent, waiting_since=None)
        return ActionAccepted()

    def of(self, kind: str) -> list[tuple[str, AgentAction]]:
        return [(c, a) for c, a in self.actions if a.action == kind]


def update(store: Store, conversation_id: str, **columns: Any) -> None:
    with Session(store.engine) as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def add_agent(store: Store, email: str, *, presence: str = "online", capacity: int | None = 1) -> str:
    with Session(store.engine, expire_on_commit=False) as session:
        user = UserAccount(
            email=email,
            display_name=email.partition("@")[0].title(),
            role="agent",
            password_hash="x",
            presence=presence,
            capacity=capacity,
        )
        session.add(user)
        session.commit()
        return str(user.id)


def hand_off(store: Store, external: str, queue: str, minute: int) -> str:
    contact = store.resolve_contact("webchat", external)
    conversation, _ = store.open_conversation(contact.id, "webchat")
    update(store, conversation.id, status="handoff", queue=queue, waiting_since=T0 + timedelta(minutes=minute))
    return conversation.id


@pytest.fixture(name="fx_rig")
def fixture_rig(tmp_path: Path) -> Iterator[tuple[Store, Workflows, list[Settings]]]:
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    store.upgrade()
    yield store, Workflows(store), [Settings.from_mapping({}, environ={})]
    store.close()


def dispatcher(store: Store, workflows: Workflows, settings: list[Settings], *, now: datetime = T0) -> Dispatcher:
    directory = QueueDirectory(store, lambda: settings[0])
    conversations = cast(Conversations, workflows)
    made = Dispatcher(store, conversations, AgentHub(), directory, clock=lambda: now + timedelta(hours=1))
    made._started_at = T0 - timedelta(days=1)  # started before every hand-off of the test
    return made


async def test_capacity_and_presence_decide_who_gets_what(fx_rig: tuple[Store, Workflows, list[Settings]]) -> None:
    store, workflows, settings = fx_rig
    ana, bo = add_agent(store, "ana@example.com"), add_agent(store, "bo@example.com")
    add_agent(store, "cy@example.com", presence="offline", capacity=10)
    one, two, three = (hand_off(store, str(i), "support", i) for i in range(3))
    rounds = dispatcher(store, workflows, settings)

    report = await rounds.run_round()
    assert {c for c, _a in report.assigned} == {one, two}
    assert {a for _c, a in report.assigned} == {ana, bo}
    # Both agents are full: the third waits, and its customer hears their place once.
    assert report.positions == [(three, 1)]
    names = {a.agent: a.name for _c, a in workflows.of("assign")}
    assert names == {ana: "Ana", bo: "Bo"}
    assert all(a.by == "system" for _c, a in workflows.of("assign"))

    again = await rounds.run_round()
    assert again.assigned == [] and again.positions == []  # told once

    # Ana resolves her conversation: the next round gives her the one waiting.
    holder_of_one = dict(report.assigned)[one]
    update(store, one, status="open", assigned_agent=None)
    freed = await rounds.run_round()
    assert freed.assigned == [(three, holder_of_one)]
    # The offline agent, with room for ten, never got one.
    assert all(a.agent in (ana, bo) for _c, a in workflows.of("assign"))


async def test_an_agent_coming_online_gets_what_waits(fx_rig: tuple[Store, Workflows, list[Settings]]) -> None:
    store, workflows, settings = fx_rig
    dee = add_agent(store, "dee@example.com", presence="away", capacity=3)
    waiting = hand_off(store, "1", "support", 0)
    rounds = dispatcher(store, workflows, settings)
    assert (await rounds.run_round()).assigned == []
    store.set_presence(int(dee), "online")
    assert (await rounds.run_round()).assigned == [(waiting, dee)]


async def test_nobody_online_is_said_once_with_the_queues_fall_through(
    fx_rig: tuple[Store, Workflows, list[Settings]],
) -> None:
    store, workflows, settings = fx_rig
    add_agent(store, "ana@example.com", presence="offline")
    settings[0] = Settings.from_mapping(
        {"queues": {"billing": {"members": ["ana@example.com"], "when_nobody": "fall_through"}}}, environ={}
    )
    billing = hand_off(store, "1", "billing", 0)
    other = hand_off(store, "2", "tech", 1)  # an open queue: every agent; nobody is online either
    rounds = dispatcher(store, workflows, settings)
    report = await rounds.run_round()
    assert sorted(report.unavailable) == sorted([billing, other])
    told = {c: a for c, a in workflows.of("unavailable")}
    assert told[billing].fall_through is True and told[other].fall_through is False
    assert (await rounds.run_round()).unavailable == []


async def test_a_closed_queue_is_unavailable_even_with_agents_online(
    fx_rig: tuple[Store, Workflows, list[Settings]],
) -> None:
    store, workflows, settings = fx_rig
    add_agent(store, "ana@example.com")
    settings[0] = Settings.from_mapping(
        {
            "business_hours": {"office": {"timezone": "UTC", "weekly": {"tue": ["09:00-17:00"]}}},
            "queues": {"billing": {"members": ["ana@example.com"], "hours": "office"}},
        },
        environ={},
    )
    waiting = hand_off(store, "1", "billing", 0)
    report = await dispatcher(store, workflows, settings).run_round()  # Monday: closed
    assert report.assigned == [] and report.unavailable == [waiting]


async def test_a_lost_claim_is_skipped(fx_rig: tuple[Store, Workflows, list[Settings]]) -> None:
    store, workflows, settings = fx_rig
    add_agent(store, "ana@example.com")
    taken = hand_off(store, "1", "support", 0)
    workflows.taken.add(taken)
    report = await dispatcher(store, workflows, settings).run_round()
    assert report.assigned == [] and report.lost == [taken]


async def test_assignments_the_store_does_not_show_yet_still_count(
    fx_rig: tuple[Store, Workflows, list[Settings]],
) -> None:
    store, workflows, settings = fx_rig
    ana = add_agent(store, "ana@example.com")
    workflows.apply = False  # the log has not reached the store yet
    one, two = hand_off(store, "1", "support", 0), hand_off(store, "2", "support", 1)
    rounds = dispatcher(store, workflows, settings)
    assert (await rounds.run_round()).assigned == [(one, ana)]
    assert (await rounds.run_round()).assigned == []  # ana's one place is taken by `one`
    assert [c for c, _a in workflows.of("assign")] == [one]
    assert two not in {c for c, _a in workflows.of("assign")}
    # `one` is handed off again (transferred back to the queue): the assignment of the old
    # hand-off no longer holds ana's place, and the longest waiting, `two`, is hers.
    update(store, one, waiting_since=T0 + timedelta(minutes=30))
    assert (await rounds.run_round()).assigned == [(two, ana)]


def test_what_wakes_a_round() -> None:
    assert pokes({"kind": "message", "data": {"direction": "event", "status": "handoff"}})
    assert not pokes({"kind": "message", "data": {"direction": "in", "text": "hi"}})
    assert pokes({"kind": "conversation", "data": {"status": "handoff", "assigned_agent": None}})
    assert not pokes({"kind": "conversation", "data": {"status": "handoff", "assigned_agent": "7"}})
    assert not pokes({"kind": "conversation", "data": {"status": "open"}})
    assert pokes({"kind": "presence", "data": {"presence": "online"}})
    assert not pokes({"kind": "presence", "data": {"presence": "away"}})
    assert not pokes({"kind": "typing", "data": {}})
