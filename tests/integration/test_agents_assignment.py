"""Agents answering hand-offs through a running node: assignment by capacity and presence, visibility, claims, notes.

Real node (store, Temporal, HTTP, sockets): agents sign in with e-mail and password,
set their presence, and act through the REST API; customers write through the
web-chat socket or Telegram's emulator. The dispatcher of the node assigns.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from engine.store.tables import Message
from tests.integration.runtime_support import DEADLINE, eventually
from tests.integration.server_support import ChatClient, RunningNode, chat, running_node
from tests.vendors.telegram import SECRET, TOKEN, TelegramEmulator, TelegramUpdates

DESK_FLOW = """
flow: desk
channels: [webchat, telegram]
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.text is matching('(?i)night')"
        goto: night
      - if: "message.text is matching('(?i)billing')"
        goto: billing
      - if: "message.text is matching('(?i)human')"
        goto: human
    default: reply
  reply:
    say: "bot: {{ message.text }}"
    next: listen
  human:
    say: Connecting you with a colleague...
    handoff: { queue: support, timeout: 1h }
    on_timeout: sorry
    next: back
  billing:
    say: Connecting you with billing...
    handoff: { queue: billing, timeout: 1h }
    on_timeout: sorry
    next: back
  night:
    say: Let me see who is around...
    handoff: { queue: night, timeout: 1h }
    on_timeout: sorry
    next: back
  back:
    say: The bot is back.
    next: listen
  sorry:
    say: Nobody can answer now; leave us a message.
    next: listen
"""

PASSWORD = "correct horse battery staple"

SETTINGS: dict[str, Any] = {
    "people": {"default_capacity": 1},
    "queues": {
        "support": {"members": ["ana@example.com", "bo@example.com", "cy@example.com"], "capacity": 1},
        "billing": {"members": ["ana@example.com", "dee@example.com"]},
        "night": {"members": ["ana@example.com"], "when_nobody": "fall_through"},
    },
}


@dataclass
class Agent:
    """A signed-in person: their session's client (cookie + CSRF token) and who they are."""

    id: str
    name: str
    http: httpx.AsyncClient

    async def presence(self, presence: str) -> None:
        answer = await self.http.put("/api/agents/me/presence", json={"presence": presence})
        assert answer.status_code == 200, answer.text

    async def mine(self) -> list[dict[str, Any]]:
        answer = await self.http.get("/api/conversations", params={"assignee": "me", "status": "handoff"})
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["conversations"]
        return rows

    async def act(self, conversation_id: str, action: str, **body: Any) -> httpx.Response:
        return await self.http.post(f"/api/conversations/{conversation_id}/{action}", json=body)


@asynccontextmanager
async def signed_in(
    node: RunningNode, email: str, *, role: str = "agent", capacity: int | None = None
) -> AsyncIterator[Agent]:
    store = node.services.store
    name = email.partition("@")[0].title()
    user = await asyncio.to_thread(store.create_user, email, PASSWORD, role=role, display_name=name, capacity=capacity)
    async with httpx.AsyncClient(base_url=node.url, timeout=DEADLINE) as http:
        me = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert me.status_code in (200, 201), me.text
        http.headers["X-CSRF-Token"] = me.json()["csrf_token"]
        yield Agent(str(user.id), name, http)


async def conversation_of(node: RunningNode, visitor: ChatClient, text: str) -> str:
    """The visitor says ``text``; the id of their conversation (the store's, by the message's seq)."""
    client_id = await visitor.say(text)
    ack = await visitor.next("ack", where={"id": client_id})
    with Session(node.services.store.engine) as session:
        row = session.get(Message, ack["seq"])
        assert row is not None
        return row.conversation_id


async def waiting_ids(node: RunningNode) -> set[str]:
    async with node.api() as api:
        listing = (await api.get("/api/conversations", params={"unassigned": "true"})).json()
    return {c["id"] for c in listing["conversations"]}


@pytest.fixture(name="fx_telegram")
def fixture_telegram() -> Iterator[TelegramEmulator]:
    with TelegramEmulator() as telegram:
        yield telegram


@pytest.fixture(name="fx_node")
async def fixture_node(
    fx_dev_env: WorkflowEnvironment, fx_telegram: TelegramEmulator, tmp_path: Path
) -> AsyncIterator[RunningNode]:
    settings = dict(SETTINGS)
    settings["channels"] = {"telegram": {"bot_token": TOKEN, "secret_token": SECRET, "api_base": fx_telegram.api_base}}
    async with running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=settings) as node:
        yield node


