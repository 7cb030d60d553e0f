"""Test support for conversations on real Temporal servers.

- :class:`CollectingChannel`: an in-memory :class:`~engine.channels.types.Channel`
  that records what it sent as ``(key, text)`` and treats a repeated key as already
  sent, as a real channel with idempotency keys does. It can be told to reject a
  message for good or to fail a few times first.
- :class:`ShopServer`: a tiny HTTP API (``http.server`` in a thread on 127.0.0.1)
  that records the requests it got.
- :func:`running_conversations`: a worker (``engine.runtime.worker.build_worker``)
  plus the client side (``Conversations``) for a set of flow sources.
- :func:`eventually`: poll a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.worker import Worker

from engine.channels.errors import ChannelThrottled, DeliveryRejected
from engine.channels.types import Capabilities, OutboundMessage, Receipt
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.runtime.activities import SecretLookup
from engine.runtime.client import Conversations
from engine.runtime.ports import JsonlMessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import (
    IN_TASK_META,
    Accepted,
    ConversationInput,
    InboundMessage,
    RecordInput,
    workflow_id,
)
from engine.runtime.worker import build_worker
from engine.runtime.workflow import ConversationWorkflow

#: Answers every message with "got <text>"; after 30 quiet minutes says bye and ends.
ECHO_FLOW = """
flow: echo
steps:
  listen:
    wait: message
    timeout: 30m
    on_timeout: bye
  reply:
    say: "got {{ message.text }}"
    next: listen
  bye:
    say: bye
    end: abandoned
