"""A worker process killed with ``kill -9`` in the middle of an AI call loses nothing.

The worker runs in a subprocess (``tests/integration/worker_process.py``) against the
dev server; its AI provider takes a few seconds, and the test kills the process
while the activity runs. A second worker takes over once the attempt's heartbeat
timeout has passed (seconds, not the ai step's ``timeout: 6s`` plus the activity's
grace). Meanwhile the customer writes again: the update waits for a worker, and is
not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.testing import WorkflowEnvironment

from engine.runtime.client import Conversations
from engine.runtime.effects import AI_ACTIVITY_GRACE, CALL_HEARTBEAT_TIMEOUT
from engine.runtime.ports import JsonlMessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import IN_TASK_META, InboundMessage
from tests.integration.runtime_support import eventually, scheduled_activities
from tests.integration.worker_process import CHANNEL, SLOW_PROVIDER

REPO = Path(__file__).resolve().parents[2]

CRASHY_FLOW = f"""
flow: crashy
ai:
  slow:
    providers: [{{ use: "{SLOW_PROVIDER}" }}]
steps:
  listen:
    wait: message
  greet:
    say: "thinking about {{{{ message.text }}}}"
  answer:
    ai: slow
    timeout: 6s
    on_error: sorry
    next: listen
  sorry:
    say: Sorry, no answer.
    next: listen
"""

#: Replies go out inside the workflow task (a channel of the worker itself, as web
#: chat on a single node); the conversation's first message picks this flow.
PARROT_FLOW = """
flow: parrot
when: "message.text is matching('^parrot')"
priority: 10
steps:
  listen:
    wait: message
  reply:
    say: "heard {{ message.text }}"
    next: listen