async def test_capacity_and_presence_decide_assignment(fx_node: RunningNode) -> None:
    node = fx_node
    async with (
        signed_in(node, "ana@example.com") as ana,
        signed_in(node, "bo@example.com") as bo,
        signed_in(node, "cy@example.com", capacity=5) as cy,
    ):
        await ana.presence("online")
        await bo.presence("online")
        # cy stays offline: with room for five, they get none.
        async with chat(node) as v1, chat(node) as v2, chat(node) as v3:
            first = await conversation_of(node, v1, "human please")
            second = await conversation_of(node, v2, "human please")
            await eventually(lambda: _count_is(2, ana, bo), "the first two hand-offs assigned, one each")
            third = await conversation_of(node, v3, "human please")
            await eventually(lambda: _has(node, third), "the third hand-off waits: both agents are full")
            await v3.next("message", where={"direction": "out", "text": "You are number 1 in the queue."})
            held = {c["id"]: agent for agent in (ana, bo) for c in await agent.mine()}
            assert set(held) == {first, second} and {a.id for a in held.values()} == {ana.id, bo.id}
            assert await cy.mine() == []

            # The holder of the first resolves it: the third is theirs at once.
            holder = held[first]
            assert (await holder.act(first, "resolve")).status_code == 200
            await v1.next("message", where={"direction": "out", "text": "The bot is back."})
            await eventually(
                lambda: _holds(holder, third), f"the waiting conversation assigned to {holder.name} once they were free"
            )
            await v3.next("message", where={"direction": "out", "text": f"{holder.name} joined the conversation."})
            assert await cy.mine() == []

            # A fourth waits while everyone online is full; cy comes online and gets it.
            async with chat(node) as v4:
                fourth = await conversation_of(node, v4, "human please")
                await eventually(lambda: _has(node, fourth), "the fourth waits")
                await cy.presence("online")
                await eventually(lambda: _holds(cy, fourth), "an agent coming online gets the waiting conversation")


async def _count_is(count: int, *agents: Agent) -> bool:
    return sum([len(await a.mine()) for a in agents]) == count


async def _has(node: RunningNode, conversation_id: str) -> bool:
    return conversation_id in await waiting_ids(node)


async def _holds(agent: Agent, conversation_id: str) -> bool:
    return conversation_id in {c["id"] for c in await agent.mine()}


async def test_nobody_online_falls_through_to_on_timeout(fx_node: RunningNode) -> None:
    node = fx_node
    async with signed_in(node, "ana@example.com"), chat(node) as visitor:  # ana is the night queue; offline
        await visitor.say("night shift?")
        await visitor.next("message", where={"direction": "out", "text": "Let me see who is around..."})
        await visitor.next(
            "message", where={"direction": "out", "text": "Sorry, nobody is available to help you right now."}
        )
        await visitor.next("message", where={"direction": "out", "text": "Nobody can answer now; leave us a message."})


async def test_agents_see_only_their_queues_and_a_held_conversation_is_409(fx_node: RunningNode) -> None:
    node = fx_node
    async with (
        signed_in(node, "ana@example.com") as ana,
        signed_in(node, "bo@example.com") as bo,
        signed_in(node, "dee@example.com") as dee,
        chat(node) as visitor,
    ):
        conversation_id = await conversation_of(node, visitor, "billing question")
        await eventually(lambda: _has(node, conversation_id), "the billing hand-off waits (nobody online)")
        # bo works support only: the conversation does not exist for him.
        for answer in (
            await bo.act(conversation_id, "take"),
            await bo.act(conversation_id, "notes", text="peek"),
            await bo.http.get(f"/api/conversations/{conversation_id}"),
            await bo.http.get(f"/api/conversations/{conversation_id}/messages"),
        ):
            assert answer.status_code == 404, answer.text
            assert conversation_id in answer.json()["detail"]  # the same answer as for an unknown id
        listed = (await bo.http.get("/api/conversations")).json()["conversations"]
        assert conversation_id not in {c["id"] for c in listed}
        # ana takes it; dee, of the same queue, is told who holds it.
        assert (await ana.act(conversation_id, "take")).status_code == 200
        refused = await dee.act(conversation_id, "take")
        assert refused.status_code == 409 and "Ana" in refused.json()["detail"]
        assert (await dee.act(conversation_id, "reply", text="me too")).status_code == 409
        # A supervisor reassigns it.
        async with signed_in(node, "sue@example.com", role="supervisor") as sue:
            moved = await sue.act(conversation_id, "assign", agent=dee.id)
            assert moved.status_code == 200, moved.text
            await eventually(lambda: _holds(dee, conversation_id), "the supervisor's reassignment")
            # A supervisor steps in on dee's conversation: the reply goes out, dee still holds it.
            stepped_in = await sue.act(conversation_id, "reply", text="Sue here, a supervisor")
            assert stepped_in.status_code == 200, stepped_in.text
            await visitor.next("message", where={"direction": "out", "text": "Sue here, a supervisor"})
            assert await _holds(dee, conversation_id)
        audit = await asyncio.to_thread(node.services.store.list_audit, conversation_id=conversation_id)
        assert {"conversation.take", "conversation.assign", "conversation.reply"} <= {e.action for e in audit}


