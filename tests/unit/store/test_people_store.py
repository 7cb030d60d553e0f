"""The people part of the store on SQLite and PostgreSQL: queues, presence, loads, waiting, read marks, inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from engine.message_log import RecordInput
from engine.store import Store
from engine.store.people import InboxFilter
from engine.store.tables import AgentQueue, Conversation
from tests.people_support import add_user

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def add_conversation(store: Store, external: str, **columns: Any) -> str:
    contact = store.resolve_contact("webchat", external)
    conversation, _ = store.open_conversation(contact.id, "webchat")
    with Session(store.engine, expire_on_commit=False) as session:
        row = session.get(Conversation, conversation.id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()
    return conversation.id


def say(store: Store, conversation_id: str, text: str, direction: str = "in") -> int:
    row = store.record_message(
        RecordInput(
            conversation_id=conversation_id,
            direction=direction,
            text=text,
            channel="webchat",
            message_id=f"{conversation_id}-{text}",
            at=T0.isoformat(),
            status="received" if direction == "in" else "sent",
            sender="customer" if direction == "in" else "bot",
        )
    )
    assert row.seq is not None
    return row.seq


def test_admin_queues_create_replace_delete(fx_store: Store) -> None:
    made = fx_store.save_admin_queue(AgentQueue(name="billing", members=[1, 2], capacity=3), create=True)
    assert made is not None and made.members == [1, 2]
    assert fx_store.save_admin_queue(AgentQueue(name="billing"), create=True) is None  # exists
    assert fx_store.save_admin_queue(AgentQueue(name="nope"), create=False) is None  # does not
    replaced = fx_store.save_admin_queue(
        AgentQueue(name="billing", members=[2], when_nobody="fall_through"), create=False
    )
    assert replaced is not None
    stored = fx_store.get_admin_queue("billing")
    assert stored is not None and (stored.members, stored.capacity, stored.when_nobody) == ([2], None, "fall_through")
    assert [q.name for q in fx_store.list_admin_queues()] == ["billing"]
    assert fx_store.delete_admin_queue("billing") is True
    assert fx_store.delete_admin_queue("billing") is False
    assert fx_store.list_admin_queues() == []


def test_presence_is_kept_per_user(fx_store: Store) -> None:
    ana = add_user(fx_store, "ana@example.com")
    assert fx_store.get_presence(ana) == ("offline", None)
    assert fx_store.set_presence(ana, "online") == "offline"
    presence, since = fx_store.get_presence(ana) or ("", None)
    assert presence == "online" and since is not None
    assert fx_store.set_presence(9999, "online") is None
    assert fx_store.get_presence(9999) is None
    assert fx_store.users_by_email(["ANA@example.com ", "who@example.com"]) == {"ana@example.com": ana}


def test_loads_count_held_handoffs_only(fx_store: Store) -> None:
    add_conversation(fx_store, "1", status="handoff", queue="q", assigned_agent="7")
    add_conversation(fx_store, "2", status="handoff", queue="q", assigned_agent="7")
    add_conversation(fx_store, "3", status="handoff", queue="q", assigned_agent="8")
    add_conversation(fx_store, "4", status="ended", queue="q", assigned_agent="8")
    add_conversation(fx_store, "5", status="handoff", queue="q", waiting_since=T0)
    assert fx_store.agent_loads() == {"7": 2, "8": 1}
    assert fx_store.agent_loads(["8", "9"]) == {"8": 1}
    assert fx_store.agent_loads([]) == {}


def test_waiting_conversations_in_arrival_order_without_snoozed_or_held(fx_store: Store) -> None:
    late = add_conversation(fx_store, "1", status="handoff", queue="q", waiting_since=T0 + timedelta(minutes=2))
    early = add_conversation(fx_store, "2", status="handoff", queue="q", waiting_since=T0)
    add_conversation(fx_store, "3", status="handoff", queue="q", waiting_since=T0, assigned_agent="7")
    add_conversation(fx_store, "4", status="handoff", queue="other", waiting_since=T0)
    add_conversation(fx_store, "5", status="handoff", queue="q", waiting_since=T0, snoozed_until_reply=True)
    add_conversation(fx_store, "6", status="handoff", queue="q", waiting_since=T0, snoozed_until=T0 + timedelta(days=1))
    past = add_conversation(
        fx_store, "7", status="handoff", queue="q", waiting_since=T0 + timedelta(minutes=5), snoozed_until=T0
    )
    now = T0 + timedelta(hours=1)
    assert [c.id for c in fx_store.waiting_conversations("q", now=now)] == [early, late, past]
    stats = fx_store.queue_stats(now=now)
    assert stats["q"].waiting == 3 and stats["q"].oldest == T0
    assert stats["other"].waiting == 1


def test_read_marks_and_unread_counts(fx_store: Store) -> None:
    ana = add_user(fx_store, "ana@example.com")
    bo = add_user(fx_store, "bo@example.com")
    one = add_conversation(fx_store, "1", status="handoff")
    two = add_conversation(fx_store, "2", status="handoff")
    first = say(fx_store, one, "hello")
    say(fx_store, one, "hi", direction="out")  # ours: never unread
    say(fx_store, one, "anyone?")
    say(fx_store, two, "help")
    assert fx_store.unread_counts(ana, [one, two]) == {one: 2, two: 1}
    assert fx_store.mark_read(ana, one, first) == first
    assert fx_store.unread_counts(ana, [one, two]) == {one: 1, two: 1}
    assert fx_store.mark_read(ana, one, 0) == first  # never backwards
    assert fx_store.read_mark(ana, one) == first
    assert fx_store.unread_counts(bo, [one]) == {one: 2}  # per person
    assert fx_store.unread_counts(ana, []) == {}


def test_inbox_filters_and_visibility(fx_store: Store) -> None:
    now = T0 + timedelta(hours=1)
    a = add_conversation(fx_store, "a", status="handoff", queue="billing", labels=["vip", "refund"], waiting_since=T0)
    b = add_conversation(fx_store, "b", status="handoff", queue="billing", assigned_agent="7", labels=["refund"])
    c = add_conversation(fx_store, "c", status="handoff", queue="tech", assigned_agent="8")
    d = add_conversation(fx_store, "d", status="handoff", queue="tech", assigned_agent="7")
    e = add_conversation(fx_store, "e", status="handoff", queue="tech", snoozed_until_reply=True)
    f = add_conversation(fx_store, "f", status="open")

    def ids(**kw: Any) -> set[str]:
        return {row.id for row in fx_store.inbox(InboxFilter(**kw), now=now)}

    assert ids() == {a, b, c, d, f}  # the snoozed one is hidden by default
    assert ids(snoozed=True) == {e}
    assert ids(queue="billing") == {a, b}
    assert ids(assignee="7") == {b, d}
    assert ids(unassigned=True) == {a}
    assert ids(label="refund") == {a, b}
    assert ids(label="vip") == {a}
    assert ids(label="vi") == set()
    # An agent of billing who holds d: billing's conversations and d, not c, f.
    assert ids(visible_queues={"billing"}, viewer_agent="7") == {a, b, d}
    assert ids(visible_queues=set(), viewer_agent="9") == set()
    # tech was described by nobody: an open queue, every agent sees it (not f, never handed off).
    assert ids(visible_queues={"billing"}, viewer_agent="9", described_queues={"billing"}) == {a, b, c, d}
    assert ids(visible_queues=set(), viewer_agent="9", described_queues={"billing", "tech"}) == set()
    assert len(fx_store.inbox(InboxFilter(), limit=2)) == 2
    assert len(fx_store.inbox(InboxFilter(), limit=2, offset=4)) == 1
