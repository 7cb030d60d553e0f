"""The agents' stream on SQLite and PostgreSQL: the feed, who sees what, order and replay by seq.

The hub here is the real one on a real store (no server): a viewer attached to it gets
the frames its socket would send. PostgreSQL-only tests hold a transaction open to make
seqs commit out of order, as two nodes' writers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from engine.message_log import RecordInput
from engine.people.roles import Principal, Role
from engine.people.settings import QueueSpec
from engine.server.agent_events import Viewer
from engine.server.agent_hub import AgentConnection, AgentHub
from engine.store import Store
from engine.store.agent_feed import MESSAGES
from engine.store.tables import AgentQueue, Conversation
from tests.people_support import add_user

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
DEADLINE = 20.0


def add_conversation(store: Store, external: str, **columns: Any) -> str:
    contact = store.resolve_contact("webchat", external)
    conversation, _ = store.open_conversation(contact.id, "webchat")
    set_columns(store, conversation.id, **columns)
    return conversation.id


def set_columns(store: Store, conversation_id: str, **columns: Any) -> None:
    """What the store's derivation of log events does (a hand-off sets the queue, ...)."""
    with Session(store.engine, expire_on_commit=False) as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def say(store: Store, conversation_id: str, text: str, *, direction: str = "in", sender: str = "customer") -> int:
    row = store.record_message(
        RecordInput(
            conversation_id=conversation_id,
            direction=direction,
            text=text,
            channel="webchat",
            message_id=f"{conversation_id}-{text}",
            at=T0.isoformat(),
            status={"in": "received", "out": "sent"}.get(direction, "note"),
            sender=sender,
        )
    )
    assert row.seq is not None
    return row.seq


def agent(user_id: int, role: Role = Role.AGENT) -> Principal:
    return Principal(kind="user", agent_id=str(user_id), role=role, display_name="x", user_id=user_id)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Wait until ``check()`` is truthy (no timed assertion: the deadline only stops a hung test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


class Frames:
    """What a connection was sent, drained from its queue."""

    def __init__(self, connection: AgentConnection) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while not self.connection.queue.empty():
            self.frames.append(self.connection.queue.get_nowait())
        return self.frames

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.drain() if f["kind"] == kind]

    def texts(self) -> list[str]:
        return [f["data"]["text"] for f in self.of("message")]


@pytest.fixture(name="fx_hub")
async def fixture_hub(fx_store: Store) -> AsyncIterator[AgentHub]:
    hub = AgentHub()
    await hub.start(fx_store)
    yield hub
    await hub.aclose()


def test_scope_joins_settings_queues_by_email_and_admin_queues_by_id(fx_store: Store) -> None:
    ann = add_user(fx_store, "ann@example.com")
    bob = add_user(fx_store, "bob@example.com")
    cat = add_user(fx_store, "cat@example.com")
    fx_store.save_admin_queue(AgentQueue(name="vip", members=[ann, cat]), create=True)
    configured = [
        QueueSpec(name="billing", member_emails=("ann@example.com", "bob@example.com")),
        QueueSpec(name="sales", member_emails=("bob@example.com",)),
    ]
    scope = fx_store.agent_scope(ann, "ann@example.com", configured)
    assert scope.queues == {"billing", "vip"}
    assert scope.teammates == {ann, bob, cat}
    assert scope.active
    assert fx_store.agent_scope(cat, "", configured).queues == {"vip"}
    # A token has no queues; an unknown user is not active.
    assert fx_store.agent_scope(None, "", configured).queues == frozenset()
    assert not fx_store.agent_scope(9999, "", configured).active
    snapshot = fx_store.presence_snapshot({ann, bob})
    assert [(p["user_id"], p["presence"]) for p in snapshot] == [(ann, "offline"), (bob, "offline")]


def test_replay_reads_only_what_the_viewer_sees_in_seq_order(fx_store: Store) -> None:
    ann = add_user(fx_store, "ann@example.com")
    billing = add_conversation(fx_store, "v1", queue="billing")
    sales = add_conversation(fx_store, "v2", queue="sales")
    mine = add_conversation(fx_store, "v3", queue="sales", assigned_agent=str(ann))
    start = fx_store.feed_head()
    seqs = [say(fx_store, c, f"m{i}") for i, c in enumerate([billing, sales, mine, billing])]
    end = fx_store.feed_head()
    rows = fx_store.feed_between(start, end, queues={"billing"}, agent=str(ann))
    assert [r["text"] for r in rows] == ["m0", "m2", "m3"]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert len(fx_store.feed_between(start, end)) == 4  # everything: supervisors
    assert fx_store.feed_between(start, end, queues=set(), agent=None) == []
    assert [r["seq"] for r in fx_store.feed_after(seqs[1]).rows] == seqs[2:]


