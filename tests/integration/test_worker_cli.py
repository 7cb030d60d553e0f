"""`flowdesk worker` as a person runs it: a separate process working for a cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

from engine.runtime.client import Conversations
from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig
from engine.runtime.revisions import FlowCatalog
from engine.runtime.types import InboundMessage
from engine.store import Store, StoreRevisions
from tests.integration.runtime_support import compile_flow, eventually

REPO = Path(__file__).resolve().parents[2]

FLOW = """
flow: cli-demo
steps:
  first: { wait: message }
  hello: { say: "Hello from the worker" }
  listen: { wait: message }
"""


async def test_flowdesk_worker_runs_conversations_and_stops_cleanly(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "cli-demo.yaml").write_text(FLOW, encoding="utf-8")
    (tmp_path / "flowdesk.yaml").write_text("data_dir: data\nflows_dir: flows\n", encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path / 'data' / 'flowdesk.db'}")
    store.upgrade()
    server = EmbeddedTemporal(EmbeddedTemporalConfig(data_dir=tmp_path / "temporal", port=0, ui_port=None))
    await server.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "engine", "worker", "--temporal-address", server.address, "--task-queue", "cli-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The API side: the same store (flowdesk serve publishes the flows there), same task queue.
        catalog = FlowCatalog(StoreRevisions(store))
        flow = compile_flow(FLOW)
        catalog.publish(flow)
        store.put_revision(flow.revision, flow.source, flow=flow.name)
        store.set_live(flow.name, flow.revision)
        client = await Client.connect(server.address)
        await Conversations(client, catalog, task_queue="cli-q").send(
            "w1", InboundMessage(id="m1", text="hi", channel="webchat")
        )

        def outcome() -> list[tuple[str, str, str]] | None:
            entries = [(e.direction, e.text, e.status) for e in store.transcript("w1")]
            return entries if len(entries) >= 2 else None

        # This worker has no web-chat socket to deliver to: the reply is recorded as
        # failed, visibly, instead of being retried forever.
        entries = await eventually(outcome, "the worker to handle the message")
        assert ("in", "hi", "received") in entries
        assert ("out", "Hello from the worker", "failed") in entries
        assert "no channel 'webchat'" in next(e.detail for e in store.transcript("w1") if e.status == "failed")
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=30)
        await server.stop()
    assert worker.returncode == 0, err
    assert "Fatal Python error" not in err
    assert "stopping" in err
