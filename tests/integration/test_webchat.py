"""Web chat through a running node: a real WebSocket, the real store, the real workflow."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from engine.resources import bundled_dir
from tests.integration.runtime_support import eventually, scheduled_activities
from tests.integration.server_support import WEBCHAT_ECHO, chat, running_node

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("embedded", [True, False], ids=["single-node", "cluster-node"])
async def test_a_visitor_chats_and_gets_replies(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, embedded: bool
) -> None:
    async with running_node(fx_dev_env, tmp_path, embedded=embedded) as node, chat(node) as visitor:
        welcome = await visitor.next("welcome")
        assert welcome["visitor"].startswith("v1.")
        assert (await visitor.next("history"))["messages"] == []
        first = await visitor.say("hello there")
        ack = await visitor.next("ack", where={"id": first})
        reply = await visitor.reply_to("got hello there")
        assert reply["sender"] == "bot" and reply["seq"] > ack["seq"]
        await visitor.say("second")
        await visitor.reply_to("got second")
        # The transcript is in the store, in order, with delivery status.
        rows = node.services.store.list_conversations(channel="webchat")
        assert len(rows) == 1 and rows[0].flow == "echo"
        texts = [(m.direction, m.text, m.status) for m in node.services.store.transcript(rows[0].id)]
        assert texts == [
            ("in", "hello there", "received"),
            ("out", "got hello there", "sent"),
            ("in", "second", "received"),
            ("out", "got second", "sent"),
        ]
        # A single node sends its replies inside the workflow task; a node of a
        # cluster gets them through its own task queue.
        history = await node.services.conversations.handle(rows[0].id).fetch_history()
        queues = [
            e.activity_task_scheduled_event_attributes.task_queue.name
            for e in scheduled_activities(history, "flowdesk.deliver")
        ]
        assert queues == ([] if embedded else [node.services.node_queue] * 2)


async def test_the_demo_flows_answer_in_the_widget_protocol(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The flows a fresh `flowdesk serve` runs: the greeting, then an FAQ answer."""
    shutil.copytree(REPO / "flows", tmp_path / "flows")
    settings = yaml.safe_load((REPO / "flowdesk.yaml").read_text(encoding="utf-8"))
    # The shipped settings as they are: the `default` profile's key is not in the environment,
    # so the chain falls through to the offline FAQ (and the server checks the flow against
    # these settings: without the profile the flow would be refused).
    async with running_node(fx_dev_env, tmp_path, flows={}, settings=settings) as node, chat(node) as visitor:
        await visitor.next("history")
        await visitor.say("How long does shipping take?")
        replies = [await visitor.next("message", where={"direction": "out"}) for _ in range(2)]
        text = " ".join(r["text"] for r in replies)
        assert "ship" in text.lower(), text


