"""Canned responses, the audit log's filters and the reports' reads, on SQLite and PostgreSQL.

Report data is written the way the workflow writes it: log entries through the
store's own ``record`` (hand-off, assigned, agents' replies, resolved, ended).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event

from engine.message_log import RecordInput
from engine.store import Store
from engine.store.canned import CannedShortcutTaken
from engine.store.tables import Conversation, CsatRating, UserAccount

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def _user(store: Store, email: str, name: str, presence: str = "offline") -> int:
    with store._write() as session:
        user = UserAccount(email=email, display_name=name, role="agent", password_hash="x", presence=presence)
        session.add(user)
        session.flush()
        assert user.id is not None
        return user.id


def log(store: Store, conversation: str, kind: str, seconds: float, *, agent: str = "", text: str = "") -> None:
    """One log line at T0 + ``seconds``: an event (``kind``), or an agent's or the bot's reply."""
    at = (T0 + timedelta(seconds=seconds)).isoformat()
    key = f"{kind}-{seconds}"
    if kind == "reply":
        entry = RecordInput(
            conversation, "out", text or "hello", "webchat", key, at, status="sent", sender=f"agent:{agent}"
        )
    elif kind == "bot":
        entry = RecordInput(conversation, "out", text or "hi", "webchat", key, at, status="sent", sender="bot")
    else:
        sender = f"agent:{agent}" if agent else "system"
        entry = RecordInput(conversation, "event", text, "webchat", key, at, status=kind, sender=sender, detail=text)
    store.record(entry)


def rate(store: Store, conversation: str, rating: int, *, agent: str, queue: str, seconds: float) -> None:
    with store._write() as session:
        at = T0 + timedelta(seconds=seconds)
        session.add(CsatRating(conversation_id=conversation, rating=rating, agent=agent, queue=queue, at=at))


def _history(store: Store) -> None:
    # c1: waits a minute in tier1, agent 7 answers 30 s after getting it, resolves 9 minutes later, rated 5.
    log(store, "c1", "bot", 0)
    log(store, "c1", "handoff", 0, text="tier1")
    log(store, "c1", "assigned", 60, agent="7", text="Ana")
    log(store, "c1", "reply", 90, agent="7")
    log(store, "c1", "reply", 200, agent="7")
    log(store, "c1", "resolved", 600)
    rate(store, "c1", 5, agent="7", queue="tier1", seconds=610)
    # c2: agent 8 takes it by replying 30 s after it entered tier1; resolved 90 s after the hand-off.
    log(store, "c2", "handoff", 10, text="tier1")
    log(store, "c2", "reply", 40, agent="8")
    log(store, "c2", "handoff_resolved", 100)
    rate(store, "c2", 2, agent="8", queue="tier1", seconds=120)
    # c3: the customer leaves while waiting.
    log(store, "c3", "handoff", 20, text="tier1")
    log(store, "c3", "ended", 300, text="abandoned")
    # c4: billing, agent 7 gets it, transfers it to tier1, agent 8 gets it and answers 5 s later.
    log(store, "c4", "handoff", 0, text="billing")
    log(store, "c4", "assigned", 30, agent="7")
    log(store, "c4", "handoff", 50, text="tier1")
    log(store, "c4", "assigned", 80, agent="8")
    log(store, "c4", "reply", 85, agent="8")


def test_report_per_agent_and_queue(fx_store: Store) -> None:
    _history(fx_store)
    report = fx_store.report(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    agents = {a.agent: a for a in report.agents}
    assert set(agents) == {"7", "8"}
    assert agents["7"].handled == {"c1", "c4"}
    assert agents["7"].first_reply == [30.0] and agents["7"].resolution == [540.0]
    assert agents["7"].ratings == [5]
    assert agents["8"].handled == {"c2", "c4"}
    assert sorted(agents["8"].first_reply) == [5.0, 30.0] and agents["8"].resolution == [90.0]
    queues = {q.queue: q for q in report.queues}
    assert (queues["tier1"].handoffs, queues["tier1"].abandoned) == (4, 1)
    assert sorted(queues["tier1"].assignment_wait) == [30.0, 30.0, 60.0]
    assert sorted(queues["tier1"].ratings) == [2, 5]
    assert (queues["billing"].handoffs, queues["billing"].assignment_wait, queues["billing"].abandoned) == (
        1,
        [30.0],
        0,
    )


def test_a_measurement_belongs_to_the_range_its_closing_event_is_in(fx_store: Store) -> None:
    _history(fx_store)
    report = fx_store.report(T0 + timedelta(seconds=250), T0 + timedelta(hours=1))
    agents = {a.agent: a for a in report.agents}
    # Only c1's resolution (at 600 s, from the assignment at 60 s) and c3's abandonment (300 s) fall in it.
    assert set(agents) == {"7"} and agents["7"].resolution == [540.0]
    assert agents["7"].first_reply == [] and agents["7"].handled == set()
    queues = {q.queue: q for q in report.queues}
    assert queues["tier1"].abandoned == 1 and queues["tier1"].handoffs == 0
    assert fx_store.report(T0 + timedelta(hours=1), T0 + timedelta(hours=2)).agents == []


def test_queue_waiting_and_presence_for_the_gauges(fx_store: Store) -> None:
    ana = _user(fx_store, "ana@example.com", "Ana", "online")
    bo = _user(fx_store, "bo@example.com", "Bo", "away")
    _user(fx_store, "cy@example.com", "Cy")
    counts = fx_store.presence_by_queue({"tier1": ("ANA@example.com", "bo@example.com", "nobody@example.com")})
    assert counts == {("tier1", "online"): 1, ("tier1", "away"): 1, ("tier1", "offline"): 0}
    assert fx_store.agent_names([str(ana), str(bo), "token:bot", "999"]) == {str(ana): "Ana", str(bo): "Bo"}
    # A conversation waits when the store says so; whatever wrote the columns, the gauge reads them.
    log(fx_store, "w1", "handoff", 0, text="tier1")
    log(fx_store, "w2", "handoff", 30, text="tier1")
    with fx_store._write() as session:
        for name, seconds in (("w1", 0), ("w2", 30)):
            row = session.get(Conversation, name)
            assert row is not None
            row.status, row.queue, row.assigned_agent = "handoff", "tier1", None
            row.waiting_since = T0 + timedelta(seconds=seconds)
            session.add(row)
    waiting = fx_store.queue_waiting()
    assert waiting == {"tier1": (2, T0)}


def test_canned_shared_and_personal_shortcuts(fx_store: Store) -> None:
    ana = _user(fx_store, "ana@example.com", "Ana")
    bo = _user(fx_store, "bo@example.com", "Bo")
    shared = fx_store.create_canned(owner_id=None, shortcut="refund", title="Refund policy", text="Refunds take 5 days")
    mine = fx_store.create_canned(owner_id=ana, shortcut="refund", title="My refund", text="Hi {{ contact.name }}")
    fx_store.create_canned(owner_id=bo, shortcut="refund", title="Bo's", text="Bo's words")
    fx_store.create_canned(owner_id=ana, shortcut="hello", title="Greeting", text="Hello! How can I help?")
    with pytest.raises(CannedShortcutTaken):
        fx_store.create_canned(owner_id=None, shortcut="Refund", title="again", text="x")
    with pytest.raises(CannedShortcutTaken):
        fx_store.create_canned(owner_id=ana, shortcut="hello", title="again", text="x")
    # Ana sees the shared ones and her own, never Bo's.
    assert [(r.shortcut, r.owner_id) for r in fx_store.list_canned(owner_id=ana)] == [
        ("hello", ana),
        ("refund", ana),
        ("refund", None),
    ]
    assert [r.shortcut for r in fx_store.list_canned(owner_id=None)] == ["refund"]
    # The picker: prefix of a shortcut first, then any part of a title or text; % is a character, not a wildcard.
    assert [r.id for r in fx_store.list_canned(owner_id=ana, query="/ref")] == [mine.id, shared.id]
    assert [r.shortcut for r in fx_store.list_canned(owner_id=ana, query="HELP")] == ["hello"]
    assert [r.shortcut for r in fx_store.list_canned(owner_id=ana, query="days")] == ["refund"]
    assert fx_store.list_canned(owner_id=ana, query="%") == []
    assert mine.id is not None and shared.id is not None
    with pytest.raises(CannedShortcutTaken):
        fx_store.update_canned(mine.id, shortcut="hello", title="", text="x")
    changed = fx_store.update_canned(mine.id, shortcut="refund-mine", title="Mine", text="changed")
    assert changed is not None and (changed.shortcut, changed.owner_id, changed.text) == ("refund-mine", ana, "changed")
    assert fx_store.delete_canned(shared.id) and not fx_store.delete_canned(shared.id)
    assert (
        fx_store.get_canned(shared.id) is None
        and fx_store.update_canned(shared.id, shortcut="x", title="", text="y") is None
    )


def test_audit_filters_and_pages(fx_store: Store) -> None:
    for index in range(5):
        fx_store.audit(actor="user:1", actor_role="agent", action="conversation.take", conversation_id=f"c{index}")
    fx_store.audit(actor="user:2", actor_role="admin", action="user.create", target="bo@example.com")
    fx_store.audit(actor="user:2", actor_role="admin", action="conversation.transfer", conversation_id="c1")
    assert [e.action for e in fx_store.list_audit(actor="user:2")] == ["conversation.transfer", "user.create"]
    assert len(fx_store.list_audit(action="conversation.*")) == 6
    assert len(fx_store.list_audit(action="conversation.take")) == 5
    assert [e.actor for e in fx_store.list_audit(conversation_id="c1")] == ["user:2", "user:1"]
    first = fx_store.list_audit(limit=3)
    rest = fx_store.list_audit(limit=10, before_id=first[-1].id)
    assert len(first) == 3 and len(rest) == 4 and {e.id for e in first}.isdisjoint(e.id for e in rest)
    assert fx_store.list_audit(since=datetime.now(UTC) + timedelta(minutes=1)) == []


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_new_log_lines_feed_the_people_metrics(fx_store: Store) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"  # its own label: the registry is the process's
    channel = f"webchat-{uuid.uuid4().hex[:6]}"

    def write(
        kind: str, seconds: float, *, agent: str = "", text: str = "", meta: dict[str, object] | None = None
    ) -> None:
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        if kind == "reply":
            entry = RecordInput("m1", "out", "hi", channel, f"r{seconds}", at, status="sent", sender=f"agent:{agent}")
        else:
            sender = f"agent:{agent}" if agent else "customer"
            entry = RecordInput("m1", "event", text, channel, f"{kind}{seconds}", at, status=kind, sender=sender)
            entry.meta = dict(meta or {})
        row = fx_store.record_message(entry)  # the write path counts the new line (observe_line)
        assert row.seq is not None

    write("handoff", 0, text=queue)
    write("assigned", 45, agent="7", text="Ana")
    write("reply", 75, agent="7")
    write("reply", 90, agent="7")
    write("resolved", 345, agent="7")
    write("csat", 400, text="4", meta={"rating": 4, "agent": "7", "queue": queue})
    assert _sample("flowdesk_assignment_wait_seconds_count", queue=queue) == 1
    assert _sample("flowdesk_assignment_wait_seconds_sum", queue=queue) == 45
    # One first reply (30 s after the assignment), not two.
    assert _sample("flowdesk_first_agent_reply_seconds_count", queue=queue) == 1
    assert _sample("flowdesk_first_agent_reply_seconds_sum", queue=queue) == 30
    assert _sample("flowdesk_handle_seconds_sum", queue=queue) == 300
    assert _sample("flowdesk_agent_replies_total", channel=channel) == 2
    assert _sample("flowdesk_csat_ratings_total", queue=queue, rating="4") == 1


def test_a_report_reads_in_two_queries_however_many_conversations(fx_store: Store) -> None:
    for index in range(40):
        conversation = f"many-{index}"
        log(fx_store, conversation, "handoff", index, text="tier1")
        log(fx_store, conversation, "assigned", index + 10, agent="7")
        log(fx_store, conversation, "reply", index + 20, agent="7")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(fx_store.engine, "before_cursor_execute", count)
    try:
        report = fx_store.report(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    finally:
        event.remove(fx_store.engine, "before_cursor_execute", count)
    assert report.agents[0].first_reply == [10.0] * 40 and len(report.agents[0].handled) == 40
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


def test_an_agents_reply_in_a_stored_conversation_counts_in_the_people_metrics(fx_store: Store) -> None:
    # With a real conversation row (handed off), as the server writes it: the reply is
    # counted whichever write path the store takes for it.
    channel = f"webchat-{uuid.uuid4().hex[:6]}"
    queue = f"q-{uuid.uuid4().hex[:6]}"
    contact = fx_store.resolve_contact(channel, f"visitor-{uuid.uuid4().hex[:6]}")
    conversation, _ = fx_store.open_conversation(contact.id, channel)

    def line(direction: str, kind: str, seconds: float, text: str) -> None:
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        entry = RecordInput(
            conversation.id, direction, text, channel, f"{kind}-{seconds}", at, status=kind, sender="agent:9"
        )
        fx_store.record_message(entry)

    line("event", "handoff", 0, queue)
    line("event", "assigned", 20, "Ana")
    line("out", "sent", 50, "hello, Ana here")
    assert _sample("flowdesk_agent_replies_total", channel=channel) == 1
    assert _sample("flowdesk_first_agent_reply_seconds_sum", queue=queue) == 30
