"""The conversation's inbox columns follow the log events the workflow writes, on SQLite and PostgreSQL.

The events are those of engine.flow.steps_people (``handoff``, ``assigned``, ``labels``,
``snoozed``, ``unsnoozed``, ``note``, ``handoff_resolved``, ``csat``); messages in and
out move ``last_message`` on both write paths (the fast path's one UPDATE included).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from prometheus_client import REGISTRY
from sqlmodel import select

from engine.message_log import RecordInput
from engine.store import Store
from engine.store.tables import Conversation, CsatRating

_ids = count(1)


def _open(store: Store) -> str:
    contact = store.resolve_contact("webchat", f"visitor-{next(_ids)}")
    conversation_id = store.open_conversation(contact.id, "webchat")[0].id
    store.start_conversation_flow(conversation_id, "shop", "rev-1")
    return conversation_id


def _at(minute: int) -> str:
    return f"2026-01-05T10:{minute:02d}:00+00:00"


def _entry(conv: str, direction: str, text: str, minute: int, **fields: object) -> RecordInput:
    return RecordInput(
        conversation_id=conv,
        direction=direction,
        text=text,
        channel="webchat",
        message_id=f"{direction}-{next(_ids)}",
        at=_at(minute),
        **fields,  # type: ignore[arg-type]
    )


def _event(conv: str, status: str, text: str, minute: int, sender: str = "bot", **meta: object) -> RecordInput:
    return _entry(conv, "event", text, minute, status=status, sender=sender, meta=dict(meta))


def _row(store: Store, conv: str) -> Conversation:
    row = store.get_conversation(conv)
    assert row is not None
    return row


def _utc(minute: int) -> datetime:
    return datetime(2026, 1, 5, 10, minute, tzinfo=UTC)


def test_a_hand_off_waits_on_its_queue_until_an_agent_is_assigned(fx_store: Store) -> None:
    conv = _open(fx_store)
    fx_store.record(_entry(conv, "in", "I want a human", 1))
    fx_store.record(_event(conv, "handoff", "billing", 2))
    row = _row(fx_store, conv)
    assert (row.status, row.queue, row.assigned_agent, row.waiting_since) == ("handoff", "billing", None, _utc(2))
    fx_store.record(_event(conv, "assigned", "Anna", 3, sender="agent:7", by="system"))
    row = _row(fx_store, conv)
    assert (row.assigned_agent, row.waiting_since, row.status) == ("7", None, "handoff")
    # a transfer to another queue: it waits again there, nobody holds it
    fx_store.record(_event(conv, "handoff", "tier2", 4))
    row = _row(fx_store, conv)
    assert (row.queue, row.assigned_agent, row.waiting_since) == ("tier2", None, _utc(4))
    fx_store.record(_event(conv, "assigned", "Ben", 5, sender="agent:9"))
    fx_store.record(_event(conv, "handoff_resolved", "tier2", 6, sender="agent:9"))
    row = _row(fx_store, conv)
    assert (row.status, row.assigned_agent, row.queue) == ("open", None, "tier2")  # the queue it was last in


def test_labels_are_the_full_set_and_snoozes_come_and_go(fx_store: Store) -> None:
    conv = _open(fx_store)
    fx_store.record(_event(conv, "handoff", "support", 1))
    fx_store.record(_event(conv, "labels", "refund, vip", 2, sender="agent:7", labels=["refund", "vip"]))
    fx_store.record(_event(conv, "labels", "vip", 3, sender="agent:7", labels=["vip"]))
    assert _row(fx_store, conv).labels == ["vip"]
    fx_store.record(_event(conv, "snoozed", "", 4, sender="agent:7", until="2026-01-06T09:00:00+00:00"))
    row = _row(fx_store, conv)
    assert (row.snoozed_until, row.snoozed_until_reply) == (datetime(2026, 1, 6, 9, tzinfo=UTC), False)
    fx_store.record(_event(conv, "unsnoozed", "", 5, sender="agent:7", until=None, until_reply=False))
    row = _row(fx_store, conv)
    assert (row.snoozed_until, row.snoozed_until_reply) == (None, False)
    fx_store.record(_event(conv, "snoozed", "", 6, sender="agent:7", until=None, until_reply=True))
    assert _row(fx_store, conv).snoozed_until_reply is True
    # the customer writes: it is back in the inbox, and it is the last message
    fx_store.record(_entry(conv, "in", "hello again?", 7))
    row = _row(fx_store, conv)
    assert (row.snoozed_until_reply, row.last_message, row.last_message_at) == (False, "hello again?", _utc(7))


def test_last_message_follows_messages_on_both_paths_and_never_notes(fx_store: Store) -> None:
    conv = _open(fx_store)
    fx_store.record(_entry(conv, "in", "where is my order?", 1))  # the fast path (an open conversation)
    row = _row(fx_store, conv)
    assert (row.last_message, row.last_message_at) == ("where is my order?", _utc(1))
    fx_store.record(_entry(conv, "out", "It ships today.", 2, sender="bot", status="sent"))
    assert _row(fx_store, conv).last_message == "It ships today."
    fx_store.record(_event(conv, "handoff", "support", 3))
    assert _row(fx_store, conv).waiting_since == _utc(3)
    # An agent's reply in a hand-off takes the fast path too: it holds the conversation, which no longer waits.
    fx_store.record(_entry(conv, "out", "Anna here.", 4, sender="agent:7", status="sent"))
    fx_store.record(_event(conv, "note", "PRIVATE refund twice", 5, sender="agent:7"))
    row = _row(fx_store, conv)
    assert (row.last_message, row.last_message_at, row.assigned_agent) == ("Anna here.", _utc(4), "7")
    assert (row.status, row.waiting_since) == ("handoff", None)
    # A supervisor stepping in replies over the claim: the holder stays.
    fx_store.record(_entry(conv, "out", "Sue, supervising.", 5, sender="agent:12", status="sent"))
    assert _row(fx_store, conv).assigned_agent == "7"
    fx_store.record(_entry(conv, "in", "x" * 2000, 6))
    assert len(_row(fx_store, conv).last_message) == 500


def test_a_rating_is_stored_with_the_agent_and_queue(fx_store: Store) -> None:
    conv = _open(fx_store)
    fx_store.record(_event(conv, "handoff", "support", 1))
    fx_store.record(_event(conv, "assigned", "Anna", 2, sender="agent:7"))
    fx_store.record(_event(conv, "handoff_resolved", "support", 3, sender="agent:7"))
    fx_store.record(_event(conv, "csat", "4", 4, rating=4, agent="7"))
    fx_store.record(_event(conv, "csat", "oops", 5, rating=9, agent="7"))  # out of range: not a rating
    with fx_store.engine.connect() as connection:
        rows = connection.execute(select(CsatRating).where(CsatRating.conversation_id == conv)).all()
    assert [(r.rating, r.agent, r.queue, r.at) for r in rows] == [(4, "7", "support", _utc(4))]
    fx_store.record(_event(conv, "csat", "5", 6, rating=5, agent="7"))  # asked again: the latest counts
    with fx_store.engine.connect() as connection:
        rows = connection.execute(select(CsatRating).where(CsatRating.conversation_id == conv)).all()
    assert [r.rating for r in rows] == [5]


def test_people_lines_are_counted_once_in_the_metrics(fx_store: Store) -> None:
    queue = f"metrics-{next(_ids)}"  # a queue of its own: the registry is the process's

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"queue": queue, **labels}) or 0.0

    conv = _open(fx_store)
    fx_store.record(_event(conv, "handoff", queue, 1))
    assigned = _event(conv, "assigned", "Anna", 3, sender="agent:7")
    fx_store.record(assigned)
    fx_store.record(assigned)  # a local activity run again writes the same entry: no second count
    assert sample("flowdesk_assignment_wait_seconds_count") == 1
    assert sample("flowdesk_assignment_wait_seconds_sum") == 120
    fx_store.record(_event(conv, "csat", "5", 9, rating=5, agent="7", queue=queue))
    assert sample("flowdesk_csat_ratings_total", rating="5") == 1