async def test_notes_never_reach_the_customer(fx_node: RunningNode, fx_telegram: TelegramEmulator) -> None:
    node = fx_node
    note = f"private-{uuid.uuid4().hex[:8]}"
    async with signed_in(node, "ana@example.com") as ana:
        await ana.presence("online")
        # Web chat: the visitor is connected while the note is written.
        async with chat(node) as visitor:
            web = await conversation_of(node, visitor, "human please")
            await eventually(lambda: _holds(ana, web), "the web-chat hand-off assigned to ana")
            assert (await ana.act(web, "notes", text=note)).status_code == 200
            assert (await ana.act(web, "reply", text="Hello from Ana")).status_code == 200
            await visitor.next("message", where={"direction": "out", "text": "Hello from Ana"})
            assert not [f for f in visitor.frames if note in str(f)], visitor.frames
            transcript = (await ana.http.get(f"/api/conversations/{web}/messages")).json()["messages"]
            assert any(m["text"] == note for m in transcript)  # colleagues read it
            assert (await ana.act(web, "resolve")).status_code == 200
        # Telegram: the note is logged, the chat gets only the reply.
        updates = TelegramUpdates()
        hook = node.url + "/webhooks/telegram"
        assert (await updates.post_async(hook, updates.text(7100, "human please"))).status == 200
        await asyncio.to_thread(fx_telegram.wait_for, 7100, 1)
        rows = await asyncio.to_thread(node.services.store.list_conversations, channel="telegram")
        telegram = rows[0].id
        await eventually(lambda: _holds(ana, telegram), "the Telegram hand-off assigned to ana")
        assert (await ana.act(telegram, "notes", text=note)).status_code == 200
        assert (await ana.act(telegram, "reply", text="Hello on Telegram")).status_code == 200
        await eventually(lambda: "Hello on Telegram" in fx_telegram.texts(7100), "the reply at Telegram")
        assert not [t for t in fx_telegram.texts(7100) if note in t], fx_telegram.texts(7100)


async def test_queues_and_agents_through_the_api(fx_node: RunningNode) -> None:
    node = fx_node
    async with (
        signed_in(node, "ana@example.com") as ana,
        signed_in(node, "bo@example.com") as bo,
        signed_in(node, "sue@example.com", role="supervisor") as sue,
        node.api() as admin,
    ):
        listed = (await admin.get("/api/queues")).json()["queues"]
        assert [(q["name"], q["source"]) for q in listed] == [
            ("billing", "settings"),
            ("night", "settings"),
            ("support", "settings"),
        ]
        support = next(q for q in listed if q["name"] == "support")
        assert set(support["members"]) == {int(ana.id), int(bo.id)}  # cy has no account: not a member
        assert support["waiting"] == 0 and support["members_online"] == 0

        made = await admin.post(
            "/api/queues", json={"name": "vip", "members": [int(ana.id)], "when_nobody": "fall_through"}
        )
        assert made.status_code == 201, made.text
        assert made.json()["source"] == "admin" and made.json()["members"] == [int(ana.id)]
        changed = await admin.put("/api/queues/vip", json={"members": [int(ana.id), int(bo.id)], "capacity": 2})
        assert changed.status_code == 200 and changed.json()["capacity"] == 2
        assert (await admin.post("/api/queues", json={"name": "vip"})).status_code == 409
        for refused in (await admin.put("/api/queues/support", json={}), await admin.delete("/api/queues/support")):
            assert refused.status_code == 409 and "flowdesk.yaml" in refused.json()["detail"]
        assert (await admin.post("/api/queues", json={"name": "no spaces"})).status_code == 422
        assert (await admin.post("/api/queues", json={"name": "x", "members": [999]})).status_code == 422
        assert (await admin.post("/api/queues", json={"name": "x", "when_nobody": "panic"})).status_code in (400, 422)
        # Agents list their own queues and may not describe any.
        assert [q["name"] for q in (await bo.http.get("/api/queues")).json()["queues"]] == ["support", "vip"]
        assert (await bo.http.post("/api/queues", json={"name": "mine"})).status_code == 403
        assert (await admin.delete("/api/queues/vip")).status_code == 200
        assert (await admin.delete("/api/queues/vip")).status_code == 404

        # Presence: one's own, or anyone's by a supervisor; listed with load and queues.
        assert (await bo.http.put(f"/api/agents/{ana.id}/presence", json={"presence": "online"})).status_code == 403
        assert (await sue.http.put(f"/api/agents/{ana.id}/presence", json={"presence": "online"})).status_code == 200
        assert (await ana.http.put("/api/agents/me/presence", json={"presence": "dancing"})).status_code in (400, 422)
        agents = {a["id"]: a for a in (await bo.http.get("/api/agents")).json()["agents"]}
        assert agents[ana.id]["presence"] == "online" and agents[bo.id]["presence"] == "offline"
        assert agents[ana.id]["queues"] == ["billing", "night", "support"] and agents[ana.id]["load"] == 0
        actions = {e.action for e in await asyncio.to_thread(node.services.store.list_audit)}
        assert {"queue.create", "queue.update", "queue.delete", "agent.presence"} <= actions


