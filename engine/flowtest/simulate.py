"""Run a conversation in-process, without Temporal: for ``flowdesk try`` and ``test``.

The :class:`Simulator` plays the part of the workflow: it feeds events to the same
pure interpreter, answers ``CallAI``/``CallHttp`` through pluggable responders
(scripted mocks or offline providers), keeps a fake clock and fires timers when
time is advanced. Nothing here sleeps or touches the network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.flow.context import InterpreterContext
from engine.flow.events import (
    AgentAccepted,
    AgentMessage,
    AgentResolved,
    AgentTransferred,
    AIFailed,
    AIResult,
    CallAI,
    CallHttp,
    CancelHandoff,
    CancelTimer,
    Command,
    EndConversation,
    Event,
    Fault,
    HttpFailed,
    HttpResult,
    LogEvent,
    MessageReceived,
    SendText,
    StartHandoff,
    StartTimer,
    TimerFired,
    TraceEntry,
    TransferHandoff,
    customer_message,
)
from engine.flow.interpret import advance, begin
from engine.flow.model import CompiledFlow
from engine.pipeline.runner import Pipelines, message_from_dict, message_to_dict

AIResponder = Callable[[CallAI, str], AIResult | AIFailed]
HttpResponder = Callable[[CallHttp, str], HttpResult | HttpFailed]


@dataclass
class Transcript:
    """What happened, in order, as a person watching the chat would see it."""

    sent: list[SendText] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)
    #: the queues an open hand-off was transferred to, in order
    transfers: list[str] = field(default_factory=list)
    ended: str | None = None
    #: messages a pipeline stage stopped, in or out: "in: <reason>" / "out: <reason>"
    blocked: list[str] = field(default_factory=list)
    #: processors that failed and were passed (on_error: pass)
    pipeline_notes: list[str] = field(default_factory=list)
    #: conversation events the workflow would log (assigned, note, labels, csat...), in order
    events: list[LogEvent] = field(default_factory=list)


class Simulator:
    """Drives one conversation through the interpreter with a fake clock."""

    def __init__(
        self,
        ctx: InterpreterContext,
        flow: CompiledFlow,
        *,
        ai: AIResponder,
        http: HttpResponder,
        contact: Mapping[str, Any] | None = None,
        channel: str = "cli",
        vars: Mapping[str, Any] | None = None,
        start: datetime | None = None,
        conversation_id: str = "sim-1",
        pipelines: Pipelines | None = None,
    ) -> None:
        self.ctx = ctx
        self.pipelines = pipelines or Pipelines()
        self.conversation_id = conversation_id
        self.ai = ai
        self.http = http
        self.now = start or datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        self.state = begin(
            flow,
            conversation={"id": conversation_id, "channel": channel, "started_at": self.now.isoformat()},
            contact=dict(contact or {}),
            at=self.now.isoformat(),
            vars=dict(vars or {}),
        )
        self.timers: dict[str, datetime] = {}
        self.log = Transcript()
        self._queue: deque[Event] = deque()
        self._message_count = 0

    @property
    def at(self) -> str:
        return self.now.isoformat()

    # -- what a person does ----------------------------------------------------------

    def user(self, text: str) -> list[SendText]:
        """The customer sends ``text``; returns the messages sent in reply."""
        self._message_count += 1
        message = customer_message(f"msg-{self._message_count}", text, self.state.conversation["channel"], self.at)
        flow = self.ctx.flows.get(self.state.flow, self.state.revision)
        if flow is not None and flow.inbound:
            result = self.pipelines.run(
                flow, "in", message_from_dict(message), conversation_id=self.conversation_id, now=self.now.timestamp()
            )
            self.log.pipeline_notes.extend(result.notes)
            if result.blocked is not None:
                self.log.blocked.append(f"in: {result.blocked}")
                if not result.reply:
                    return []
                reply = SendText(text=result.reply, step=None)
                self.log.sent.append(reply)
                return [reply]
            message = message_to_dict(result.message, message)
        return self._run(MessageReceived(message=message, at=self.at))

    def elapse(self, milliseconds: int) -> list[SendText]:
        """Let time pass, firing every timer that falls due, in order."""
        until = self.now + timedelta(milliseconds=milliseconds)
        before = len(self.log.sent)
        while True:
            due = sorted((when, tid) for tid, when in self.timers.items() if when <= until)
            if not due:
                break
            when, timer_id = due[0]
            self.now = max(self.now, when)
            del self.timers[timer_id]
            self._run(TimerFired(timer_id=timer_id, at=self.at))
        self.now = until
        return self.log.sent[before:]

    def agent(self, action: str, agent: str = "agent-1", text: str = "") -> list[SendText]:
        """An agent ``accept``s, ``say``s ``text`` or ``resolve``s the hand-off."""
        event: Event
        if action == "accept":
            event = AgentAccepted(agent=agent, at=self.at)
        elif action == "resolve":
            event = AgentResolved(agent=agent, at=self.at)
        elif action == "say":
            event = AgentMessage(agent=agent, text=text, at=self.at)
        else:
            raise ValueError(f"unknown agent action {action!r}: use accept, say or resolve")
        return self._run(event)

    def transfer(self, queue: str, agent: str = "agent-1", reason: str = "") -> list[SendText]:
        """An agent moves the open hand-off to ``queue``, as the agent console's transfer does."""
        return self._run(AgentTransferred(queue=queue, agent=agent, at=self.at, reason=reason))

    def act(self, event: Event) -> list[SendText]:
        """Any event, as the workflow would queue it (the agent console's other actions)."""
        return self._run(event)

    # -- plumbing -------------------------------------------------------------------------

    def _run(self, event: Event) -> list[SendText]:
        before = len(self.log.sent)
        self._queue.append(event)
        while self._queue:
            outcome = advance(self.ctx, self.state, self._queue.popleft())
            self.state = outcome.state
            self.log.trace.extend(outcome.trace)
            for command in outcome.commands:
                self._execute(command)
        return self.log.sent[before:]

    def _execute(self, command: Command) -> None:
        if isinstance(command, SendText):
            self._send(command)
        elif isinstance(command, CallAI):
            self._queue.append(self.ai(command, self.at))
        elif isinstance(command, CallHttp):
            self._queue.append(self.http(command, self.at))
        elif isinstance(command, StartTimer):
            self.timers[command.timer_id] = self.now + timedelta(milliseconds=command.delay_ms)
        elif isinstance(command, CancelTimer):
            self.timers.pop(command.timer_id, None)
        elif isinstance(command, StartHandoff):
            self.log.handoffs.append(command.queue)
        elif isinstance(command, TransferHandoff):
            self.log.transfers.append(command.queue)
        elif isinstance(command, CancelHandoff):
            pass  # the state already says the hand-off is over
        elif isinstance(command, LogEvent):
            self.log.events.append(command)
        elif isinstance(command, EndConversation):
            self.log.ended = command.status
            self.timers.clear()
        elif isinstance(command, Fault):
            self.log.faults.append(command)

    def _send(self, command: SendText) -> None:
        """A reply, after the flow's outbound stages (a blocked one is not sent)."""
        flow = self.ctx.flows.get(self.state.flow, self.state.revision)
        if flow is None or not flow.outbound:
            self.log.sent.append(command)
            return
        message = message_from_dict({"id": f"out-{len(self.log.sent) + 1}", "text": command.text}, "out")
        result = self.pipelines.run(
            flow, "out", message, conversation_id=self.conversation_id, now=self.now.timestamp()
        )
        self.log.pipeline_notes.extend(result.notes)
        if result.blocked is not None:
            self.log.blocked.append(f"out: {result.blocked}")
            return
        self.log.sent.append(replace(command, text=result.message.text))


def flow_dir(flow: CompiledFlow) -> Path:
    """Directory a flow's relative paths (knowledge files) are resolved against."""
    return Path(flow.file).parent if flow.file and not flow.file.startswith("<") else Path.cwd()
