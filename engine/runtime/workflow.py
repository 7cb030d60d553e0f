"""ConversationWorkflow: one durable entity workflow per conversation.

The workflow is thin: it queues events (messages, agent actions, results,
timers), feeds them one at a time to the pure interpreter, and carries out the
commands it returns — activities for AI, HTTP and the message log
(:mod:`engine.runtime.effects`), replies through the run's
:class:`~engine.runtime.outbox.Outbox`, workflow timers for waits, a local
activity for the inbound pipeline. All step semantics live in
:mod:`engine.flow.interpret`; what the run carries into the next one is its
:class:`~engine.runtime.run_state.RunState`, the revisions it runs on and follows
are its :class:`~engine.runtime.pinned.Revisions`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from engine.flow.events import (
        AgentAccepted,
        AgentLabelled,
        AgentMessage,
        AgentNoted,
        AgentReopened,
        AgentResolved,
        AgentSnoozed,
        AgentTransferred,
        CallAI,
        CallHttp,
        CancelHandoff,
        CancelTimer,
        CloseRequested,
        Command,
        EndConversation,
        Event,
        Fault,
        LogEvent,
        MessageReceived,
        NobodyAvailable,
        QueuePosition,
        SendText,
        StartHandoff,
        StartTimer,
        TimerFired,
        TransferHandoff,
        customer_message,
    )
    from engine.flow.interpret import AGENT_EVENTS, advance, begin
    from engine.flow.public_settings import interpreter_context
    from engine.flow.state import ConversationState
    from engine.runtime import effects
    from engine.runtime.activities import ConversationActivities
    from engine.runtime.effects import LogScope
    from engine.runtime.failures import ACTIVITY_FAILURES, Failure, failure_text
    from engine.runtime.observe import count_steps
    from engine.runtime.outbox import Outbox
    from engine.runtime.patches import AGENT_CLAIMS, AGENT_TRANSFER_EVENT, INTERPRETER_PATCHES, RECORD_END
    from engine.runtime.pinned import Revisions
    from engine.runtime.run_state import RunState
    from engine.runtime.types import (
        Accepted,
        ActionAccepted,
        AgentAction,
        CloseRequest,
        ConversationInput,
        InboundMessage,
        PrepareInput,
        StateView,
        agent_action_problem,
    )

#: The inbound pipeline is local and fast; a few quick attempts.
PREPARE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)

MAX_MESSAGE_CHARS = 20_000
SEEN_LIMIT = 1000


def _ends_handoff(event: Event) -> bool:
    """An agent event that gives the conversation back to the bot."""
    return isinstance(event, AgentResolved) or (isinstance(event, NobodyAvailable) and event.fall_through)


def _refused(reason: str) -> ApplicationError:
    """An agent action the conversation cannot take now (the client raises AgentActionRefused)."""
    return ApplicationError(reason, type=Failure.AGENT_ACTION_REFUSED, non_retryable=True)


@workflow.defn(name="Conversation")
class ConversationWorkflow:
    """Drives one conversation's flow; see the module docstring."""

    @workflow.init
    def __init__(self, data: ConversationInput) -> None:
        self.input = data
        #: everything the run changes and carries into the next run (continue-as-new)
        self.run_state = RunState.of(data)
        #: the flow and settings revisions the conversation runs on
        self.revisions = Revisions(self.run_state)
        #: AI calls this run answered in workflow code (see Outbox._only_own_events)
        self.answered_here: set[str] = set()
        self.outbox = Outbox(self.run_state, data, now=self._now, answered_here=self.answered_here)
        self.timer_tasks: dict[str, asyncio.Task[None]] = {}
        #: the loop is handling an event (a prepare activity may be running for it)
        self.handling = False
        #: tasks spawned for commands that have not finished (calls, log entries)
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        #: the AI and HTTP calls among them: nobody is left to answer once the conversation ends
        self.calls: set[asyncio.Task[None]] = set()

    # -- the loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, data: ConversationInput) -> dict[str, Any]:
        run = self.run_state
        self.revisions.flows.live.setdefault(data.flow, data.revision)
        if run.state is None:
            flow = self.revisions.flow(data.flow, data.revision)
            run.state = begin(
                flow,
                conversation={"id": data.conversation_id, "channel": data.channel, "started_at": self._now()},
                contact=data.contact,
                at=self._now(),
                vars=data.vars,
            )
        for timer_id, due in run.timers.items():
            delay = max(0.0, (datetime.fromisoformat(due) - workflow.now()).total_seconds())
            self.timer_tasks[timer_id] = asyncio.create_task(self._timer(timer_id, delay))
        outbox = asyncio.create_task(self.outbox.deliver_forever())
        handled = 0
        while True:
            await workflow.wait_condition(lambda: bool(run.events) or (run.state is not None and run.state.ended))
            if not run.events:
                break
            self.handling = True
            await self._handle(run.events.popleft())
            self._settle_holder()
            self.handling = False
            handled += 1
            if self._should_continue_as_new(handled):
                await self._quiesce(outbox)
                workflow.continue_as_new(run.carry_over(self.input))
        # The conversation has ended: its last replies and log entries still go out;
        # AI and HTTP calls still running have nobody left to answer.
        for call in list(self.calls):
            call.cancel()
        await workflow.wait_condition(lambda: self.in_flight == 0 and not self.outbox.busy)
        outbox.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        state = self._state()
        return {"status": state.end_status, "step": state.step}

    async def _handle(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            prepared = await self._prepare(event)
            if prepared is None:
                return
            event = prepared
        features = frozenset(name for name in INTERPRETER_PATCHES if workflow.patched(name))
        ctx = interpreter_context(self.revisions.flows, self.revisions.settings(), features=features)
        outcome = advance(ctx, self._state(), event)
        self.run_state.state = outcome.state
        if not workflow.unsafe.is_replaying():
            count_steps(outcome.trace)
        for command in outcome.commands:
            self._execute(command)

    async def _prepare(self, event: MessageReceived) -> MessageReceived | None:
        """Persist the message, run the inbound pipeline, and move to a new live revision."""
        state = self._state()
        message = event.message
        live = self.revisions.live_from_sender(event, state)
        if live is not None:
            # Nothing for the prepare activity to do: logged, no pipeline, revisions known.
            self.revisions.follow_live(live)
            self.revisions.follow_settings(event.settings)
            return event
        try:
            prepared = await workflow.execute_local_activity_method(
                ConversationActivities.prepare,
                PrepareInput(
                    self.input.conversation_id,
                    state.flow,
                    state.revision,
                    message,
                    flows=self.revisions.of_interest(state),
                    key=str(state.contact.get("id") or ""),
                    # A server that logged the message itself says so (one write, not two).
                    record=None
                    if message.get("meta", {}).get("logged")
                    else effects.entry(
                        self._scope(), message["id"], "in", message["text"], event.at, status="received"
                    ),
                ),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=PREPARE_RETRY,
            )
        except ACTIVITY_FAILURES as exc:
            # The customer is not kept waiting on a broken pipeline: the message goes
            # on as written, on the revision the conversation already has.
            workflow.logger.error("inbound pipeline failed, message passed on unprocessed: %s", failure_text(exc))
            return event
        self.revisions.follow_live(prepared.live)
        self.revisions.follow_settings(prepared.settings or event.settings)
        if prepared.blocked is not None:
            text = str(prepared.message.get("text", message["text"]))
            blocked = effects.entry(
                self._scope(), message["id"], "in", text, event.at, status="blocked", detail=prepared.blocked
            )
            await effects.record(blocked)
            if prepared.reply:
                self.outbox.queue(prepared.reply, (), "bot")
            return None
        return MessageReceived(message=prepared.message, at=event.at)

    # -- commands -----------------------------------------------------------------------

    def _execute(self, command: Command) -> None:
        sent = self.run_state.sent  # log entries' ids: unique, stable on replay
        if isinstance(command, SendText):
            self.outbox.queue(
                command.text,
                command.choices,
                command.sender,
                command.meta,
                template=command.template,
                attachments=command.attachments,
            )
        elif isinstance(command, StartTimer):
            due = workflow.now() + timedelta(milliseconds=command.delay_ms)
            self.run_state.timers[command.timer_id] = due.isoformat()
            self.timer_tasks[command.timer_id] = asyncio.create_task(
                self._timer(command.timer_id, command.delay_ms / 1000)
            )
        elif isinstance(command, CancelTimer):
            self.run_state.timers.pop(command.timer_id, None)
            task = self.timer_tasks.pop(command.timer_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(command, CallAI):
            self.calls.add(self._spawn(self._call_ai(command)))
        elif isinstance(command, CallHttp):
            self.calls.add(self._spawn(self._call_http(command)))
        elif isinstance(command, (StartHandoff, CancelHandoff)):
            kind = "handoff" if isinstance(command, StartHandoff) else "handoff_cancelled"
            self._log_event(f"{kind}-{sent}", command.queue, status=kind)
        elif isinstance(command, TransferHandoff):
            # The agent console reads a transfer as the hand-off waiting on its new queue.
            self._log_event(f"transfer-{sent}", command.queue, status="handoff")
        elif isinstance(command, LogEvent):
            # People's actions and ratings: the store derives the inbox row from them.
            self._log_event(
                command.id or f"{command.status}-{sent}",
                command.text,
                status=command.status,
                sender=command.sender,
                meta=command.meta,
            )
        elif isinstance(command, Fault):
            workflow.logger.warning(
                "flow %s step %s: %s (%s)", command.flow, command.step, command.message, command.code
            )
        elif isinstance(command, EndConversation):
            workflow.logger.info("conversation ended: %s", command.status)
            if workflow.patched(RECORD_END):
                # The store marks the conversation ended; the visitor's next message opens a new one.
                self._log_event(f"end-{sent}", command.status, status="ended", detail=command.status)

    async def _call_ai(self, call: CallAI) -> None:
        scope = self._scope()
        event = await effects.call_ai(
            call, flows=self.revisions.flows, scope=scope, now=self._now, answered_here=self.answered_here
        )
        self.run_state.events.append(event)

    async def _call_http(self, call: CallHttp) -> None:
        flow = self._state().flow
        event = await effects.call_http(call, conversation_id=self.input.conversation_id, flow=flow, now=self._now)
        self.run_state.events.append(event)

    async def _timer(self, timer_id: str, seconds: float) -> None:
        if not await effects.timer_elapsed(seconds):
            return
        if self.run_state.timers.pop(timer_id, None) is not None:
            self.timer_tasks.pop(timer_id, None)
            self.run_state.events.append(TimerFired(timer_id=timer_id, at=self._now()))

    def _log_event(
        self,
        message_id: str,
        text: str,
        *,
        status: str,
        detail: str = "",
        at: str | None = None,
        sender: str = "customer",
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Log a hand-off, a person's action or the end in the background (a local activity)."""
        item = effects.entry(
            self._scope(),
            message_id,
            "event",
            text,
            at or self._now(),
            status=status,
            detail=detail,
            sender=sender,
            meta=meta,
        )
        self._spawn(effects.record(item))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` beside the loop; the run ends or continues as new only once it is done."""
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

    # -- updates and queries --------------------------------------------------------------

    @workflow.update(name="message")
    def message(self, message: InboundMessage) -> Accepted:
        """Accept a customer's message into the queue (a redelivery is accepted once)."""
        seen = self.run_state.seen
        if message.id in seen:
            return Accepted(self.input.conversation_id, message.id, duplicate=True)
        seen[message.id] = None
        while len(seen) > SEEN_LIMIT:
            del seen[next(iter(seen))]
        body = customer_message(
            message.id,
            message.text,
            message.channel,
            message.at or self._now(),
            choice=message.choice,
            attachments=message.attachments,
            parts=message.parts,
            meta=message.meta,
        )
        self.run_state.events.append(
            MessageReceived(message=body, at=self._now(), live=dict(message.live), settings=message.settings)
        )
        return Accepted(self.input.conversation_id, message.id)

    @message.validator
    def _check_message(self, message: InboundMessage) -> None:
        if not message.id or not isinstance(message.text, str) or not message.channel:
            raise ValueError("a message needs an id, a text and a channel")
        if len(message.text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"message is longer than {MAX_MESSAGE_CHARS} characters")
        state = self.run_state.state
        if state is not None and state.ended:
            raise ApplicationError("the conversation has ended", type=Failure.CONVERSATION_ENDED)

    @workflow.update(name="agent")
    def agent(self, action: AgentAction) -> ActionAccepted:
        """An agent's (or the dispatcher's) action on a handed-off conversation.

        Synchronous on purpose: the claim is granted here, in ``run_state.holder``, before
        any other update of the same workflow task is validated, so of two takes at the
        same moment the second one's validator sees the first one's holder and refuses.
        """
        now = self._now()
        if not workflow.patched(AGENT_CLAIMS):
            self._agent_before_claims(action, now)
            return ActionAccepted()
        run = self.run_state
        kind = action.action
        event: Event
        if kind in ("accept", "assign"):
            if run.holder == action.agent:
                return ActionAccepted()  # theirs already: taking it twice changes nothing
            run.holder = action.agent
            by = (action.by or "system") if kind == "assign" else ""
            event = AgentAccepted(action.agent, now, action.name, by)
        elif kind == "reply":
            run.holder = run.holder or action.agent
            event = AgentMessage(action.agent, action.text, now, action.name)
        elif kind == "note":
            event = AgentNoted(action.agent, action.text, now, action.name)
        elif kind == "transfer":
            run.holder = action.to_agent
            event = AgentTransferred(action.queue, action.agent, now, action.reason, action.to_agent, action.to_name)
        elif kind == "resolve":
            run.holder = ""
            event = AgentResolved(action.agent, now)
        elif kind == "reopen":
            run.holder = ""
            event = AgentReopened(action.agent, now, action.queue)
        elif kind == "snooze":
            event = AgentSnoozed(action.agent, now, action.until, action.until_reply)
        elif kind == "labels":
            event = AgentLabelled(action.agent, tuple(action.labels), now)
        elif kind == "position":
            event = QueuePosition(action.position, now)
        else:
            event = NobodyAvailable(now, action.fall_through)
        run.events.append(event)
        return ActionAccepted()

    def _agent_before_claims(self, action: AgentAction, now: str) -> None:
        """The update as runs started before AGENT_CLAIMS took it (their histories replay so)."""
        events = self.run_state.events
        if action.action == "accept":
            events.append(AgentAccepted(action.agent, now))
        elif action.action == "reply":
            events.append(AgentMessage(action.agent, action.text, now))
        elif action.action == "resolve":
            events.append(AgentResolved(action.agent, now))
        elif workflow.patched(AGENT_TRANSFER_EVENT):
            # The hand-off stays open on another queue; the interpreter moves it, in turn.
            events.append(AgentTransferred(action.queue, action.agent, now, action.reason))
        else:
            self._transfer_in_handler(action, now)

    def _transfer_in_handler(self, action: AgentAction, now: str) -> None:
        """A transfer as runs started before AGENT_TRANSFER_EVENT made it: at once, beside the interpreter."""
        state = self._state()
        assert state.handoff is not None
        state.handoff["queue"] = action.queue
        self._log_event(f"transfer-{self.run_state.sent}", action.queue, status="handoff", at=now)

    @agent.validator
    def _check_agent(self, action: AgentAction) -> None:
        kind = action.action
        problem = agent_action_problem(action)
        if problem:
            raise ApplicationError(problem, type=Failure.AGENT_ACTION_INVALID, non_retryable=True)
        run = self.run_state
        state = run.state
        if state is None:
            raise _refused("the conversation has not started")
        status = self._status_after_queue(state)
        if status == "ended":
            raise ApplicationError("the conversation has ended", type=Failure.CONVERSATION_ENDED)
        if kind in ("note", "labels"):
            return  # the bot's conversation or a person's, as long as it goes on
        if kind == "reopen":
            if status != "active":
                raise _refused("only a resolved conversation can be reopened (this one is handed off)")
            if not action.queue and not (state.last_handoff or {}).get("queue"):
                raise _refused("the conversation was never handed off: name the queue to reopen it on")
            if state.pending is None or state.pending.wait not in ("message", "timer"):
                raise _refused("the flow is busy (waiting for a call); reopen it once it waits for the customer")
            return
        if status != "handoff":
            raise _refused("the conversation is not handed off to an agent")
        holder = run.holder
        if kind in ("position", "unavailable"):
            if holder:
                raise _refused(f"agent {holder} holds the conversation")
            return
        mine = not holder or holder == action.agent
        if kind == "assign":
            mine = not holder or holder == action.agent or action.force
        elif kind != "accept":
            mine = mine or action.force
        if not mine:
            raise ApplicationError(
                f"agent {holder} holds the conversation", holder, type=Failure.CONVERSATION_TAKEN, non_retryable=True
            )

    def _status_after_queue(self, state: ConversationState) -> str:
        """The hand-off status once the agent actions and closes already queued have been interpreted."""
        status = state.status
        for event in self.run_state.events:
            if isinstance(event, CloseRequested):
                return "ended"
            if isinstance(event, AgentReopened) and status == "active":
                status = "handoff"
            elif status == "handoff" and _ends_handoff(event):
                status = "active"
        return status

    def _settle_holder(self) -> None:
        """After an event: a hand-off that is over has no holder; one the interpreter gave out has one.

        Only when no agent action is still queued: those were decided by the handler already.
        """
        run = self.run_state
        state = run.state
        if state is None or any(isinstance(e, AGENT_EVENTS) for e in run.events):
            return
        if state.status != "handoff" or state.handoff is None:
            run.holder = ""
        elif not run.holder:
            run.holder = str(state.handoff.get("agent") or "")

    @workflow.update(name="close")
    def close(self, request: CloseRequest) -> ActionAccepted:
        """Close the conversation from outside (API, agent console)."""
        self.run_state.events.append(CloseRequested(request.status or "closed", self._now()))
        return ActionAccepted()

    @close.validator
    def _check_close(self, request: CloseRequest) -> None:
        state = self.run_state.state
        if state is not None and state.ended:
            raise ValueError("the conversation has already ended")

    @workflow.query(name="state")
    def query_state(self) -> StateView:
        """Current step, status, revision and variables (never secrets: none are in state)."""
        run = self.run_state
        view = run.state.public_view() if run.state else {}
        idle = not (run.events or self.handling or self.in_flight or self.outbox.busy)
        return StateView(self.input.conversation_id, view, dict(run.timers), self.in_flight, idle)

    # -- helpers ------------------------------------------------------------------------------

    def _state(self) -> ConversationState:
        """The interpreter's state: set once the run has begun (every handler but validators runs after)."""
        state = self.run_state.state
        assert state is not None
        return state

    def _scope(self) -> LogScope:
        return LogScope.of(self.input, self.run_state.state)

    def _now(self) -> str:
        return effects.event_time(self.input.clock_offset_ms)

    def _should_continue_as_new(self, handled: int) -> bool:
        if self._state().ended:
            return False
        return handled >= self.input.max_events_per_run or workflow.info().is_continue_as_new_suggested()

    async def _quiesce(self, outbox: asyncio.Task[None]) -> None:
        """Let in-flight work finish so that nothing is lost when the run is replaced."""
        await workflow.wait_condition(lambda: self.in_flight == 0 and not self.outbox.busy)
        await workflow.wait_condition(workflow.all_handlers_finished)
        outbox.cancel()
        for task in self.timer_tasks.values():
            task.cancel()
