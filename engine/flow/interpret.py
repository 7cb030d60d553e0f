"""Pure step semantics: ``advance(context, state, event) -> Outcome(state, commands)``.

Deterministic and free of I/O: the same inputs give the same outputs, so the
Temporal workflow can replay it, and ``flowdesk try``/``flowdesk test`` run the
very same code with scripted AI and HTTP results. Time comes only from events
(``at``); ids come from a counter in the state.

A conversation runs steps until it has to wait — for the customer (``wait``,
``ask``), an agent (``handoff``), a result (``ai``, ``http``) or a timer — or ends.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.flow.context import InterpreterContext
from engine.flow.events import (
    AgentAccepted,
    AgentLabelled,
    AgentMessage,
    AgentNoted,
    AgentReopened,
    AgentResolved,
    AgentSnoozed,
    AgentTransferred,
    AIFailed,
    AIResult,
    CancelHandoff,
    CancelTimer,
    CloseRequested,
    Event,
    HttpFailed,
    HttpResult,
    MessageReceived,
    NobodyAvailable,
    Outcome,
    QueuePosition,
    TimerFired,
)
from engine.flow.model import CompiledFlow, StepKind
from engine.flow.state import ConversationState
from engine.flow.steps_people import PeopleRunner

AGENT_EVENTS = (
    AgentAccepted,
    AgentMessage,
    AgentResolved,
    AgentTransferred,
    AgentNoted,
    AgentLabelled,
    AgentSnoozed,
    AgentReopened,
    QueuePosition,
    NobodyAvailable,
)


def begin(
    flow: CompiledFlow,
    *,
    conversation: dict[str, Any],
    contact: dict[str, Any] | None = None,
    at: str,
    vars: dict[str, Any] | None = None,
) -> ConversationState:
    """A fresh conversation on ``flow``; it starts when its first message arrives."""
    return ConversationState(
        flow=flow.name,
        revision=flow.revision,
        conversation=dict(conversation),
        contact=dict(contact or {}),
        clock=at,
        vars={**copy.deepcopy(dict(flow.vars)), **(vars or {})},
    )


def advance(ctx: InterpreterContext, state: ConversationState, event: Event) -> Outcome:
    """Apply one event; returns the new state (the input is not modified) and commands."""
    run = _Run(ctx, state.copy())
    run.handle(event)
    return Outcome(run.state, run.commands, run.trace)


def adopt_revision(state: ConversationState, flow: CompiledFlow) -> ConversationState | None:
    """Move a conversation to a new revision of its flow, if this is a safe point.

    Safe means: the conversation is on this flow (not inside a sub-flow), waits for
    the customer, and the step it waits at still exists and still waits for a
    message. New variables get their defaults; existing values are kept. Returns
    ``None`` when the conversation must finish on its own revision.
    """
    if state.ended or state.flow != flow.name or state.revision == flow.revision or state.stack:
        return None
    pending = state.pending
    if pending is None or pending.wait != "message" or pending.step not in flow.steps:
        return None
    if flow.steps[pending.step].kind not in (StepKind.WAIT, StepKind.ASK):
        return None
    moved = state.copy()
    moved.revision = flow.revision
    for name, value in copy.deepcopy(dict(flow.vars)).items():
        moved.vars.setdefault(name, value)
    return moved


class _Run(PeopleRunner):
    """One interpreter call: dispatches an event, then runs steps until a wait."""

    def handle(self, event: Event) -> None:
        self.state.clock = max(self.state.clock, event.at)
        if self.state.ended:
            if isinstance(event, MessageReceived):
                self.note("ended", "message after the conversation ended; not processed")
            return
        if isinstance(event, MessageReceived):
            self.on_message(event)
        elif isinstance(event, (AIResult, AIFailed)):
            self.on_ai(event)
        elif isinstance(event, (HttpResult, HttpFailed)):
            self.on_http(event)
        elif isinstance(event, TimerFired):
            self.on_timer(event)
        elif isinstance(event, AGENT_EVENTS):
            self.on_agent(event)
        elif isinstance(event, CloseRequested):
            self.on_close(event)

    # -- customer input ---------------------------------------------------------------

    def on_message(self, event: MessageReceived) -> None:
        message = dict(event.message)
        message.setdefault("text", "")
        message.setdefault("at", event.at)
        # Text redacted for AI (pii_redact, scope: ai) is what later AI calls see of this turn.
        redacted = {"ai_text": str(message["ai_text"])} if message.get("ai_text") else {}
        self.state.record("user", str(message["text"]), event.at, id=message.get("id"), **redacted)
        if self.state.status == "handoff":
            # The agent answers now; if the hand-off times out, the flow still gets these.
            assert self.state.handoff is not None
            self.state.handoff.setdefault("held", []).append(message)
            return
        self.state.inbox.append(message)
        if not self.state.started:
            self.state.started = True
            self.go(self.flow.start)
            return
        pending = self.state.pending
        if pending is not None and pending.wait == "message":
            step = self.flow.steps[pending.step]
            self.go(self.deliver_message(step))

    # -- results ----------------------------------------------------------------------

    def on_ai(self, event: AIResult | AIFailed) -> None:
        pending = self.state.pending
        if pending is None or pending.wait != "ai" or pending.call_id != event.call_id:
            self.note("stale", f"AI result {event.call_id} is not awaited; ignored")
            return
        self.state.pending = None
        step = self.flow.steps[pending.step]
        self.go(self.ai_finished(step, event))

    def on_http(self, event: HttpResult | HttpFailed) -> None:
        pending = self.state.pending
        if pending is None or pending.wait != "http" or pending.call_id != event.call_id:
            self.note("stale", f"HTTP result {event.call_id} is not awaited; ignored")
            return
        self.state.pending = None
        step = self.flow.steps[pending.step]
        self.go(self.http_finished(step, event))

    def on_timer(self, event: TimerFired) -> None:
        pending = self.state.pending
        if pending is None or pending.timer_id != event.timer_id:
            return  # a timer that lost its race: the awaited thing came first
        step = self.flow.steps[pending.step]
        self.state.pending = None
        self.state.steps_since_input = 0  # the flow waited; a paused loop is not a runaway
        if pending.wait == "timer":
            self.go(self.attempt(step, lambda: self.complete(step)))
            return
        if pending.wait == "agent":
            handoff = self.state.handoff or {}
            self.emit(CancelHandoff(queue=handoff.get("queue", ""), step=step.name))
            self.state.status = "active"
            self.state.inbox.extend(handoff.get("held", []))
            self.state.handoff = None
        self.note(step.name, "timed out")
        self.go(self.timed_out(step, "timeout", f"step {step.name!r} timed out"))

    def on_close(self, event: CloseRequested) -> None:
        pending = self.state.pending
        if pending is not None and pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
        if self.state.status == "handoff" and self.state.handoff is not None:
            self.emit(CancelHandoff(queue=self.state.handoff.get("queue", ""), step=self.state.step or ""))
        self.state.stack.clear()
        self.finish_conversation(event.status)


__all__ = ["adopt_revision", "advance", "begin"]
