"""What people (agents, supervisors, the dispatcher) do to a handed-off conversation.

Each action is an interpreter event: what the customer hears (an agent joined, their
place in the queue, nobody is available, an agent's reply with the agent's name), the
log events the store derives the inbox from (``assigned``, ``handoff``, ``note``,
``labels``, ``snoozed``, ``handoff_resolved``, ``reopened``), and where the flow goes
(a resolve continues at the hand-off's ``next``, a reopened conversation resumes where
it waited, "nobody available" with fall-through takes the timeout path).

Who may act is decided before the event is queued, by the workflow's update validator
(one claim wins); by the time an event arrives here it is the conversation's history.
Conversations that started before :data:`~engine.flow.context.PEOPLE` keep the older
behaviour of accept, reply, transfer and resolve (see ``handle_agent_before_people``).
"""

from __future__ import annotations

from typing import Any

from engine.flow.context import PEOPLE
from engine.flow.events import (
    AgentAccepted,
    AgentEvent,
    AgentLabelled,
    AgentMessage,
    AgentNoted,
    AgentReopened,
    AgentResolved,
    AgentSnoozed,
    AgentTransferred,
    CancelHandoff,
    CancelTimer,
    LogEvent,
    NobodyAvailable,
    QueuePosition,
    StartHandoff,
    TransferHandoff,
)
from engine.flow.model import HandoffAction, StepKind, WaitAction
from engine.flow.state import Pending
from engine.flow.steps_run import StepRunner

#: Events that only make sense while the conversation is handed off.
_HANDOFF_ONLY = (
    AgentAccepted,
    AgentMessage,
    AgentResolved,
    AgentTransferred,
    AgentSnoozed,
    QueuePosition,
    NobodyAvailable,
)


#: The sender of what Flowdesk itself tells the customer about people (an agent joined, their
#: place in the queue, nobody available): not the flow's bot, so flow tests (which check the
#: bot's messages) and the inbox (the bot speaking again ends a hand-off) tell them apart.
SYSTEM = "system"


def sender_of(agent: str) -> str:
    """The transcript's sender of an agent: ``agent:<id>``."""
    return f"agent:{agent}"


