"""Restarting the embedded Temporal server on the same SQLite file: conversations go on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client

from engine.runtime.client import Conversations
from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig
from engine.runtime.ports import JsonlMessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import InboundMessage
from engine.runtime.worker import build_worker
from tests.integration.runtime_support import CHANNEL, CollectingChannel, compile_flow, eventually

FLOW = """
flow: restart-demo
steps:
  opening: { wait: message }
  hello: { say: "Hello, what's your name?" }
  listen: { wait: message, timeout: 30m, on_timeout: bye }
  greet: { say: "Nice to meet you, {{ message.text }}.", next: listen }
  bye: { say: bye, end: abandoned }
"""


@asynccontextmanager
async def serving(
    config: EmbeddedTemporalConfig, catalog: FlowCatalog, channel: CollectingChannel, log: JsonlMessageLog
) -> AsyncIterator[Conversations]:
    """A new embedded server process on ``config``'s data directory, with a worker for it."""
    server = EmbeddedTemporal(config)
    await server.start()
    try:
        client = await Client.connect(server.address, namespace=server.namespace)
        async with build_worker(client, catalog, task_queue="restart", channels={CHANNEL: channel}, message_log=log):
            yield Conversations(client, catalog, task_queue="restart")
    finally:
        await server.stop()


async def test_a_waiting_conversation_survives_a_restart_of_the_embedded_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    catalog = FlowCatalog(FileRevisionStore(data_dir / "revisions"))
    catalog.publish(compile_flow(FLOW))
    channel = CollectingChannel()
    log = JsonlMessageLog(data_dir / "messages")
    config = EmbeddedTemporalConfig(data_dir=data_dir / "temporal", port=0, ui_port=None)

    async with serving(config, catalog, channel, log) as conversations:
        await conversations.send("r1", InboundMessage(id="m1", text="hi", channel=CHANNEL))
        assert await channel.wait_texts("r1", 1) == ["Hello, what's your name?"]

    # Same data directory, a new server process (and port): the workflow is still there.
    async with serving(config, catalog, channel, log) as conversations:
        view = await conversations.state("r1")
        assert view.state["step"] == "listen" and view.timers  # the 30-minute timer is still set
        await conversations.send("r1", InboundMessage(id="m2", text="Ada", channel=CHANNEL))
        texts = await channel.wait_texts("r1", 2)
        assert texts == ["Hello, what's your name?", "Nice to meet you, Ada."]
        await eventually(lambda: len(log.entries("r1")) >= 4 or None, "four messages in the log")
        assert [(e.direction, e.text) for e in log.entries("r1") if e.direction == "in"] == [
            ("in", "hi"),
            ("in", "Ada"),
        ]