async def test_a_viewer_gets_its_queues_events_and_hears_when_one_leaves(fx_store: Store, fx_hub: AgentHub) -> None:
    ann = add_user(fx_store, "ann@example.com")
    billing = add_conversation(fx_store, "v1", queue="billing")
    sales = add_conversation(fx_store, "v2", queue="sales")
    connection, _ = await fx_hub.attach(Viewer(agent(ann), queues=frozenset({"billing"})), None)
    frames = Frames(connection)
    supervisor, _ = await fx_hub.attach(Viewer(agent(99, Role.SUPERVISOR)), None)
    everything = Frames(supervisor)

    say(fx_store, sales, "for sales")
    say(fx_store, billing, "for billing")
    await eventually(lambda: "for billing" in frames.texts(), "the billing message reached the billing agent")
    assert frames.texts() == ["for billing"]
    inbox = frames.of("conversation")
    assert [(c["data"]["id"], c["data"]["queue"], c["data"]["visible"]) for c in inbox] == [(billing, "billing", True)]
    await eventually(lambda: len(everything.texts()) == 2, "the supervisor saw both")
    assert everything.texts() == ["for sales", "for billing"]

    # Transferred to sales: the billing agent is told it left, and sees nothing of it after.
    set_columns(fx_store, billing, queue="sales")
    say(fx_store, billing, "transfer", direction="event", sender="system")
    say(fx_store, billing, "after the transfer")
    await eventually(lambda: any(not c["data"]["visible"] for c in frames.of("conversation")), "a leaving notice")
    gone = [c for c in frames.of("conversation") if not c["data"]["visible"]]
    assert gone[0]["data"] == {"id": billing, "visible": False}
    await eventually(lambda: "after the transfer" in everything.texts(), "the supervisor saw the rest")
    assert "after the transfer" not in frames.texts()
    seqs = [f["seq"] for f in frames.drain()]
    assert seqs == sorted(seqs)


async def test_ephemeral_events_reach_who_may_see_them(fx_store: Store, fx_hub: AgentHub) -> None:
    ann, bob, cat = (add_user(fx_store, f"{n}@example.com") for n in ("ann", "bob", "cat"))
    billing = add_conversation(fx_store, "v1", queue="billing")
    viewer = Viewer(agent(ann), queues=frozenset({"billing"}), teammates=frozenset({ann, bob}))
    connection, _ = await fx_hub.attach(viewer, None)
    frames = Frames(connection)
    heard: list[dict[str, Any]] = []
    fx_hub.subscribe(heard.append)
    fx_hub.publish("presence", {"user_id": cat, "presence": "online"})
    fx_hub.publish("presence", {"user_id": bob, "presence": "online"})
    fx_hub.publish("typing", {"conversation_id": billing, "typing": True})
    await eventually(lambda: frames.of("typing"), "the typing event")
    assert [f["data"]["user_id"] for f in frames.of("presence")] == [bob]
    assert frames.of("typing")[0]["data"] == {"conversation_id": billing, "typing": True}
    await eventually(lambda: len(heard) == 3, "the listener heard every event")
    with pytest.raises(ValueError, match="published"):
        fx_hub.publish("message", {})


async def test_a_slow_consumer_is_marked_for_closing_not_buffered(fx_store: Store) -> None:
    hub = AgentHub(queue_size=3)
    await hub.start(fx_store)
    try:
        billing = add_conversation(fx_store, "v1", queue="billing")
        connection, _ = await hub.attach(Viewer(agent(1, Role.ADMIN)), None)
        for i in range(5):
            say(fx_store, billing, f"m{i}")
        await eventually(lambda: connection.overflowed, "the full queue was noticed")
        assert connection.queue.qsize() <= 3
    finally:
        await hub.aclose()


