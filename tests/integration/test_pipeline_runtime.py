"""Message pipelines in running conversations (real Temporal): what the customer and the log show."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from temporalio.testing import WorkflowEnvironment

from engine.message_log import RecordInput
from engine.pipeline.types import Block, Message, PipelineContext
from engine.runtime.client import Conversations
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import InboundMessage
from engine.runtime.worker import build_worker
from engine.store import Store
from tests.integration.runtime_support import CHANNEL, CollectingChannel, compile_flow, running_conversations
from tests.plugin_support import install_module

MODULE = "flowdesk_runtime_processors"


class Spam:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        return Block("spam", "Please don't send that.") if "spam" in message.text else message


class Censor:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        return Block("internal word") if "internal" in message.text else message


class Broken:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message:
        raise RuntimeError("processor bug")


@pytest.fixture(autouse=True)
def fx_module(monkeypatch: pytest.MonkeyPatch) -> None:
    install_module(monkeypatch, MODULE, Spam, Censor, Broken)


PIPED = f"""
flow: piped
pipeline:
  inbound: [normalize, '{MODULE}:Broken', '{MODULE}:Spam']
  outbound: ['{MODULE}:Censor']
steps:
  listen:
    wait: message
  reply:
    say: "got {{{{ message.text }}}}"
    next: listen
"""


async def test_inbound_and_outbound_stages_in_a_running_conversation(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    conv = f"pipe-{uuid4().hex}"
    async with running_conversations(fx_dev_env.client, fx_task_queue, tmp_path, [PIPED]) as rt:
        await rt.send(conv, "  hello    there  ")  # normalized; the broken processor is passed
        assert await rt.channel.wait_texts(conv, 1) == ["got hello there"]
        await rt.send(conv, "buy spam")  # blocked, with the processor's reply
        assert await rt.channel.wait_texts(conv, 2) == ["got hello there", "Please don't send that."]
        await rt.send(conv, "the internal price")  # the flow answers; the outbound stage stops it
        await rt.send(conv, "thanks")
        assert await rt.channel.wait_texts(conv, 3) == ["got hello there", "Please don't send that.", "got thanks"]

        inbound = await rt.wait_entries(conv, "in", 5)
        by_text = {(e.text, e.status) for e in inbound}
        assert ("hello there", "received") in by_text  # the log keeps the text as the flow saw it
        assert ("buy spam", "blocked") in by_text
        outbound = await rt.wait_entries(conv, "out", 4)
        assert [(e.text, e.status) for e in outbound if e.status == "blocked"] == [
            ("got the internal price", "blocked")
        ]
        state = await rt.step(conv)
        assert state["step"] == "listen"  # nothing broke the conversation


async def test_a_message_the_server_logged_is_stored_as_processed(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> None:
    """The server logs a message as it arrives; the log then keeps what the flow saw."""
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    await asyncio.to_thread(store.upgrade)
    catalog = FlowCatalog(FileRevisionStore(tmp_path / "revisions"))
    catalog.publish(compile_flow(PIPED))
    channel = CollectingChannel()
    conv = f"pipe-{uuid4().hex}"
    conversations = Conversations(fx_dev_env.client, catalog, task_queue=fx_task_queue)
    worker = build_worker(
        fx_dev_env.client, catalog, task_queue=fx_task_queue, channels={CHANNEL: channel}, message_log=store
    )
    try:
        async with worker:
            message_id = f"in-{uuid4()}"
            raw = "  spaced    out  "
            await store.write(RecordInput(conv, "in", raw, CHANNEL, message_id, datetime.now(UTC).isoformat()))
            await conversations.send(
                conv, InboundMessage(id=message_id, text=raw, channel=CHANNEL, meta={"logged": True})
            )
            assert await channel.wait_texts(conv, 1) == ["got spaced out"]
            (row,) = [r for r in store.transcript(conv) if r.direction == "in"]
            assert (row.message_id, row.text, row.status) == (message_id, "spaced out", "received")
            await conversations.handle(conv).terminate("test finished")
    finally:
        store.close()
