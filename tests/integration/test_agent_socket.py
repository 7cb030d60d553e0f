"""``/ws/agent`` on running nodes: what an agent's console gets, after a reconnect, and across two nodes.

Real nodes (store, Temporal, HTTP and sockets); a visitor chats on the web-chat socket
and an agent's socket, opened with a bearer token, a ticket or the session cookie,
reads the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.server import agent_socket as agent_socket_module
from engine.server import auth
from engine.store import Store
from engine.store.tables import Conversation, UserAccount
from tests.integration.runtime_support import DEADLINE
from tests.integration.server_support import RunningNode, chat, running_node

DESK_FLOW = """
flow: desk
channels: [webchat]
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text is matching('(?i)billing')"
        goto: billing
      - if: "message.text is matching('(?i)sales')"
        goto: sales
      - if: "message.text is matching('(?i)anyone')"
        goto: anyone
    default: reply
  reply:
    say: "bot: {{ message.text }}"
    next: listen
  billing:
    say: Connecting you with billing...
    handoff: { queue: billing }
    next: listen
  sales:
    say: Connecting you with sales...
    handoff: { queue: sales }
    next: listen
  anyone:
    # A queue nobody described: every agent's (as the REST API and the dispatcher see it).
    say: Connecting you with anyone free...
    handoff: { queue: anyone }
    next: listen