"""

#: seconds the slow provider takes: long enough to kill the worker inside it
SLOW_AI = 4.0
#: a worker process imports the SDK and the engine, and may start slowly on a busy machine
START_TIMEOUT = 60.0


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``: no shutdown, no cleanup, activities cut off mid-flight."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited in time; returns the exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@dataclass
class CrashSetup:
    env: WorkflowEnvironment
    task_queue: str
    data_dir: Path
    flows_dir: Path
    deliveries: Path
    started: list[WorkerProcess]

    async def start_worker(self, *options: str) -> WorkerProcess:
        """A worker subprocess, once it says it polls the task queue."""
        client = self.env.client
        stderr = self.data_dir / f"worker-{len(self.started)}.log"
        args = [client.service_client.config.target_host, client.namespace, self.task_queue]
        args += [str(self.data_dir), str(self.flows_dir), str(self.deliveries), "--slow-ai", str(SLOW_AI), *options]
        with stderr.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.integration.worker_process",
                *args,
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        worker = WorkerProcess(process, stderr)
        self.started.append(worker)
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        assert line.strip() == b"ready", f"the worker did not start: {stderr.read_text(errors='replace')[-2000:]}"
        return worker

    def conversations(self) -> Conversations:
        """The client side, with the flows directory published as the worker reads it."""
        catalog = FlowCatalog(FileRevisionStore(self.data_dir / "revisions"))
        assert catalog.publish_dir([self.flows_dir]) == []
        return Conversations(self.env.client, catalog, task_queue=self.task_queue)

    def delivered(self) -> list[dict[str, Any]]:
        if not self.deliveries.exists():
            return []
        lines = self.deliveries.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(name="fx_crash")
async def fixture_crash(
    fx_dev_env: WorkflowEnvironment, fx_task_queue: str, tmp_path: Path
) -> AsyncIterator[CrashSetup]:
    flows_dir = tmp_path / "flows"
    flows_dir.mkdir()
    (flows_dir / "crashy.yaml").write_text(CRASHY_FLOW, encoding="utf-8")
    (flows_dir / "parrot.yaml").write_text(PARROT_FLOW, encoding="utf-8")
    setup = CrashSetup(fx_dev_env, fx_task_queue, tmp_path / "data", flows_dir, tmp_path / "deliveries.jsonl", [])
    setup.data_dir.mkdir()
    try:
        yield setup
    finally:
        for worker in setup.started:
            await worker.stop()


async def test_a_worker_killed_during_an_ai_call_loses_nothing_and_sends_nothing_twice(
    fx_crash: CrashSetup,
) -> None:
    conversations = fx_crash.conversations()
    conv = f"crash-{uuid4()}"
    handle = conversations.handle(conv)

    first = await fx_crash.start_worker()
    await conversations.send(conv, InboundMessage(id="m-1", text="first question", channel=CHANNEL))

    async def only_ai_running() -> bool:
        # Only the AI call: a delivery cut off by the crash would wait out its own
        # 30 s start_to_close before a retry, holding up every later reply.
        pending = (await handle.describe()).raw_description.pending_activities
        return [(a.activity_type.name, a.state) for a in pending] == [
            ("flowdesk.call_ai", PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
        ]

    await eventually(only_ai_running, "the AI activity to run on the first worker, alone")
    assert [d["text"] for d in fx_crash.delivered()] == ["thinking about first question"]
    first.kill()
    assert await asyncio.wait_for(first.process.wait(), 10) == -signal.SIGKILL

    # The customer writes while no worker runs: accepted as soon as one is back.
    second_message = asyncio.create_task(
        conversations.send(conv, InboundMessage(id="m-2", text="second question", channel=CHANNEL))
    )
    second = await fx_crash.start_worker()
    await asyncio.wait_for(second_message, 60)

    expected = ["thinking about first question", "first question", "thinking about second question", "second question"]
    await eventually(lambda: len(fx_crash.delivered()) >= 4, "four replies", timeout=60)
    delivered = fx_crash.delivered()
    assert [d["text"] for d in delivered] == expected, "every reply once, in order"
    assert len({d["key"] for d in delivered}) == len(delivered), "no key delivered twice"
    assert {d["pid"] for d in delivered[1:]} == {second.pid}, "the second worker completed the interrupted AI call"

    # the first AI call was retried after the crash: its result came from attempt 2
    history = await handle.fetch_history()
    ai_scheduled = [e.event_id for e in scheduled_activities(history, "flowdesk.call_ai")]
    attempts = {
        e.activity_task_started_event_attributes.scheduled_event_id: e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    assert [attempts[i] for i in ai_scheduled] == [2, 1]

    log = JsonlMessageLog(fx_crash.data_dir / "messages")
    await eventually(lambda: len([e for e in log.entries(conv) if e.direction == "out"]) >= 4, "the replies logged")
    assert sorted(e.message_id for e in log.entries(conv) if e.direction == "in") == ["m-1", "m-2"]

    assert await second.stop() == 0, second.stderr.read_text(errors="replace")


async def test_a_worker_killed_while_it_sends_a_reply_in_its_workflow_task_sends_it_once(
    fx_crash: CrashSetup,
) -> None:
    conversations = fx_crash.conversations()
    conv = f"crash-{uuid4()}"
    in_task = {IN_TASK_META: True}

    # The reply is out, but the task that sent it is not complete when the worker dies:
    # it runs again on the next worker, which makes the same reply again.
    first = await fx_crash.start_worker("--slow-delivery", "60")
    sending = asyncio.create_task(
        conversations.send(conv, InboundMessage(id="m-1", text="parrot one", channel=CHANNEL, meta=in_task))
    )
    await eventually(lambda: len(fx_crash.delivered()) == 1, "the first reply out")
    first.kill()
    assert await asyncio.wait_for(first.process.wait(), 10) == -signal.SIGKILL
    second = await fx_crash.start_worker()
    await asyncio.wait_for(sending, 60)
    await conversations.send(conv, InboundMessage(id="m-2", text="parrot two", channel=CHANNEL, meta=in_task))

    await eventually(lambda: len(fx_crash.delivered()) >= 2, "two replies", timeout=60)
    delivered = fx_crash.delivered()
    assert [d["text"] for d in delivered] == ["heard parrot one", "heard parrot two"], "every reply once"
    assert [d["pid"] for d in delivered] == [first.pid, second.pid]

    history = await conversations.handle(conv).fetch_history()
    types = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in types, "the first workflow task ran again"
    assert scheduled_activities(history, "flowdesk.deliver") == [], "both replies went out inside their workflow tasks"
    assert await second.stop() == 0, second.stderr.read_text(errors="replace")


async def test_a_killed_workers_ai_call_is_taken_over_after_the_heartbeat_timeout(fx_crash: CrashSetup) -> None:
    """The AI call heartbeats: its loss is noticed in seconds, not at its start-to-close timeout (16 s here)."""
    conversations = fx_crash.conversations()
    conv = f"crash-{uuid4()}"
    handle = conversations.handle(conv)
    first = await fx_crash.start_worker()
    # The second worker is ready before the crash: what is measured is Temporal noticing it.
    second = await fx_crash.start_worker()

    async def ai_attempt() -> int:
        pending = (await handle.describe()).raw_description.pending_activities
        started = [
            a.attempt
            for a in pending
            if a.activity_type.name == "flowdesk.call_ai"
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ]
        return started[0] if started else 0

    async def ai_attempt_is(attempt: int) -> bool:
        return await ai_attempt() == attempt

    await conversations.send(conv, InboundMessage(id="m-1", text="question", channel=CHANNEL))
    await eventually(lambda: ai_attempt_is(1), "the AI activity running")
    # Kill whichever worker runs it (both poll the queue).
    running = [w for w in (first, second) if w.pid == await _ai_worker_pid(handle)]
    assert running, "the AI activity runs on one of the two workers"
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    running[0].kill()
    assert await asyncio.wait_for(running[0].process.wait(), 10) == -signal.SIGKILL

    await eventually(lambda: ai_attempt_is(2), "the AI call retried on the other worker", timeout=30)
    taken_over = loop.time() - killed_at
    start_to_close = 6 + AI_ACTIVITY_GRACE.total_seconds()
    # Heartbeat timeout plus the retry's 1 s interval and some slack, well under start-to-close.
    assert taken_over < CALL_HEARTBEAT_TIMEOUT.total_seconds() + 4 < start_to_close, taken_over
    await eventually(lambda: "question" in [d["text"] for d in fx_crash.delivered()], "the answer", timeout=30)
    survivor = second if running[0] is first else first
    assert [d["pid"] for d in fx_crash.delivered() if d["text"] == "question"] == [survivor.pid]
    # The take-over above is what the heartbeat buys (measured from the pending attempt, not
    # a wall-clock bound on the answer, which waits for the slow vendor on a loaded host).
    # What the customer notices is the answer and never the flow's apology.
    assert "Sorry, no answer." not in [d["text"] for d in fx_crash.delivered()], "the AI answer, not its on_error path"


async def _ai_worker_pid(handle: Any) -> int:
    """The process id of the worker running the pending AI activity (its identity is ``pid@host``)."""
    pending = (await handle.describe()).raw_description.pending_activities
    identities = [a.last_worker_identity for a in pending if a.activity_type.name == "flowdesk.call_ai"]
    assert identities and identities[0], pending
    return int(identities[0].split("@", 1)[0])