async def test_attach_after_events_replays_nothing_twice(fx_store: Store, fx_hub: AgentHub) -> None:
    """A socket attached with ``since`` ahead of the hub (it came from a node further on) skips what it saw."""
    billing = add_conversation(fx_store, "v1", queue="billing")
    first, _ = await fx_hub.attach(Viewer(agent(1, Role.ADMIN)), None)
    seen = Frames(first)
    one = say(fx_store, billing, "one")
    await eventually(lambda: seen.texts() == ["one"], "the first message")
    two = say(fx_store, billing, "two")
    late, cursor = await fx_hub.attach(Viewer(agent(1, Role.ADMIN)), two)
    assert cursor >= one
    await eventually(lambda: "two" in seen.texts(), "the second message")
    say(fx_store, billing, "three")
    frames = Frames(late)
    await eventually(lambda: "three" in frames.texts(), "the third message on the late socket")
    assert frames.texts() == ["three"]


# -- PostgreSQL: seqs that commit out of order ----------------------------------------------------


def _held_insert(store: Store, conversation_id: str, text: str) -> tuple[Any, Any, int]:
    """A message row inserted in a transaction left open: its seq is drawn, not committed."""
    connection = store.engine.connect()
    transaction = connection.begin()
    values = {
        "conversation_id": conversation_id,
        "direction": "in",
        "message_id": f"held-{text}",
        "channel": "webchat",
        "sender": "customer",
        "text": text,
        "choices": [],
        "status": "received",
        "detail": "",
        "meta": {},
        "flow": "",
        "revision": "",
        "at": T0.isoformat(),
        "created_at": T0,
    }
    seq = connection.execute(insert(MESSAGES).values(**values).returning(MESSAGES.c.seq)).scalar_one()
    return connection, transaction, int(seq)


#: The conftest's ``fx_db_url`` narrowed to its PostgreSQL run: SQLite commits in seq
#: order (one writer at a time) and is one node, so these have nothing to test there.
ON_POSTGRESQL = pytest.mark.parametrize("fx_db_url", ["postgresql"], indirect=True)


@ON_POSTGRESQL
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_postgresql_rows_go_out_in_seq_order_whatever_order_they_commit_in(
    fx_store: Store, fx_hub: AgentHub, outcome: str
) -> None:
    one = add_conversation(fx_store, "v1", queue="billing")
    two = add_conversation(fx_store, "v2", queue="billing")
    connection, _ = await fx_hub.attach(Viewer(agent(1, Role.ADMIN)), None)
    frames = Frames(connection)
    held, transaction, early = await asyncio.to_thread(_held_insert, fx_store, one, "early")
    try:
        late = await asyncio.to_thread(say, fx_store, two, "late")
        assert late > early
        # The hub has read the later row and waits on the hole before it: nothing goes out.
        await eventually(lambda: fx_hub._gate.read_to >= late and early in fx_hub._gate.gaps, "the hole is waited on")
        for _ in range(3):  # a few more rounds (woken by hand): still held back
            fx_hub._wake.set()
            await asyncio.sleep(0.05)
        assert frames.texts() == []
        await asyncio.to_thread(transaction.commit if outcome == "commit" else transaction.rollback)
    finally:
        await asyncio.to_thread(held.close)
    expected = ["early", "late"] if outcome == "commit" else ["late"]
    await eventually(lambda: frames.texts() == expected, f"the rows went out: {expected}")
    seqs = [f["seq"] for f in frames.of("message")]
    assert seqs == sorted(seqs)
    # A reconnect with the cursor it saw gets nothing twice and nothing less.
    assert fx_store.feed_between(seqs[-1], fx_hub.cursor) == []


@ON_POSTGRESQL
async def test_postgresql_a_node_knows_the_sockets_another_node_holds(fx_store: Store) -> None:
    """Presence asks ``connections_of`` before dropping someone to offline: sockets on any node count."""
    ann = add_user(fx_store, "ann@example.com")
    a, b = AgentHub(), AgentHub()
    await a.start(fx_store)
    await b.start(fx_store)
    try:
        await eventually(lambda: a._listening and b._listening, "both hubs listen")
        connection, _ = await a.attach(Viewer(agent(ann)), None)
        assert a.connections_of(ann) == 1
        await eventually(lambda: b.connections_of(ann) == 1, "node B heard of ann's socket on node A")
        a.detach(connection)
        await eventually(lambda: b.connections_of(ann) == 0, "node B heard it closed")
    finally:
        await a.aclose()
        await b.aclose()
