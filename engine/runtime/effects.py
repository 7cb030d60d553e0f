"""What a conversation's workflow does to the world: timers, AI and HTTP calls, delivery, log.

A mixin of :class:`engine.runtime.workflow.ConversationWorkflow`: the loop and the
handlers live there, the effects of the interpreter's commands here. All of it is
workflow code (deterministic; the world is reached only through activities).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from engine.ai import offline_chain
    from engine.ai.gateway import DEFAULT_CHAIN_TIMEOUT_MS, chain_timeout_ms
    from engine.ai.offline import OFFLINE_PROVIDERS
    from engine.flow.events import (
        AIFailed,
        AIResult,
        CallAI,
        CallHttp,
        Event,
        HttpFailed,
        HttpResult,
        TimerFired,
        event_from_dict,
        to_dict,
    )
    from engine.flow.model import Chain, CompiledFlow
    from engine.flow.state import ConversationState
    from engine.message_log import RecordInput
    from engine.runtime import registry
    from engine.runtime.activities import ConversationActivities
    from engine.runtime.observe import time_step
    from engine.runtime.types import IN_TASK_META, AIInput, ConversationInput, DeliverInput, HttpInput

#: A delivery is retried for about two minutes, then recorded as failed: a
#: reply that arrives an hour late is worse than a visible failure.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), maximum_attempts=8
)
#: The message log must not lose a message: retried until it works.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))

#: A regular activity fails with ActivityError (the reason is its cause); a local
#: activity whose retries are used up raises the reason itself.
ACTIVITY_FAILURES = (ActivityError, ApplicationError, TimeoutError)

DEFAULT_AI_TIMEOUT = timedelta(milliseconds=DEFAULT_CHAIN_TIMEOUT_MS)
#: Time an AI activity gets beyond its chain's timeout, to report what happened.
AI_ACTIVITY_GRACE = timedelta(seconds=10)
#: A chain's failure is a result; the activity itself fails only when its worker does.
AI_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
#: AI and HTTP activities heartbeat every second (activities.heartbeating): a call
#: whose worker died is retried elsewhere after this, not after its whole timeout.
CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=4)
#: Workflow patch: a chain that gave no answer is logged with its attempts.
RECORD_AI_FAILURES = "record-ai-failures"
#: Workflow patch: a chain whose answer is a pure function of the flow revision is
#: answered in workflow code, without the AI activity.
OFFLINE_AI_IN_WORKFLOW = "offline-ai-in-workflow"
DEFAULT_HTTP_TIMEOUT = timedelta(seconds=10)
#: Workflow patch: replies to a channel that asks for it go out inside the workflow
#: task that made them (a local activity), and a reply's key names its text.
DELIVER_IN_TASK = "deliver-in-task"
#: A reply sent inside the workflow task holds that task open: a short bound, one
#: quick retry, then the regular activity with DELIVERY_RETRY takes over.
IN_TASK_TIMEOUT = timedelta(seconds=5)
IN_TASK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2)


class PinnedFlows:
    """FlowResolver for workflow code: pinned revisions from the worker's compiled cache."""

    def __init__(self, live: dict[str, str]) -> None:
        self.live = live

    def get(self, name: str, revision: str | None = None) -> CompiledFlow | None:
        revision = revision or self.live.get(name)
        if revision is None:
            return None
        # Content-addressed and immutable: reading it is deterministic, so the
        # sandbox may let this one read through.
        with workflow.unsafe.sandbox_unrestricted():
            return registry.load(workflow.info().task_queue, name, revision)