"""

#: The channel every test conversation talks on.
CHANNEL = "test"

#: Long enough for a loaded 2-core machine, short enough to fail a hung test quickly.
DEADLINE = 30.0


async def eventually(check: Callable[[], Any], what: str, *, timeout: float = DEADLINE, interval: float = 0.05) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy, and return that.

    Fails saying that ``what`` did not happen, with the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {result!r})")
        await asyncio.sleep(interval)


def compile_flow(source: str, knowledge_dir: Path | None = None) -> CompiledFlow:
    """Compile a flow source (its knowledge files under ``knowledge_dir``); errors fail the test."""
    result = compile_source(source, "<test flow>", knowledge=knowledge_dir)
    errors = [d.format() for d in result.diagnostics if d.is_error]
    assert result.flow is not None and not errors, "\n".join(errors)
    return result.flow


# -- the outbound channel ------------------------------------------------------------------


class CollectingChannel:
    """Records every message it sends; a repeated key is reported as a duplicate, not resent."""

    name = CHANNEL
    capabilities = Capabilities(choices=True)

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        #: delivery attempts per key, including failed ones
        self.attempts: dict[str, int] = {}
        #: texts containing one of these are refused for good (DeliveryRejected)
        self.reject: set[str] = set()
        #: text fragment -> how many attempts still fail with a transient error
        self.flaky: dict[str, int] = {}
        #: text fragment -> (attempts still answered 429, the Retry-After they name)
        self.throttled: dict[str, tuple[int, float]] = {}
        #: monotonic time of every attempt, per key
        self.attempted_at: dict[str, list[float]] = {}
        self._keys: set[str] = set()

    async def send(self, message: OutboundMessage) -> Receipt:
        self.attempts[message.key] = self.attempts.get(message.key, 0) + 1
        self.attempted_at.setdefault(message.key, []).append(time.monotonic())
        for fragment, (left, retry_after) in self.throttled.items():
            if fragment in message.text and left > 0:
                self.throttled[fragment] = (left - 1, retry_after)
                raise ChannelThrottled("the vendor answered 429", retry_after)
        if any(fragment in message.text for fragment in self.reject):
            raise DeliveryRejected(f"recipient blocked the bot ({message.key})")
        for fragment, left in self.flaky.items():
            if fragment in message.text and left > 0:
                self.flaky[fragment] = left - 1
                raise RuntimeError("channel API unavailable (transient)")
        if message.key in self._keys:
            return Receipt("duplicate")
        self._keys.add(message.key)
        self.sent.append(message)
        return Receipt("sent", channel_message_id=f"out-{len(self.sent)}")

    def deliveries(self, conversation_id: str) -> list[tuple[str, str]]:
        """``(key, text)`` of every message sent to a conversation, in order."""
        return [(m.key, m.text) for m in self.sent if m.conversation_id == conversation_id]

    def texts(self, conversation_id: str) -> list[str]:
        return [text for _, text in self.deliveries(conversation_id)]

    async def wait_texts(self, conversation_id: str, count: int, *, timeout: float = DEADLINE) -> list[str]:
        """The first ``count`` texts sent to a conversation, once they are all there."""
        try:
            await eventually(lambda: len(self.texts(conversation_id)) >= count, "replies", timeout=timeout)
        except AssertionError:
            got = self.texts(conversation_id)
            raise AssertionError(f"{count} replies to {conversation_id} within {timeout:g} s; got {got}") from None
        return self.texts(conversation_id)[:count]


# -- a small HTTP API ------------------------------------------------------------------------


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class ShopServer:
    """``GET /orders/<id>``: 200 with the order when known, 503 for ``/orders/down``, else 404."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the shop first"
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> ShopServer:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                shop.requests.append(SeenRequest("GET", self.path, dict(self.headers.items())))
                order_id = self.path.rsplit("/", 1)[-1]
                if order_id == "down":
                    status, body = 503, {"error": "maintenance"}
                elif order_id in shop.orders:
                    status, body = 200, shop.orders[order_id]
                else:
                    status, body = 404, {"error": "not found"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="shop", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# -- a worker and the client side -------------------------------------------------------------


@dataclass
class Runtime:
    """One worker on its own task queue, with its catalog, channel and message log."""

    client: Client
    task_queue: str
    catalog: FlowCatalog
    channel: CollectingChannel
    log: JsonlMessageLog
    conversations: Conversations
    worker: Worker
    #: every conversation this runtime talked to, ended when the runtime stops
    touched: set[str] = field(default_factory=set)
    #: messages say what web chat on a single node says: replies go out from this worker,
    #: inside the workflow task (False: every reply is a regular activity)
    reply_in_task: bool = True

    def inbound(self, text: str, message_id: str | None) -> InboundMessage:
        meta = {IN_TASK_META: True} if self.reply_in_task else {}
        return InboundMessage(
            id=f"in-{uuid4()}" if message_id is None else message_id, text=text, channel=CHANNEL, meta=meta
        )

    def publish(self, source: str) -> CompiledFlow:
        """Make ``source`` the live revision of its flow (what a live edit does)."""
        flow = compile_flow(source)
        self.catalog.publish(flow)
        return flow

    async def send(self, conversation_id: str, text: str, *, message_id: str | None = None) -> Accepted:
        """A customer's message, as a channel connector would hand it over."""
        message = self.inbound(text, message_id)
        self.touched.add(conversation_id)
        return await self.conversations.send(conversation_id, message)

    def handle(self, conversation_id: str) -> WorkflowHandle[Any, Any]:
        """The conversation's workflow, whichever run is current."""
        return self.conversations.handle(conversation_id)

    async def start(self, conversation_id: str, flow: str, *, max_events_per_run: int | None = None) -> None:
        """Start a conversation without a message (servers without update-with-start; small runs)."""
        live = self.catalog.live(flow)
        assert live is not None, f"flow {flow!r} is not published"
        data = ConversationInput(conversation_id, live.name, live.revision, CHANNEL)
        self.touched.add(conversation_id)
        if max_events_per_run is not None:
            data.max_events_per_run = max_events_per_run
        await self.client.start_workflow(
            ConversationWorkflow.run, data, id=workflow_id(conversation_id), task_queue=self.task_queue
        )

    async def update(self, conversation_id: str, text: str, *, message_id: str | None = None) -> Accepted:
        """A customer's message as a plain update to a started conversation (see :meth:`start`)."""
        message = self.inbound(text, message_id)
        accepted: Accepted = await self.handle(conversation_id).execute_update(
            ConversationWorkflow.message, message, id=message.id
        )
        return accepted

    def entries(self, conversation_id: str, direction: str | None = None) -> list[RecordInput]:
        """The message log of a conversation in conversation order (by ``at``; writes may land out of order)."""
        found = sorted(self.log.entries(conversation_id), key=lambda e: e.at)
        return [e for e in found if direction is None or e.direction == direction]

    async def wait_entries(self, conversation_id: str, direction: str, count: int) -> list[RecordInput]:
        """The log entries of one direction, once there are ``count`` (log writes trail the replies)."""
        await eventually(
            lambda: len(self.entries(conversation_id, direction)) >= count,
            f"{count} {direction!r} entries in the log of {conversation_id}",
        )
        return self.entries(conversation_id, direction)

    async def step(self, conversation_id: str) -> dict[str, Any]:
        """The public state of a conversation (the ``state`` query)."""
        return (await self.conversations.state(conversation_id)).state

    async def wait_step(self, conversation_id: str, step: str, *, waiting_for: str = "message") -> dict[str, Any]:
        """Poll until the conversation waits at ``step`` (for ``waiting_for``)."""

        async def there() -> dict[str, Any] | None:
            state = await self.step(conversation_id)
            return state if state.get("step") == step and state.get("waiting_for") == waiting_for else None

        state: dict[str, Any] = await eventually(there, f"{conversation_id} to wait for a {waiting_for} at {step!r}")
        return state


@asynccontextmanager
async def running_conversations(
    client: Client,
    task_queue: str,
    data_dir: Path,
    flows: Iterable[str],
    *,
    secrets: SecretLookup | None = None,
    channel: CollectingChannel | None = None,
    ai_profiles: dict[str, Any] | None = None,
    knowledge_dir: Path | None = None,
    reply_in_task: bool = True,
) -> AsyncIterator[Runtime]:
    """A worker for ``flows`` (sources, all published live) and the client side talking to it."""
    catalog = FlowCatalog(FileRevisionStore(data_dir / "revisions"))
    for source in flows:
        catalog.publish(compile_flow(source, knowledge_dir))
    channel = channel or CollectingChannel()
    log = JsonlMessageLog(data_dir / "messages")
    worker = build_worker(
        client,
        catalog,
        task_queue=task_queue,
        channels={CHANNEL: channel},
        message_log=log,
        secrets=secrets or (lambda name: None),
        ai_profiles=ai_profiles,
        knowledge_dir=knowledge_dir,
    )
    async with worker:
        runtime = Runtime(
            client=client,
            task_queue=task_queue,
            catalog=catalog,
            channel=channel,
            log=log,
            conversations=Conversations(client, catalog, task_queue=task_queue),
            worker=worker,
            reply_in_task=reply_in_task,
        )
        try:
            yield runtime
        finally:
            await _end_all(runtime)


async def _end_all(runtime: Runtime) -> None:
    """Terminate the conversations a test left running.

    The servers are shared by the whole session: a workflow whose worker is gone
    would get workflow tasks nobody takes, and on the time-skipping server an
    unanswered workflow task stops the clock for every later test.
    """
    for conversation_id in runtime.touched:
        handle = runtime.handle(conversation_id)
        with contextlib.suppress(RPCError):
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")


def scheduled_activities(history: WorkflowHistory, activity_type: str) -> list[HistoryEvent]:
    """The ``ActivityTaskScheduled`` events of ``activity_type`` in a history, in order."""
    return [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]


async def history_text(handle: WorkflowHandle[Any, Any]) -> str:
    """The workflow's event history (latest run) as Temporal's JSON, followed by every payload decoded.

    Payloads (inputs, results, update arguments) are base64 in the JSON, so a search
    for a value in the raw JSON alone would find nothing even when it is there.
    """
    raw = (await handle.fetch_history()).to_json()
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                decoded.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(raw))
    return "\n".join([raw, *decoded])