async def test_labels_unread_snooze_and_typing(fx_node: RunningNode) -> None:
    node = fx_node
    async with signed_in(node, "ana@example.com") as ana, chat(node) as visitor:
        await ana.presence("online")
        conversation_id = await conversation_of(node, visitor, "human please")
        await eventually(lambda: _holds(ana, conversation_id), "the hand-off assigned to ana")
        await visitor.say("it is about my order")

        async def row(**params: Any) -> dict[str, Any] | None:
            found = (await ana.http.get("/api/conversations", params=params)).json()["conversations"]
            return next((c for c in found if c["id"] == conversation_id), None)

        listed = await eventually(lambda: _unread(row, 2), "two unread customer messages")
        assert listed["queue"] == "support" and listed["assigned_agent"] == ana.id
        transcript = (await ana.http.get(f"/api/conversations/{conversation_id}/messages")).json()["messages"]
        read = await ana.act(conversation_id, "read", seq=transcript[-1]["seq"])
        assert read.status_code == 200, read.text
        assert (await row())["unread"] == 0  # type: ignore[index]

        assert (
            await ana.http.put(f"/api/conversations/{conversation_id}/labels", json={"labels": ["vip", "order"]})
        ).status_code == 200
        await eventually(lambda: row(label="vip"), "the conversation listed under its label")
        assert await row(label="refund") is None

        typing = await ana.act(conversation_id, "typing")
        assert typing.status_code == 200 and typing.json()["shown"] is True
        frame = await visitor.next("typing", where={"by": "agent"})
        assert frame["name"] == "Ana"

        assert (await ana.act(conversation_id, "snooze", until_reply=True)).status_code == 200
        await eventually(lambda: row(snoozed="true"), "the snoozed conversation listed as snoozed")
        assert await row() is None  # hidden from the inbox
        await visitor.say("hello?")
        await eventually(row, "back in the inbox when the customer writes")
        bad = await ana.act(conversation_id, "snooze", until="tomorrow")
        assert bad.status_code == 422 and "ISO 8601" in bad.json()["detail"]