class ConversationEffects:
    """Carrying out commands; the workflow's state is declared here, set in its __init__."""

    input: ConversationInput
    state: ConversationState | None
    events: deque[Event]
    timers: dict[str, str]
    timer_tasks: dict[str, asyncio.Task[None]]
    outbox: deque[DeliverInput]
    delivering: bool
    in_flight: int
    tasks: set[asyncio.Task[None]]
    calls: set[asyncio.Task[None]]
    sent: int
    #: replies made in this run by their text's digest (see _reply_key)
    reply_texts: dict[str, int]
    #: AI calls this run answered in workflow code (see _only_own_events)
    answered_here: set[str]
    flows: PinnedFlows

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        self.in_flight += 1

        async def tracked() -> None:
            try:
                await work
            finally:
                self.in_flight -= 1

        task = asyncio.create_task(tracked())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self.calls.discard)
        return task

    async def _timer(self, timer_id: str, seconds: float) -> None:
        try:
            await workflow.sleep(seconds)
        except asyncio.CancelledError:
            return
        if self.timers.pop(timer_id, None) is not None:
            self.timer_tasks.pop(timer_id, None)
            self.events.append(TimerFired(timer_id=timer_id, at=self._now()))

    async def _call_ai(self, call: CallAI) -> None:
        started = workflow.time()
        try:
            event = self._answer_in_workflow(call)
            await self._ai_event(event if event is not None else await self._ai_activity(call))
        except ACTIVITY_FAILURES as exc:
            reason = "timeout" if isinstance(_cause(exc), TimeoutError) else "failed"
            self.events.append(AIFailed(call.call_id, reason, self._now(), failure_text(exc)))
        finally:
            if not workflow.unsafe.is_replaying():
                kind = "classify" if call.purpose == "classify" else "ai"
                time_step(call.flow, kind, workflow.time() - started)

    async def _ai_activity(self, call: CallAI) -> Event:
        """The chain's outcome from the AI activity (engine.ai.gateway)."""
        # The chain keeps its own time and retries each provider as the flow says; this
        # bounds one run of it and retries it only when a worker was lost mid-chain.
        timeout = self._chain_timeout(call) + AI_ACTIVITY_GRACE
        data = AIInput(call=to_dict(call), conversation_id=self.input.conversation_id)
        retry = AI_ACTIVITY_RETRY
        if self._offline_chain(call):
            # Offline providers (echo, faq) answer from memory in microseconds: a
            # local activity spares two round trips through the server.
            result = await workflow.execute_local_activity_method(
                ConversationActivities.call_ai, data, start_to_close_timeout=timeout, retry_policy=retry
            )
        else:
            result = await workflow.execute_activity_method(
                ConversationActivities.call_ai,
                data,
                start_to_close_timeout=timeout,
                heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
                retry_policy=retry,
            )
        return event_from_dict({**result, "call_id": call.call_id, "at": self._now()})

    async def _ai_event(self, event: Event) -> None:
        """An AI call's outcome goes to the interpreter; a chain that gave none is logged first."""
        if isinstance(event, AIFailed) and workflow.patched(RECORD_AI_FAILURES):
            await self._record_ai_failure(event)
        self.events.append(event)

    def _answer_in_workflow(self, call: CallAI) -> AIResult | AIFailed | None:
        """A pure offline chain's outcome, made here with no activity (engine.ai.offline_chain)."""
        flow = self.flows.get(call.flow, call.revision)
        chain = flow.chains.get(call.chain) if flow is not None else None
        if flow is None or chain is None or not offline_chain.is_pure(chain, flow, call.purpose):
            return None
        # Asked only for a pure chain, so a history without the marker replays through
        # the activity that answered it then.
        if not workflow.patched(OFFLINE_AI_IN_WORKFLOW):
            return None
        event = offline_chain.answer(call, chain, flow, self._now(), count=not workflow.unsafe.is_replaying())
        self.answered_here.add(call.call_id)
        return event

    def _chain(self, call: CallAI) -> Chain | None:
        flow = self.flows.get(call.flow, call.revision)
        return flow.chains.get(call.chain) if flow is not None else None

    def _chain_timeout(self, call: CallAI) -> timedelta:
        chain = self._chain(call)
        return DEFAULT_AI_TIMEOUT if chain is None else timedelta(milliseconds=chain_timeout_ms(chain, call))

    async def _record_ai_failure(self, event: AIFailed) -> None:
        """Log a chain that gave no answer, with every attempt (the answers' are on their messages)."""
        await self._record(
            event.call_id,
            "event",
            "",
            event.at,
            status="ai_failed",
            sender="system",
            detail=f"{event.reason}: {event.detail}"[:1000],
            meta={"ai": {"attempts": list(event.attempts)}},
        )

    def _offline_chain(self, call: CallAI) -> bool:
        chain = self._chain(call)
        return chain is not None and all(p.use in OFFLINE_PROVIDERS for p in chain.providers)

    async def _call_http(self, call: CallHttp) -> None:
        timeout = timedelta(milliseconds=call.timeout_ms) if call.timeout_ms else DEFAULT_HTTP_TIMEOUT
        attempts = (call.retries or 0) + 1
        started = workflow.time()
        try:
            result = await workflow.execute_activity_method(
                ConversationActivities.call_http,
                HttpInput(call=to_dict(call), conversation_id=self.input.conversation_id),
                # the activity applies the request timeout; this bounds one attempt
                start_to_close_timeout=timeout + timedelta(seconds=5),
                heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=attempts),
            )
            self.events.append(HttpResult(call.call_id, int(result["status"]), result.get("body"), self._now()))
        except ACTIVITY_FAILURES as exc:
            cause = _cause(exc)
            timed_out = isinstance(cause, TimeoutError) or (
                isinstance(cause, ApplicationError) and cause.type == "HttpTimeout"
            )
            self.events.append(
                HttpFailed(call.call_id, "timeout" if timed_out else "error", self._now(), failure_text(exc))
            )
        finally:
            if not workflow.unsafe.is_replaying() and self.state is not None:
                time_step(self.state.flow, "http", workflow.time() - started)

    # -- delivery -------------------------------------------------------------------------

    def _queue_delivery(
        self, text: str, choices: tuple[str, ...], sender: str, meta: dict[str, Any] | None = None
    ) -> None:
        self.sent += 1
        in_task = workflow.patched(DELIVER_IN_TASK)
        key = self._reply_key(text) if in_task else f"{self.input.conversation_id}:{self.sent}"
        route = self._reply_route()
        self.outbox.append(
            DeliverInput(
                conversation_id=self.input.conversation_id,
                channel=self._reply_channel(),
                key=key,
                text=text,
                choices=list(choices),
                sender=sender,
                contact=self.state.contact if self.state else {},
                flow=self.state.flow if self.state else self.input.flow,
                revision=self.state.revision if self.state else self.input.revision,
                at=self._now(),
                route=route,
                meta=meta or {},
                in_task=in_task and not route and self._reply_in_task(),
            )
        )

    def _latest_message(self) -> dict[str, Any]:
        # Replies follow the latest inbound message: its channel, and what its meta says.
        return (self.state.message if self.state else None) or {}

    def _reply_channel(self) -> str:
        return str(self._latest_message().get("channel") or self.input.channel)

    def _reply_route(self) -> str:
        # A socket channel names the node that holds the socket in each message.
        meta = self._latest_message().get("meta") or {}
        return str(meta.get("reply_queue") or "")

    def _reply_key(self, text: str) -> str:
        """A key that a re-run of the workflow task gives the same reply, whatever the order.

        A reply sent inside a workflow task that is then lost (the server drops a
        task while updates pile up; a worker dies) is made again when the task runs
        again, and the re-run may take the waiting messages in another order. So
        the key is not the reply's number but its text and how many replies of
        that text this run made before: the re-run's copy finds its key taken and
        is not sent, and no reply can take the key of another. A run starts with
        the count of replies before it, which keeps keys apart across runs.
        """
        digest = _digest(text)
        made = self.reply_texts[digest] = self.reply_texts.get(digest, 0) + 1
        return f"{self.input.conversation_id}:{self.input.sent}.{digest}.{made}"

    def _reply_in_task(self) -> bool:
        # The channel endpoint says so in each message: only it knows that this
        # worker holds the channel (web chat on a single node).
        meta = self._latest_message().get("meta") or {}
        return bool(meta.get(IN_TASK_META))

    async def _deliver_forever(self) -> None:
        """Send queued replies one at a time, in order."""
        while True:
            await workflow.wait_condition(lambda: bool(self.outbox))
            item = self.outbox[0]
            self.delivering = True
            try:
                await self._send(item)
            except ACTIVITY_FAILURES as exc:
                # A node that held the socket and went away: the reply is kept for the
                # visitor's next connection (any node replays the store's history).
                kept = bool(item.route) and isinstance(_cause(exc), TimeoutError)
                if not kept:
                    workflow.logger.warning("delivery %s failed for good: %s", item.key, failure_text(exc))
                await self._record(
                    item.key,
                    "out",
                    item.text,
                    item.at,  # like a sent reply's entry: when the reply was queued
                    status="stored" if kept else "failed",
                    sender=item.sender,
                    channel=item.channel,
                    detail=failure_text(exc),
                )
            finally:
                self.outbox.popleft()
                self.delivering = False

    def _only_own_events(self) -> bool:
        """Whether every waiting event is an answer this workflow code made itself.

        In-task delivery is for a task that took one message: a re-run of a lost task
        that took several may take them in another order. An answer made here (an
        offline chain's) is not another message: a re-run makes it again, the same.
        """
        return all(isinstance(e, (AIResult, AIFailed)) and e.call_id in self.answered_here for e in self.events)

    async def _send(self, item: DeliverInput) -> None:
        """Deliver one reply: inside this workflow task when it can, else as a regular activity."""
        if item.in_task and self._only_own_events() and await self._send_in_task(item):
            return
        if item.route:
            await workflow.execute_activity_method(
                ConversationActivities.deliver,
                item,
                task_queue=item.route,
                # Nobody polls the queue of a node that is gone: keep the reply instead.
                schedule_to_start_timeout=timedelta(seconds=self.input.node_pickup_seconds),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=DELIVERY_RETRY,
            )
            return
        await workflow.execute_activity_method(
            ConversationActivities.deliver,
            item,
            # Short: a delivery cut off by a crashed worker holds up the replies after it.
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=DELIVERY_RETRY,
        )

    async def _send_in_task(self, item: DeliverInput) -> bool:
        """Deliver from a local activity, in the task that made the reply; False to fall back.

        This spares the reply a round trip through the server and the conversation a
        second workflow task. A local activity runs before its task is committed,
        so the task may be re-run (a worker crash, or the server dropping a task
        while updates pile up) and the reply made again: its key (see _reply_key)
        makes the repeat a no-op. It is used only when no other event waits (a
        re-run that takes several messages at once falls back to the regular
        activity, scheduled from committed history) and only for a channel
        served on this worker that answers at once.
        """
        try:
            await workflow.execute_local_activity_method(
                ConversationActivities.deliver,
                item,
                start_to_close_timeout=IN_TASK_TIMEOUT,
                retry_policy=IN_TASK_RETRY,
            )
        except ACTIVITY_FAILURES as exc:
            if isinstance(exc, ApplicationError) and exc.non_retryable:
                raise  # refused for good: the regular activity would be refused too
            workflow.logger.info("delivery %s in the task failed (%s); sending it as an activity", item.key, exc)
            return False
        return True

    def _entry(
        self,
        message_id: str,
        direction: str,
        text: str,
        at: str,
        *,
        status: str,
        sender: str = "customer",
        channel: str | None = None,
        detail: str = "",
        meta: dict[str, Any] | None = None,
    ) -> RecordInput:
        state = self.state
        return RecordInput(
            conversation_id=self.input.conversation_id,
            direction=direction,
            text=text,
            channel=channel or self.input.channel,
            message_id=message_id,
            at=at,
            status=status,
            sender=sender,
            flow=state.flow if state else self.input.flow,
            revision=state.revision if state else self.input.revision,
            detail=detail,
            meta=meta or {},
        )

    async def _record(self, message_id: str, direction: str, text: str, at: str, **details: Any) -> None:
        """Write a log entry from the workflow (failures, hand-offs): a local activity."""
        await workflow.execute_local_activity_method(
            ConversationActivities.record,
            self._entry(message_id, direction, text, at, **details),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RECORD_RETRY,
        )

    def _now(self) -> str:
        """Event time: workflow time, moved by the conversation's clock offset (flow tests)."""
        offset = self.input.clock_offset_ms
        now = workflow.now() + timedelta(milliseconds=offset) if offset else workflow.now()
        return now.isoformat()


def _digest(text: str) -> str:
    # 64 bits: two different replies of one conversation never share a key.
    return hashlib.blake2s(text.encode("utf-8"), digest_size=8).hexdigest()


def _cause(exc: BaseException) -> BaseException | None:
    """What went wrong: an activity's error carries it as its cause, a local activity's is it."""
    return exc.cause if isinstance(exc, ActivityError) else exc


def failure_text(exc: BaseException) -> str:
    cause = _cause(exc)
    return str(cause.message if isinstance(cause, ApplicationError) else cause or exc)
