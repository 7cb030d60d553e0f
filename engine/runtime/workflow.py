"""ConversationWorkflow: one durable entity workflow per conversation.

The workflow is thin: it queues events (messages, agent actions, results,
timers), feeds them one at a time to the pure interpreter, and carries out the
commands it returns — activities for AI, HTTP, delivery and the message log
(delivery inside the workflow task where the channel allows it), workflow
timers for waits, a local activity for the inbound pipeline. All step
semantics live in :mod:`engine.flow.interpret`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from engine.flow.events import (
        AgentAccepted,
        AgentMessage,
        AgentResolved,
        CallAI,
        CallHttp,
        CancelHandoff,
        CancelTimer,
        CloseRequested,
        Command,
        EndConversation,
        Event,
        Fault,
        MessageReceived,
        SendText,
        StartHandoff,
        StartTimer,
        event_from_dict,
        to_dict,
    )
    from engine.flow.interpret import adopt_revision, advance, begin
    from engine.flow.model import CompiledFlow, FlowJumpAction
    from engine.flow.public_settings import PublicSettings, interpreter_context
    from engine.flow.state import ConversationState
    from engine.runtime import registry
    from engine.runtime.activities import ConversationActivities
    from engine.runtime.effects import ACTIVITY_FAILURES, ConversationEffects, PinnedFlows, failure_text
    from engine.runtime.observe import count_steps
    from engine.runtime.patches import INTERPRETER_PATCHES
    from engine.runtime.types import (
        Accepted,
        AgentAction,
        CloseRequest,
        ConversationInput,
        DeliverInput,
        InboundMessage,
        PrepareInput,
        StateView,
    )

#: The inbound pipeline is local and fast; a few quick attempts.
PREPARE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)

MAX_MESSAGE_CHARS = 20_000
SEEN_LIMIT = 1000
AGENT_ACTIONS = frozenset({"accept", "reply", "resolve", "transfer"})
#: The error type of a message sent to a conversation that has ended.
ENDED_ERROR = "ConversationEnded"
#: Runs started before this change do not log the end of their conversation.
RECORD_END_PATCH = "record-conversation-end"
#: Runs started before this change always ran the prepare activity for a message.
SKIP_PREPARE_PATCH = "skip-idle-prepare"
#: Runs started before this change ran on the default settings and never moved.
SETTINGS_REVISION_PATCH = "settings-revision"


@workflow.defn(name="Conversation")
class ConversationWorkflow(ConversationEffects):
    """Drives one conversation's flow; see the module docstring."""

    @workflow.init
    def __init__(self, data: ConversationInput) -> None:
        self.input = data
        self.events: deque[Event] = deque(event_from_dict(e) for e in data.backlog)
        self.seen: dict[str, None] = dict.fromkeys(data.seen)
        self.timers: dict[str, str] = dict(data.timers)
        self.timer_tasks: dict[str, asyncio.Task[None]] = {}
        self.outbox: deque[DeliverInput] = deque()
        self.delivering = False
        #: the loop is handling an event (a prepare activity may be running for it)
        self.handling = False
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.calls: set[asyncio.Task[None]] = set()
        self.sent = data.sent
        self.reply_texts: dict[str, int] = {}
        self.answered_here: set[str] = set()
        self.flows = PinnedFlows(dict(data.live))
        #: the settings revision this conversation runs on (see _follow_settings)
        self.settings_revision = data.settings
        self._settings: PublicSettings | None = None
        self.state: ConversationState | None = (
            ConversationState.from_dict(data.state) if data.state is not None else None
        )

    # -- the loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, data: ConversationInput) -> dict[str, Any]:
        self.flows.live.setdefault(data.flow, data.revision)
        if self.state is None:
            flow = self._flow(data.flow, data.revision)
            self.state = begin(
                flow,
                conversation={"id": data.conversation_id, "channel": data.channel, "started_at": self._now()},
                contact=data.contact,
                at=self._now(),
                vars=data.vars,
            )
        for timer_id, due in self.timers.items():
            delay = max(0.0, (datetime.fromisoformat(due) - workflow.now()).total_seconds())
            self.timer_tasks[timer_id] = asyncio.create_task(self._timer(timer_id, delay))
        outbox = asyncio.create_task(self._deliver_forever())
        handled = 0
        while True:
            await workflow.wait_condition(lambda: bool(self.events) or (self.state is not None and self.state.ended))
            if not self.events:
                break
            self.handling = True
            await self._handle(self.events.popleft())
            self.handling = False
            handled += 1
            if self._should_continue_as_new(handled):
                await self._quiesce(outbox)
                workflow.continue_as_new(self._carry_over())
        # The conversation has ended: its last replies and log entries still go out;
        # AI and HTTP calls still running have nobody left to answer.
        for call in list(self.calls):
            call.cancel()
        await workflow.wait_condition(lambda: self.in_flight == 0 and not self.outbox and not self.delivering)
        outbox.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.state is not None
        return {"status": self.state.end_status, "step": self.state.step}

    async def _handle(self, event: Event) -> None:
        assert self.state is not None
        if isinstance(event, MessageReceived):
            prepared = await self._prepare(event)
            if prepared is None:
                return
            event = prepared
        features = frozenset(name for name in INTERPRETER_PATCHES if workflow.patched(name))
        ctx = interpreter_context(self.flows, self._public_settings(), features=features)
        outcome = advance(ctx, self.state, event)
        self.state = outcome.state
        if not workflow.unsafe.is_replaying():
            count_steps(outcome.trace)
        for command in outcome.commands:
            self._execute(command)

    async def _prepare(self, event: MessageReceived) -> MessageReceived | None:
        """Persist the message, run the inbound pipeline, and move to a new live revision."""
        assert self.state is not None
        message = event.message
        live = self._live_from_sender(event)
        if live is not None:
            # Nothing for the prepare activity to do: logged, no pipeline, revisions known.
            self._follow_live(live)
            self._follow_settings(event.settings)
            return event
        try:
            prepared = await workflow.execute_local_activity_method(
                ConversationActivities.prepare,
                PrepareInput(
                    self.input.conversation_id,
                    self.state.flow,
                    self.state.revision,
                    message,
                    flows=self._flows_of_interest(),
                    key=str(self.state.contact.get("id") or ""),
                    # A server that logged the message itself says so (one write, not two).
                    record=None
                    if message.get("meta", {}).get("logged")
                    else self._entry(message["id"], "in", message["text"], event.at, status="received"),
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=PREPARE_RETRY,
            )
        except ACTIVITY_FAILURES as exc:
            # The customer is not kept waiting on a broken pipeline: the message goes
            # on as written, on the revision the conversation already has.
            workflow.logger.error("inbound pipeline failed, message passed on unprocessed: %s", failure_text(exc))
            return event
        self._follow_live(prepared.live)
        self._follow_settings(prepared.settings or event.settings)
        if prepared.blocked is not None:
            text = str(prepared.message.get("text", message["text"]))
            await self._record(message["id"], "in", text, event.at, status="blocked", detail=prepared.blocked)
            if prepared.reply:
                self._queue_delivery(prepared.reply, (), "bot")
            return None
        return MessageReceived(message=prepared.message, at=event.at)

    def _live_from_sender(self, event: MessageReceived) -> dict[str, str] | None:
        """The live revisions of the flows of interest, when the prepare activity can be skipped.

        That is when the server logged the message, the conversation's flow has no
        inbound pipeline, and the message came with the live revisions the server
        saw (revisions are content-addressed: any worker loads them by hash).
        """
        assert self.state is not None
        if not event.live or not event.message.get("meta", {}).get("logged"):
            return None
        current = self.flows.get(self.state.flow, self.state.revision)
        if current is None or current.inbound:
            return None
        names = self._flows_of_interest()
        if any(name not in event.live for name in names):
            return None
        if not workflow.patched(SKIP_PREPARE_PATCH):
            return None
        return {name: event.live[name] for name in names}

    def _follow_live(self, live: dict[str, str]) -> None:
        """Pin the flows' live revisions; move the conversation when its own flow has a new one."""
        assert self.state is not None
        self.flows.live.update(live)
        revision = live.get(self.state.flow)
        if revision is not None and revision != self.state.revision:
            moved = adopt_revision(self.state, self._flow(self.state.flow, revision))
            if moved is not None:
                workflow.logger.info("conversation moved to revision %s of %s", revision[:12], self.state.flow)
                self.state = moved

    def _follow_settings(self, revision: str) -> None:
        """Move to the live settings revision at a safe point: where a new flow revision is adopted.

        That is while the conversation waits for the customer's message (or has not
        started): no turn is half done under the old settings.
        """
        assert self.state is not None
        if not revision or revision == self.settings_revision:
            return
        pending = self.state.pending
        if self.state.ended or (pending is not None and pending.wait != "message"):
            return
        if not workflow.patched(SETTINGS_REVISION_PATCH):
            return
        workflow.logger.info("conversation moved to settings revision %s", revision[:12])
        self.settings_revision, self._settings = revision, None

    def _public_settings(self) -> PublicSettings:
        """The conversation's settings revision, loaded by id (content-addressed: deterministic)."""
        if self._settings is None or self._settings.revision != self.settings_revision:
            with workflow.unsafe.sandbox_unrestricted():
                self._settings = registry.load_settings(workflow.info().task_queue, self.settings_revision)
        return self._settings

    def _flows_of_interest(self) -> list[str]:
        assert self.state is not None
        names = {self.state.flow, *(frame.flow for frame in self.state.stack)}
        current = self.flows.get(self.state.flow, self.state.revision)
        if current is not None:
            names |= {s.action.flow for s in current.steps.values() if isinstance(s.action, FlowJumpAction)}
        return sorted(names)

    # -- commands -----------------------------------------------------------------------

    def _execute(self, command: Command) -> None:
        if isinstance(command, SendText):
            self._queue_delivery(command.text, command.choices, command.sender, command.meta)
        elif isinstance(command, StartTimer):
            due = workflow.now() + timedelta(milliseconds=command.delay_ms)
            self.timers[command.timer_id] = due.isoformat()
            self.timer_tasks[command.timer_id] = asyncio.create_task(
                self._timer(command.timer_id, command.delay_ms / 1000)
            )
        elif isinstance(command, CancelTimer):
            self.timers.pop(command.timer_id, None)
            task = self.timer_tasks.pop(command.timer_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(command, CallAI):
            self.calls.add(self._spawn(self._call_ai(command)))
        elif isinstance(command, CallHttp):
            self.calls.add(self._spawn(self._call_http(command)))
        elif isinstance(command, (StartHandoff, CancelHandoff)):
            kind = "handoff" if isinstance(command, StartHandoff) else "handoff_cancelled"
            self._spawn(self._record(f"{kind}-{self.sent}", "event", command.queue, self._now(), status=kind))
        elif isinstance(command, Fault):
            workflow.logger.warning(
                "flow %s step %s: %s (%s)", command.flow, command.step, command.message, command.code
            )
        elif isinstance(command, EndConversation):
            workflow.logger.info("conversation ended: %s", command.status)
            if workflow.patched(RECORD_END_PATCH):
                # The store marks the conversation ended; the visitor's next message opens a new one.
                self._spawn(
                    self._record(
                        f"end-{self.sent}", "event", command.status, self._now(), status="ended", detail=command.status
                    )
                )

    # -- updates and queries --------------------------------------------------------------

    @workflow.update(name="message")
    def message(self, message: InboundMessage) -> Accepted:
        """Accept a customer's message into the queue (a redelivery is accepted once)."""
        if message.id in self.seen:
            return Accepted(self.input.conversation_id, message.id, duplicate=True)
        self.seen[message.id] = None
        while len(self.seen) > SEEN_LIMIT:
            del self.seen[next(iter(self.seen))]
        body = {
            "id": message.id,
            "text": message.text,
            "channel": message.channel,
            "flags": {},
            "meta": dict(message.meta),
        }
        self.events.append(
            MessageReceived(message=body, at=self._now(), live=dict(message.live), settings=message.settings)
        )
        return Accepted(self.input.conversation_id, message.id)

    @message.validator
    def _check_message(self, message: InboundMessage) -> None:
        if not message.id or not isinstance(message.text, str) or not message.channel:
            raise ValueError("a message needs an id, a text and a channel")
        if len(message.text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"message is longer than {MAX_MESSAGE_CHARS} characters")
        if self.state is not None and self.state.ended:
            raise ApplicationError("the conversation has ended", type=ENDED_ERROR)

    @workflow.update(name="agent")
    def agent(self, action: AgentAction) -> dict[str, Any]:
        """An agent accepts, replies to, resolves or transfers a handed-off conversation."""
        now = self._now()
        if action.action == "accept":
            self.events.append(AgentAccepted(action.agent, now))
        elif action.action == "reply":
            self.events.append(AgentMessage(action.agent, action.text, now))
        elif action.action == "resolve":
            self.events.append(AgentResolved(action.agent, now))
        else:  # transfer: the hand-off stays open on another queue
            assert self.state is not None and self.state.handoff is not None
            self.state.handoff["queue"] = action.queue
            self._spawn(self._record(f"transfer-{self.sent}", "event", action.queue, now, status="handoff"))
        return {"accepted": True}

    @agent.validator
    def _check_agent(self, action: AgentAction) -> None:
        if action.action not in AGENT_ACTIONS:
            raise ValueError(f"unknown agent action {action.action!r}; use one of {sorted(AGENT_ACTIONS)}")
        if not action.agent:
            raise ValueError("the agent is missing")
        if self.state is None or self.state.status != "handoff":
            raise ValueError("the conversation is not handed off to an agent")
        if action.action == "reply" and not action.text.strip():
            raise ValueError("a reply needs text")
        if action.action == "transfer" and not action.queue:
            raise ValueError("a transfer needs a queue")

    @workflow.update(name="close")
    def close(self, request: CloseRequest) -> dict[str, Any]:
        """Close the conversation from outside (API, agent console)."""
        self.events.append(CloseRequested(request.status or "closed", self._now()))
        return {"accepted": True}

    @close.validator
    def _check_close(self, request: CloseRequest) -> None:
        if self.state is not None and self.state.ended:
            raise ValueError("the conversation has already ended")

    @workflow.query(name="state")
    def query_state(self) -> StateView:
        """Current step, status, revision and variables (never secrets: none are in state)."""
        view = self.state.public_view() if self.state else {}
        idle = not (self.events or self.handling or self.in_flight or self.outbox or self.delivering)
        return StateView(self.input.conversation_id, view, dict(self.timers), self.in_flight, idle)

    # -- helpers ------------------------------------------------------------------------------

    def _flow(self, name: str, revision: str) -> CompiledFlow:
        flow = self.flows.get(name, revision)
        if flow is None:  # pragma: no cover - get() raises rather than return None for a revision
            raise ApplicationError(f"flow {name} revision {revision} is not available", non_retryable=True)
        return flow

    def _should_continue_as_new(self, handled: int) -> bool:
        assert self.state is not None
        if self.state.ended:
            return False
        return handled >= self.input.max_events_per_run or workflow.info().is_continue_as_new_suggested()

    async def _quiesce(self, outbox: asyncio.Task[None]) -> None:
        """Let in-flight work finish so that nothing is lost when the run is replaced."""
        await workflow.wait_condition(lambda: self.in_flight == 0 and not self.outbox and not self.delivering)
        await workflow.wait_condition(workflow.all_handlers_finished)
        outbox.cancel()
        for task in self.timer_tasks.values():
            task.cancel()

    def _carry_over(self) -> ConversationInput:
        assert self.state is not None
        return ConversationInput(
            conversation_id=self.input.conversation_id,
            flow=self.state.flow,
            revision=self.state.revision,
            channel=self.input.channel,
            contact=self.state.contact,
            state=self.state.to_dict(),
            seen=list(self.seen),
            timers=dict(self.timers),
            backlog=[to_dict(e) for e in self.events],
            sent=self.sent,
            live=dict(self.flows.live),
            max_events_per_run=self.input.max_events_per_run,
            node_pickup_seconds=self.input.node_pickup_seconds,
            clock_offset_ms=self.input.clock_offset_ms,
            settings=self.settings_revision,
        )