async def _unread(row: Any, count: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await row()
    return found if found is not None and found["unread"] == count else None


async def test_transfer_to_a_queue_with_a_note_then_to_an_agent_and_reopen(fx_node: RunningNode) -> None:
    node = fx_node
    note = f"handover-{uuid.uuid4().hex[:8]}"
    async with (
        signed_in(node, "ana@example.com") as ana,
        signed_in(node, "bo@example.com") as bo,
        signed_in(node, "dee@example.com") as dee,
        chat(node) as visitor,
    ):
        await ana.presence("online")
        conversation_id = await conversation_of(node, visitor, "human please")
        await eventually(lambda: _holds(ana, conversation_id), "the hand-off assigned to ana")
        assert (await ana.act(conversation_id, "transfer")).status_code == 422  # neither agent nor queue
        unknown = await ana.act(conversation_id, "transfer", agent="4242")
        assert unknown.status_code == 422 and "4242" in unknown.json()["detail"]
        # To billing, with a note: dee (online there; ana, a member too, steps away) gets it and reads why.
        await dee.presence("online")
        await ana.presence("away")
        moved = await ana.act(conversation_id, "transfer", queue="billing", note=note)
        assert moved.status_code == 200, moved.text
        await eventually(lambda: _holds(dee, conversation_id), "the transfer to billing assigned to dee")
        transcript = (await dee.http.get(f"/api/conversations/{conversation_id}/messages")).json()["messages"]
        assert any(m["text"] == note for m in transcript)
        assert not await _holds(ana, conversation_id)
        # dee hands it to bo directly.
        assert (await dee.act(conversation_id, "transfer", agent=bo.id)).status_code == 200
        await eventually(lambda: _holds(bo, conversation_id), "the transfer to bo")
        assert (await bo.act(conversation_id, "resolve")).status_code == 200
        await visitor.next("message", where={"direction": "out", "text": "The bot is back."})
        # Resolved, it is billing's again: bo (support only) no longer sees it; dee of billing reopens it.
        assert (await bo.act(conversation_id, "reopen")).status_code == 404
        assert (await dee.act(conversation_id, "reopen")).status_code == 200
        await eventually(lambda: _waiting_or_held(node, conversation_id), "the reopened conversation back in a queue")
        assert not [f for f in visitor.frames if note in str(f)], visitor.frames
        actions = [
            e.action for e in await asyncio.to_thread(node.services.store.list_audit, conversation_id=conversation_id)
        ]
        assert actions.count("conversation.transfer") == 2 and "conversation.reopen" in actions


async def _waiting_or_held(node: RunningNode, conversation_id: str) -> bool:
    row = await asyncio.to_thread(node.services.store.get_conversation, conversation_id)
    return row is not None and row.status == "handoff"


async def test_two_nodes_dispatching_on_one_postgresql_assign_each_hand_off_once(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, fx_postgres_url: str
) -> None:
    """Both nodes run a dispatcher: the workflow decides each claim, so no conversation is given twice."""
    settings = {"queues": {"support": {"members": ["ana@example.com", "bo@example.com"], "capacity": 10}}}
    flows = {"desk.yaml": DESK_FLOW.replace("channels: [webchat, telegram]", "channels: [webchat]")}
    async with (
        running_node(fx_dev_env, tmp_path / "a", flows=flows, settings=settings, database_url=fx_postgres_url) as a,
        running_node(fx_dev_env, tmp_path / "b", flows=flows, settings=settings, database_url=fx_postgres_url) as b,
        signed_in(a, "ana@example.com") as ana,
        signed_in(a, "bo@example.com") as bo,
    ):
        await ana.presence("online")
        await bo.presence("online")
        ids = []
        async with chat(a) as v1, chat(b) as v2, chat(a) as v3, chat(b) as v4:
            visitors = (v1, v2, v3, v4)
            for node, visitor in zip((a, b, a, b), visitors, strict=True):
                ids.append(await conversation_of(node, visitor, "human please"))
            await eventually(lambda: _count_is(4, ana, bo), "every hand-off assigned")
            store = a.services.store
            for conversation_id, visitor in zip(ids, visitors, strict=True):
                assigned = [
                    m for m in await asyncio.to_thread(store.transcript, conversation_id) if m.status == "assigned"
                ]
                assert len(assigned) == 1, [(m.sender, m.text) for m in assigned]
                await visitor.next(
                    "message", where={"direction": "out", "text": f"{assigned[0].text} joined the conversation."}
                )
            # How they are spread is not asserted: two nodes' rounds can both see an agent as the
            # freest before either assignment reaches the store (capacity is a node's view; the
            # claim is the workflow's).


async def test_presence_drops_to_offline_when_the_last_console_socket_is_gone(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = dict(SETTINGS) | {"people": {"presence_grace": "1s"}}
    async with (
        running_node(fx_dev_env, tmp_path, flows={"desk.yaml": DESK_FLOW}, settings=settings) as node,
        signed_in(node, "ana@example.com") as ana,
    ):
        await ana.presence("online")
        presence = node.services.presence
        assert presence is not None
        cookie = ana.http.cookies.get("flowdesk_session")
        assert cookie
        url = node.url.replace("http://", "ws://") + "/ws/agent"
        headers = {"Cookie": f"flowdesk_session={cookie}", "Origin": node.url}
        async with connect(url, open_timeout=DEADLINE, additional_headers=headers) as socket:
            await asyncio.wait_for(socket.recv(), DEADLINE)  # hello: connected
            await eventually(lambda: presence.connections(int(ana.id)) == 1, "the console socket counted")
        store = node.services.store

        def now() -> str:
            found = store.get_presence(int(ana.id))
            return found[0] if found else ""

        await eventually(lambda: now() == "offline", "offline once the grace period passed without a socket")