class PeopleRunner(StepRunner):
    """The hand-off's people events, on top of the step kinds."""

    def log_event(self, status: str, text: str, sender: str = "bot", meta: dict[str, Any] | None = None) -> None:
        """Log a conversation event under an id of its own (two notes in a row are two entries)."""
        self.emit(LogEvent(status, text, sender, meta or {}, id=self.state.next_id(status)))

    def on_agent(self, event: AgentEvent) -> None:
        if not self.ctx.has(PEOPLE):
            self.handle_agent_before_people(event)
            return
        if isinstance(event, AgentNoted):
            self.log_event("note", event.text, sender_of(event.agent), {"name": event.name})
            return
        if isinstance(event, AgentLabelled):
            labels = sorted({str(label) for label in event.labels if str(label).strip()})
            self.state.conversation["labels"] = labels
            self.log_event("labels", ", ".join(labels), sender_of(event.agent), {"labels": labels})
            return
        if isinstance(event, AgentReopened):
            self.reopen(event)
            return
        if self.state.status != "handoff" or self.state.handoff is None:
            self.note("agent", f"{event.kind} while not handed off; ignored")
            return
        assert isinstance(event, _HANDOFF_ONLY)
        self.state.steps_since_input = 0
        handoff = self.state.handoff
        if isinstance(event, AgentAccepted):
            self.take(event.agent, event.name, event.by, event.at)
        elif isinstance(event, AgentMessage):
            if not handoff.get("agent"):
                self.take(event.agent, event.name, "", event.at)
            meta: dict[str, Any] = {"agent_name": event.name or event.agent}
            self.send(event.text, None, sender=sender_of(event.agent), meta=meta)
        elif isinstance(event, AgentTransferred):
            self.transfer(event)
        elif isinstance(event, AgentSnoozed):
            status = "snoozed" if event.until or event.until_reply else "unsnoozed"
            meta = {"until": event.until or None, "until_reply": event.until_reply}
            self.log_event(status, event.until, sender_of(event.agent), meta)
        elif isinstance(event, QueuePosition):
            if not handoff.get("agent"):
                text = self.ctx.settings.message("queue_position", self.language())
                self.send(text.replace("{position}", str(event.position)), self.state.step, sender=SYSTEM)
        elif isinstance(event, NobodyAvailable):
            self.nobody_available(event)
        else:
            self.resolve(event)

    # -- the claim ----------------------------------------------------------------------

    def take(self, agent: str, name: str, by: str, at: str) -> None:
        """``agent`` holds the hand-off: its timeout stops, the customer hears who joined."""
        handoff = self.state.handoff
        assert handoff is not None
        handoff["agent"] = agent
        handoff["held"] = []
        pending = self.state.pending
        if pending is not None and pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
            pending.timer_id = None
        shown = name or agent
        self.state.record("system", f"{agent} joined", at)
        self.log_event("assigned", shown, sender_of(agent), {"by": by or agent})
        joined = self.ctx.settings.message("agent_joined", self.language()).replace("{name}", shown)
        self.send(joined, self.state.step, sender=SYSTEM)

    def transfer(self, event: AgentTransferred) -> None:
        handoff = self.state.handoff
        assert handoff is not None
        if event.to_agent:
            self.take(event.to_agent, event.to_name, event.agent, event.at)
            return
        # To a queue: nobody holds it any more; it waits there, with the hand-off's timeout again.
        previous, handoff["queue"] = handoff.get("queue", ""), event.queue
        handoff.pop("agent", None)
        self.emit(TransferHandoff(event.queue, previous, self.state.step or "", event.agent, event.reason))
        pending = self.state.pending
        step = self.flow.steps.get(pending.step) if pending is not None else None
        if pending is not None and step is not None and pending.timer_id is None:
            timeout = self.handoff_timeout(step.name)
            if timeout:
                pending.timer_id = self.start_timer(step, timeout)

    def handoff_timeout(self, name: str) -> int | None:
        step = self.flow.steps[name]
        action = step.action
        if isinstance(action, HandoffAction):
            return action.timeout_ms or step.timeout_ms
        return None  # a reopened conversation waits at a step that is not a hand-off: no timeout

    # -- the end of a hand-off ------------------------------------------------------------

    def close_handoff(self, agent: str) -> dict[str, Any]:
        """Leave the hand-off: its timer stops, the conversation is the bot's again."""
        handoff = self.state.handoff or {}
        pending = self.state.pending
        if pending is not None and pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
        self.state.last_handoff = {"queue": handoff.get("queue", ""), "agent": handoff.get("agent") or agent or None}
        self.state.status = "active"
        self.state.handoff = None
        self.state.pending = None
        return handoff

    def resolve(self, event: AgentResolved) -> None:
        handoff = self.state.handoff or {}
        self.state.record("system", f"{event.agent} resolved the hand-off", event.at)
        self.log_event("handoff_resolved", handoff.get("queue", ""), sender_of(event.agent))
        self.close_handoff(event.agent)
        resume = handoff.get("resume")
        if resume is not None:
            self.resume(resume)
            return
        step = self.flow.steps[self.state.step or self.flow.start]
        self.go(self.attempt(step, lambda: self.complete(step)))

    def reopen(self, event: AgentReopened) -> None:
        """Hand a resolved conversation off again; what the flow waited for is kept for its resolve."""
        pending = self.state.pending
        if self.state.status != "active" or pending is None or pending.wait not in ("message", "timer"):
            self.note("agent", "reopen while the flow is not waiting for the customer or a timer; ignored")
            return
        queue = event.queue or (self.state.last_handoff or {}).get("queue") or ""
        if pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
        step = pending.step
        resume = {"step": step, "wait": pending.wait}
        self.log_event("reopened", queue, sender_of(event.agent))
        self.emit(StartHandoff(queue=queue, step=step))
        held, self.state.inbox = self.state.inbox, []
        self.state.status = "handoff"
        self.state.handoff = {"queue": queue, "step": step, "held": held, "resume": resume}
        self.state.pending = Pending("agent", step)
        self.state.steps_since_input = 0

    def resume(self, resume: dict[str, Any]) -> None:
        """Wait again for what the flow waited for when it was reopened (its timer starts over)."""
        step = self.flow.steps[resume["step"]]
        self.state.step = step.name
        if resume.get("wait") == "timer" and isinstance(step.action, WaitAction) and step.action.duration_ms:
            timer = self.start_timer(step, step.action.duration_ms)
            self.state.pending = Pending("timer", step.name, timer_id=timer)
            return
        if step.kind in (StepKind.WAIT, StepKind.ASK) or resume.get("wait") == "message":
            self.go(self.await_message(step))
            return
        self.go(self.attempt(step, lambda: self.complete(step)))

    def nobody_available(self, event: NobodyAvailable) -> None:
        handoff = self.state.handoff
        assert handoff is not None
        if handoff.get("agent"):
            return  # someone took it meanwhile: the customer is served
        self.send(self.ctx.settings.message("nobody_available", self.language()), self.state.step, sender=SYSTEM)
        pending = self.state.pending
        if not event.fall_through or pending is None or pending.wait != "agent":
            return
        # As if the hand-off's timer fired: the flow takes its on_timeout path (or its timeout behaviour).
        step = self.flow.steps[pending.step]
        if pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
        self.emit(CancelHandoff(queue=handoff.get("queue", ""), step=step.name))
        self.state.pending = None
        self.state.status = "active"
        self.state.inbox.extend(handoff.get("held", []))
        self.state.handoff = None
        self.state.last_handoff = {"queue": handoff.get("queue", ""), "agent": None}
        self.note(step.name, "nobody available: falls through")
        self.go(self.timed_out(step, "timeout", f"step {step.name!r}: nobody is available"))

    # -- conversations started before PEOPLE ------------------------------------------------

    def handle_agent_before_people(self, event: AgentEvent) -> None:
        """Accept, reply, transfer and resolve as they were before people (replays stay the same)."""
        if self.state.status != "handoff" or self.state.handoff is None:
            self.note("agent", f"{event.kind} while not handed off; ignored")
            return
        handoff = self.state.handoff
        self.state.steps_since_input = 0
        if isinstance(event, AgentAccepted):
            handoff["agent"] = event.agent
            handoff["held"] = []
            pending = self.state.pending
            if pending is not None and pending.timer_id is not None:
                self.emit(CancelTimer(pending.timer_id))
                pending.timer_id = None
            self.state.record("system", f"{event.agent} joined", event.at)
        elif isinstance(event, AgentMessage):
            handoff.setdefault("agent", event.agent)
            self.send(event.text, None, sender=sender_of(event.agent))
        elif isinstance(event, AgentTransferred):
            # The hand-off stays open, on the other queue: its timeout, its held messages
            # and the agent who took it are kept, as they were before transfers were events.
            previous, handoff["queue"] = handoff.get("queue", ""), event.queue
            self.emit(TransferHandoff(event.queue, previous, self.state.step or "", event.agent, event.reason))
        elif isinstance(event, AgentResolved):
            pending = self.state.pending
            if pending is not None and pending.timer_id is not None:
                self.emit(CancelTimer(pending.timer_id))
            self.state.record("system", f"{event.agent} resolved the hand-off", event.at)
            self.state.last_handoff = {"queue": handoff.get("queue", ""), "agent": handoff.get("agent")}
            self.state.status = "active"
            self.state.handoff = None
            self.state.pending = None
            step = self.flow.steps[self.state.step or self.flow.start]
            self.go(self.attempt(step, lambda: self.complete(step)))
        else:
            self.note("agent", f"{event.kind} needs a newer interpreter; ignored")