"""

SETTINGS = {"queues": {"billing": {"members": ["ann@example.com"]}, "sales": {"members": ["bob@example.com"]}}}


class AgentClient:
    """An agent's socket: frames in arrival order, waited for by kind and content."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []

    async def until(self, what: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read frames until one passes ``check``; it is returned, all are kept in ``frames``."""
        for seen in self.frames:
            if check(seen):
                return seen
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                raw = await asyncio.wait_for(self.socket.recv(), remaining)
            except TimeoutError:
                raise AssertionError(f"no frame: {what}; frames: {self.frames}") from None
            frame: dict[str, Any] = json.loads(raw)
            self.frames.append(frame)
            if check(frame):
                return frame

    def messages(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["kind"] == "message"]

    def texts(self) -> list[str]:
        return [f["data"]["text"] for f in self.messages()]


@asynccontextmanager
async def agent_socket(
    node: RunningNode, query: str = "", headers: Mapping[str, str] | None = None
) -> AsyncIterator[AgentClient]:
    url = node.url.replace("http://", "ws://") + "/ws/agent" + query
    async with connect(url, open_timeout=DEADLINE, additional_headers=dict(headers or {})) as socket:
        client = AgentClient(socket)
        await client.until("hello", lambda f: f["kind"] == "hello")
        yield client


async def close_code(socket: ClientConnection) -> int | None:
    """The code the server closed the socket with (frames before it are read and dropped)."""

    async def drain() -> int | None:
        try:
            while True:
                await socket.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None

    return await asyncio.wait_for(drain(), DEADLINE)


def bearer(node: RunningNode) -> dict[str, str]:
    return {"Authorization": f"Bearer {node.token}"}


def add_user(store: Store, email: str, role: str = "agent") -> UserAccount:
    with Session(store.engine, expire_on_commit=False) as session:
        user = UserAccount(email=email, display_name=email.partition("@")[0].title(), role=role, password_hash="x")
        session.add(user)
        session.commit()
        return user


def ticket_for(store: Store, user: UserAccount) -> str:
    ticket: str = auth.issue_ticket(store, auth.user_principal(user))
    return ticket


def text_is(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["kind"] == "message" and f["data"]["text"] == text


async def test_an_admin_socket_gets_messages_hand_offs_and_inbox_rows_then_replays_what_it_missed(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=SETTINGS) as node:
        async with agent_socket(node, headers=bearer(node)) as agent, chat(node) as visitor:
            hello = agent.frames[0]
            assert hello["data"]["role"] == "admin" and hello["data"]["queues"] is None
            assert (await agent.until("snapshot", lambda f: f["kind"] == "snapshot"))["data"] == {"presence": []}
            await visitor.say("hello")
            await visitor.reply_to("bot: hello")
            customer = await agent.until("the customer's message", text_is("hello"))
            assert customer["data"]["direction"] == "in" and customer["data"]["sender"] == "customer"
            conversation_id = customer["data"]["conversation_id"]
            await agent.until("the bot's reply", text_is("bot: hello"))
            await visitor.say("billing please")
            handoff = await agent.until(
                "the hand-off", lambda f: f["kind"] == "message" and f["data"]["direction"] == "event"
            )
            assert handoff["data"]["text"] == "billing" and handoff["data"]["status"] == "handoff"
            row = await agent.until(
                "the inbox row after the hand-off",
                lambda f: f["kind"] == "conversation" and f["seq"] >= handoff["seq"],
            )
            assert row["data"]["id"] == conversation_id and row["data"]["status"] == "handoff"
            seqs = [f["seq"] for f in agent.frames]
            assert seqs == sorted(seqs)
            last_seen = agent.messages()[-1]["seq"]

        # Offline: another customer writes; the console comes back with the last seq it saw.
        async with chat(node) as other:
            await other.say("a second customer")
            await other.reply_to("bot: a second customer")
        store = node.services.store
        missed = await asyncio.to_thread(store.feed_between, last_seen, await asyncio.to_thread(store.feed_head))
        assert "bot: a second customer" in [r["text"] for r in missed]
        async with agent_socket(node, f"?since={last_seen}", headers=bearer(node)) as again:
            await again.until("the replayed reply", text_is("bot: a second customer"))
            # Exactly what it missed, once, in order (live frames may follow).
            assert [f["seq"] for f in again.messages()][: len(missed)] == [r["seq"] for r in missed]
            await again.socket.send(json.dumps({"type": "ping"}))
            await again.until("pong", lambda f: f["kind"] == "pong")
            async with chat(node) as third:
                await third.say("live again")
                await again.until("the live message", text_is("live again"))
            seqs = [f["seq"] for f in again.messages()]
            assert seqs == sorted(set(seqs)) and seqs[0] > last_seen
        # Too much missed to replay: one `reset` frame says so (the console reloads through the API).
        monkeypatch.setattr(agent_socket_module, "REPLAY_MAX", 2)
        async with agent_socket(node, "?since=0", headers=bearer(node)) as behind:
            reset = await behind.until("reset", lambda f: f["kind"] in ("reset", "message"))
            assert reset["kind"] == "reset" and reset["seq"] >= seqs[-1]


async def test_a_customer_typing_in_the_widget_is_shown_to_agents_once_per_burst(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with (
        running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=SETTINGS) as node,
        agent_socket(node, headers=bearer(node)) as agent,
        chat(node) as visitor,
    ):
        await visitor.say("hello")
        customer = await agent.until("the customer's message", text_is("hello"))
        conversation_id = customer["data"]["conversation_id"]
        await visitor.reply_to("bot: hello")
        # The widget sends a typing frame per key press: the agents hear one event.
        for _ in range(5):
            await visitor.send({"type": "typing", "state": True})
        await visitor.send({"type": "typing", "state": False})
        stopped = await agent.until(
            "the customer stopped typing", lambda f: f["kind"] == "typing" and not f["data"]["typing"]
        )
        assert stopped["data"]["conversation_id"] == conversation_id
        typing = [f["data"]["typing"] for f in agent.frames if f["kind"] == "typing"]
        assert typing == [True, False]


async def test_an_agent_sees_hand_offs_to_a_queue_nobody_described_live_and_after_a_reconnect(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=SETTINGS) as node:
        store = node.services.store
        ann = add_user(store, "ann@example.com")
        async with agent_socket(node, f"?ticket={ticket_for(store, ann)}") as agent:
            since = agent.frames[0]["seq"]
            async with chat(node) as visitor:
                await visitor.say("anyone there?")
                await visitor.reply_to("Connecting you with anyone free...")
            handoff = await agent.until("the open queue's hand-off", text_is("anyone"))
            assert handoff["data"]["status"] == "handoff"
        async with agent_socket(node, f"?since={since}&ticket={ticket_for(store, ann)}") as again:
            replayed = await again.until("the hand-off, replayed", text_is("anyone"))
            assert replayed["seq"] == handoff["seq"]


async def test_an_agent_sees_its_queue_not_another_and_editors_are_refused(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=SETTINGS) as node:
        store = node.services.store
        ann = add_user(store, "ann@example.com")
        editor = add_user(store, "ed@example.com", role="editor")
        url = node.url.replace("http://", "ws://") + "/ws/agent"
        async with connect(f"{url}?ticket={ticket_for(store, editor)}", open_timeout=DEADLINE) as refused:
            assert await close_code(refused) == 4403

        async with agent_socket(node, f"?ticket={ticket_for(store, ann)}") as agent:
            assert agent.frames[0]["data"]["queues"] == ["billing"]
            async with chat(node) as to_sales, chat(node) as to_billing:
                await to_sales.say("sales please")
                await to_sales.reply_to("Connecting you with sales...")
                await to_billing.say("billing please")
                await to_billing.reply_to("Connecting you with billing...")
            billing_id = await _handed_off_to(store, "billing")
            assert billing_id is not None, "the store sets conversation.queue from the hand-off"
            handoff = await agent.until(
                "the billing hand-off", lambda f: f["kind"] == "message" and f["data"]["text"] == "billing"
            )
            assert handoff["data"]["conversation_id"] == billing_id
            inbox = await agent.until("the billing inbox row", lambda f: f["kind"] == "conversation")
            assert inbox["data"]["queue"] == "billing" and inbox["data"]["id"] == billing_id
            # Nothing of the sales conversation reached ann: a later billing hand-off proves the stream moved on.
            async with chat(node) as later:
                await later.say("billing again")
                await agent.until("the later hand-off", lambda f: _is_handoff(f) and f["seq"] > handoff["seq"])
            assert {f["data"]["conversation_id"] for f in agent.messages()} <= {billing_id, *_billing(store)}
            assert "sales please" not in agent.texts() and "sales" not in agent.texts()


def _is_handoff(frame: dict[str, Any]) -> bool:
    return bool(frame["kind"] == "message" and frame["data"]["status"] == "handoff")


def _billing(store: Store) -> set[str]:
    with Session(store.engine) as session:
        return {c.id for c in session.exec(select(Conversation).where(Conversation.queue == "billing"))}


async def _handed_off_to(store: Store, queue: str) -> str | None:
    """The conversation handed off to ``queue`` (waits for its hand-off), or None if the store leaves queue unset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        with Session(store.engine) as session:
            rows = session.exec(select(Conversation).where(Conversation.status == "handoff")).all()
        if len(rows) >= 2:
            found = [c.id for c in rows if c.queue == queue]
            return found[0] if found else None
        await asyncio.sleep(0.05)
    raise AssertionError("the two conversations were never handed off")


async def test_bad_credentials_and_cross_site_cookies_are_refused(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}) as node:
        url = node.url.replace("http://", "ws://") + "/ws/agent"
        for query, headers, code in [
            ("", {}, 4401),
            ("", {"Authorization": "Bearer nope"}, 4401),
            ("?since=abc", bearer(node), 4400),
        ]:
            async with connect(url + query, open_timeout=DEADLINE, additional_headers=headers) as socket:
                assert await close_code(socket) == code, query
        create_session = getattr(node.services.store, "create_session", None)
        if create_session is None:
            return
        store = node.services.store
        ann = add_user(store, "ann@example.com")
        cookie = _session_cookie(store, ann)
        headers = {"Cookie": f"flowdesk_session={cookie}", "Origin": "http://evil.example"}
        async with connect(url, open_timeout=DEADLINE, additional_headers=headers) as socket:
            assert await close_code(socket) == 4403
        headers["Origin"] = node.url
        async with connect(url, open_timeout=DEADLINE, additional_headers=headers) as socket:
            hello = json.loads(await socket.recv())
            assert hello["kind"] == "hello" and hello["data"]["user_id"] == ann.id