async def test_a_reply_sent_while_offline_arrives_on_reconnect(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        async with chat(node) as visitor:
            token = (await visitor.next("welcome"))["visitor"]
            client_id = await visitor.say("are you there?")
            seq = (await visitor.next("ack", where={"id": client_id}))["seq"]
        # The socket is closed before the reply; the reply is kept for the visitor.
        store = node.services.store

        def stored() -> bool:
            rows = store.list_conversations(channel="webchat")
            return bool(rows) and any(m.direction == "out" for m in store.transcript(rows[0].id))

        await eventually(stored, "the reply stored")
        async with chat(node, f"?visitor={token}&since={seq}") as again:
            assert (await again.next("welcome"))["visitor"] == token
            history = (await again.next("history"))["messages"]
            assert [(m["direction"], m["text"]) for m in history] == [("out", "got are you there?")]
            # Still the same conversation: the next message continues it.
            await again.say("back")
            await again.reply_to("got back")
        assert len(store.list_conversations(channel="webchat")) == 1


async def test_a_node_on_postgresql_chats_and_keeps_a_missed_reply(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path, fx_postgres_url: str
) -> None:
    """The same URL setting, a PostgreSQL database: migrated on start, a chat, a reconnect."""
    async with running_node(fx_dev_env, tmp_path, database_url=fx_postgres_url) as node:
        async with chat(node) as visitor:
            token = (await visitor.next("welcome"))["visitor"]
            await visitor.say("hello from postgres")
            await visitor.reply_to("got hello from postgres")
            client_id = await visitor.say("and again")
            seq = (await visitor.next("ack", where={"id": client_id}))["seq"]
        store = node.services.store
        assert store.engine.dialect.name == "postgresql"

        def answered() -> bool:
            rows = store.list_conversations(channel="webchat")
            return bool(rows) and [m.text for m in store.transcript(rows[0].id)][-1] == "got and again"

        await eventually(answered, "the reply sent while away stored")
        async with chat(node, f"?visitor={token}&since={seq}") as again:
            assert (await again.next("welcome"))["visitor"] == token
            history = (await again.next("history"))["messages"]
            assert [(m["direction"], m["text"]) for m in history] == [("out", "got and again")]
        async with node.api() as api:
            listed = (await api.get("/api/conversations", params={"channel": "webchat"})).json()["conversations"]
            assert [(c["flow"], c["status"]) for c in listed] == [("echo", "open")]
            transcript = (await api.get(f"/api/conversations/{listed[0]['id']}/messages")).json()["messages"]
        assert [(m["direction"], m["text"], m["status"]) for m in transcript[:3]] == [
            ("in", "hello from postgres", "received"),
            ("out", "got hello from postgres", "sent"),
            ("in", "and again", "received"),
        ]
        # The last reply races the socket's close: pushed to it just before ("sent") or kept for
        # the next connection ("stored"); either way the reconnect above replayed it.
        last = transcript[3]
        assert (last["direction"], last["text"]) == ("out", "got and again") and last["status"] in ("sent", "stored")
        assert [m["seq"] for m in transcript] == sorted(m["seq"] for m in transcript)


async def test_limits_answer_with_an_error_frame_and_the_socket_stays_usable(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = {"limits": {"message_max_chars": 50}, "channels": {"webchat": {"rate_per_second": 1, "burst": 3}}}
    async with running_node(fx_dev_env, tmp_path, settings=settings) as node, chat(node) as visitor:
        await visitor.next("history")
        too_long = await visitor.say("x" * 51)
        error = await visitor.next("error", where={"id": too_long})
        assert error["code"] == "too_large" and "50 characters" in error["message"]
        await visitor.send("{not json")
        assert (await visitor.next("error"))["code"] == "bad_frame"
        await visitor.send({"type": "message", "id": "bad id!", "text": "hi"})
        assert (await visitor.next("error"))["code"] == "bad_frame"
        sent = [await visitor.say(f"m{i}") for i in range(5)]
        errors = [await visitor.next("error", where={"id": i}) for i in sent[3:]]
        assert {e["code"] for e in errors} == {"rate_limited"}
        await asyncio.sleep(1.1)  # the bucket refills at one message a second
        await visitor.say("after the pause")
        await visitor.reply_to("got after the pause")


async def test_a_forged_visitor_token_gets_a_new_visitor(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        async with chat(node) as first:
            token = (await first.next("welcome"))["visitor"]
            await first.say("mine")
            await first.reply_to("got mine")
        version, visitor, _signature = token.split(".")
        forged = f"{version}.{visitor}.AAAAAAAAAAAAAAAAAAAAAAAA"
        async with chat(node, f"?visitor={forged}") as intruder:
            assert (await intruder.next("welcome"))["visitor"] != token
            assert (await intruder.next("history"))["messages"] == []


async def test_every_tab_of_a_visitor_sees_the_conversation(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node, chat(node) as tab1:
        token = (await tab1.next("welcome"))["visitor"]
        async with chat(node, f"?visitor={token}") as tab2:
            await tab2.next("history")
            await tab1.say("from tab one")
            echoed = await tab2.next("message", where={"direction": "in"})
            assert echoed["text"] == "from tab one"
            await tab1.reply_to("got from tab one")
            await tab2.reply_to("got from tab one")


def test_widget_assets_ship_with_the_package() -> None:
    ui = bundled_dir("ui")
    assert (ui / "widget" / "widget.js").is_file() and (ui / "demo" / "index.html").is_file()
    assert "widget.js" in (ui / "demo" / "index.html").read_text(encoding="utf-8")


ONE_SHOT = """
flow: one-shot
channels: [webchat]
steps:
  listen:
    wait: message
  reply:
    say: "one answer to {{ message.text }}"
    end: resolved
"""


async def test_after_a_conversation_ends_the_next_message_starts_a_new_one(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={"one.yaml": ONE_SHOT}) as node, chat(node) as visitor:
        await visitor.say("first")
        await visitor.reply_to("one answer to first")
        store = node.services.store
        await eventually(lambda: store.list_conversations(status="ended"), "the first conversation to end")
        await visitor.say("second")
        await visitor.reply_to("one answer to second")
        conversations = sorted(store.list_conversations(channel="webchat"), key=lambda c: c.created_at)
        inbound = [[m.text for m in store.transcript(c.id) if m.direction == "in"] for c in conversations]
        assert inbound == [["first"], ["second"]]
        assert conversations[0].status == "ended"


async def test_a_message_nobody_could_take_is_marked_and_a_retry_delivers_it(
    fx_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_node(fx_dev_env, tmp_path, flows={}) as node, chat(node) as visitor:
        client_id = await visitor.say("anyone?")
        error = await visitor.next("error", where={"id": client_id})
        assert error["code"] == "unavailable"
        store = node.services.store
        [conversation] = store.list_conversations(channel="webchat")
        [row] = store.transcript(conversation.id)
        assert (row.text, row.status) == ("anyone?", "failed")
        # A flow goes live; the widget retries the same message (same id).
        (node.flows_dir / "echo.yaml").write_text(WEBCHAT_ECHO, encoding="utf-8")
        await eventually(lambda: "echo" in node.services.catalog.live_map(), "the flow to go live")
        await visitor.say("anyone?", client_id)
        await visitor.next("ack", where={"id": client_id})
        await visitor.reply_to("got anyone?")
        inbound = [m for m in store.transcript(conversation.id) if m.direction == "in"]
        assert [(m.text, m.status) for m in inbound] == [("anyone?", "received")]