def _session_cookie(store: Any, user: UserAccount) -> str:
    cookie, _row = store.create_session(user.id, max_s=3600)
    return str(cookie)


async def test_two_nodes_on_one_postgresql_an_event_on_one_reaches_a_socket_on_the_other(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, fx_postgres_url: str
) -> None:
    flows = {"desk.yaml": DESK_FLOW}
    async with (
        running_node(fx_dev_env, tmp_path / "a", flows=flows, settings=SETTINGS, database_url=fx_postgres_url) as a,
        running_node(fx_dev_env, tmp_path / "b", flows=flows, settings=SETTINGS, database_url=fx_postgres_url) as b,
        agent_socket(b, headers=bearer(b)) as agent,
    ):
        async with chat(a) as visitor:
            await visitor.say("hello from node a")
            await visitor.reply_to("bot: hello from node a")
        got = await agent.until("node A's message on node B", text_is("hello from node a"))
        await agent.until("node A's reply on node B", text_is("bot: hello from node a"))
        assert got["data"]["direction"] == "in"
        # An ephemeral event published on node A reaches node B's socket (NOTIFY).
        a.services.agent_hub.publish("typing", {"conversation_id": got["data"]["conversation_id"], "typing": True})
        typing = await agent.until("typing from node A", lambda f: f["kind"] == "typing")
        assert typing["data"]["conversation_id"] == got["data"]["conversation_id"]
