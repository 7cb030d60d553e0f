"""The machinery under every step: sending, setting, failing, ending, timers.

:class:`RunnerBase` holds one mutable state copy and collects commands and a trace;
:class:`engine.flow.steps_run.StepRunner` adds what each step kind does.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from engine.errors import ExpressionError, FlowRuntimeError
from engine.flow import expr
from engine.flow.context import NEVER_SILENT, InterpreterContext, build_scope
from engine.flow.events import Command, EndConversation, Fault, SendText, StartTimer, TraceEntry
from engine.flow.model import CompiledFlow, Step, VendorTemplate
from engine.flow.state import ConversationState

Next = str | None

#: Han characters: a customer who writes them is answered in Chinese by system messages.
_CJK = re.compile("[\u4e00-\u9fff]")


class RunnerBase:
    """Step plumbing over one mutable state copy, collecting commands and a trace."""

    def __init__(self, ctx: InterpreterContext, state: ConversationState) -> None:
        self.ctx = ctx
        self.state = state
        self.commands: list[Command] = []
        self.trace: list[TraceEntry] = []

    @property
    def flow(self) -> CompiledFlow:
        flow = self.ctx.flows.get(self.state.flow, self.state.revision)
        if flow is None:
            raise FlowRuntimeError(
                "flow_unavailable", f"flow {self.state.flow!r} revision {self.state.revision[:12]} is not loaded"
            )
        return flow

    # -- plumbing ---------------------------------------------------------------------

    def emit(self, command: Command) -> None:
        self.commands.append(command)

    def note(self, step: str, note: str) -> None:
        self.trace.append(TraceEntry(self.state.flow, step, "note", note))

    def scope(self, *, secrets: bool = False) -> dict[str, Any]:
        return build_scope(self.ctx, self.state, secrets=secrets)

    def render(self, template: str, *, secrets: bool = False) -> str:
        return expr.render(template, self.scope(secrets=secrets))

    def vendor_template(self, template: VendorTemplate) -> dict[str, Any]:
        """A ``say`` template as the channel sends it: params rendered, the language settled."""
        locale = str((self.state.contact or {}).get("locale") or "")
        return {
            "name": template.name,
            "language": template.language or locale.replace("-", "_") or "en",
            "params": [self.render(param) for param in template.params],
        }

    def send(
        self,
        text: str,
        step: str | None,
        *,
        choices: tuple[str, ...] = (),
        sender: str = "bot",
        meta: dict[str, Any] | None = None,
        template: dict[str, Any] | None = None,
        attachments: tuple[dict[str, str], ...] = (),
    ) -> None:
        text = text.strip()
        if not text and not template and not attachments:
            return  # a template that rendered empty sends nothing rather than a blank bubble
        text = text[: self.ctx.limits.max_text_chars]
        command = SendText(
            text=text,
            step=step,
            choices=choices,
            sender=sender,
            meta=meta or {},
            template=template or {},
            attachments=attachments,
        )
        self.emit(command)
        self.state.record(sender.split(":", maxsplit=1)[0], text, self.state.clock, step=step)

    def go(self, name: Next) -> None:
        """Run steps from ``name`` until the conversation waits or ends."""
        limit = self.ctx.limits.max_steps_per_turn
        while name is not None and not self.state.ended:
            self.state.steps_since_input += 1
            if self.state.steps_since_input > limit:
                self.fault(
                    "runaway",
                    f"{limit} steps ran without waiting for input; stopped before step {name!r}",
                    name,
                )
                self.finish_conversation("failed")
                return
            step = self.flow.steps.get(name)
            if step is None:
                self.fault("unknown_step", f"step {name!r} does not exist in this revision", name)
                self.finish_conversation("failed")
                return
            self.state.step = name
            self.trace.append(TraceEntry(self.state.flow, name, step.kind.value))
            name = self.attempt(step, lambda step=step: self.enter(step))  # type: ignore[misc]

    def attempt(self, step: Step, action: Callable[[], Next]) -> Next:
        """Run ``action``; an expression that fails takes the step's error path."""
        try:
            return action()
        except ExpressionError as exc:
            return self.fail(step, "expression_error", str(exc))

    def fault(self, code: str, message: str, step: str | None) -> None:
        self.emit(Fault(code=code, message=message, step=step, flow=self.state.flow))
        self.note(step or "-", f"fault {code}: {message}")

    def fail(self, step: Step, code: str, message: str) -> Next:
        """A step failed: report it, then take ``on_error`` or end the conversation."""
        self.fault(code, message, step.name)
        if step.on_error:
            return step.on_error
        # Inside a sub-flow, the failure is the `call` step's failure: its caller's
        # `on_error` decides, up the stack, before the conversation itself fails.
        while self.state.stack:
            caller = self.return_to_caller("failed")
            if caller.on_error:
                return caller.on_error
        self.finish_conversation("failed")
        return None

    def timed_out(self, step: Step, code: str, message: str) -> Next:
        if step.on_timeout:
            return step.on_timeout
        if step.on_error:
            return self.fail(step, code, message)
        return self.end_flow("timed_out")

    def apply_set(self, step: Step) -> None:
        for op in step.set:
            if op.expression is None:
                self.state.vars[op.var] = op.literal
            else:
                self.state.vars[op.var] = expr.evaluate(op.expression, self.scope())

    def complete(self, step: Step) -> Next:
        """The step succeeded: apply its ``set`` and move on."""
        self.apply_set(step)
        if step.next is None:
            return self.end_flow("completed")
        return step.next

    def finish_conversation(self, status: str) -> None:
        if status == "failed" and self.ctx.has(NEVER_SILENT):
            # Whatever broke, the customer hears that it did rather than nothing more.
            self.send(self.ctx.settings.message("failure", self.language()), None)
        self.emit(EndConversation(status))
        self.state.status = "ended"
        self.state.end_status = status
        self.state.pending = None

    def language(self) -> str:
        """The customer's language: the contact's, else Chinese when they last wrote in Chinese."""
        contact = self.state.contact
        declared = contact.get("language") or contact.get("locale")
        if isinstance(declared, str) and declared:
            return declared
        said = next((t["text"] for t in reversed(self.state.transcript) if t.get("role") == "user"), "")
        return "zh" if _CJK.search(str(said)) else "en"

    def end_flow(self, status: str) -> Next:
        """End the current flow: return to a caller, or end the conversation."""
        if not self.state.stack:
            self.finish_conversation(status)
            return None
        return self.complete(self.return_to_caller(status))

    def return_to_caller(self, status: str) -> Step:
        """Leave a sub-flow: restore the caller and hand it ``{status, vars}``."""
        frame = self.state.stack.pop()
        result = {"status": status, "vars": self.state.vars}
        self.state.flow, self.state.revision, self.state.vars = frame.flow, frame.revision, frame.vars
        caller = self.flow.steps[frame.step]
        self.state.step = caller.name
        if caller.save_as:
            self.state.vars[caller.save_as] = result
        return caller

    def start_timer(self, step: Step, delay_ms: int) -> str:
        timer_id = self.state.next_id("timer")
        self.emit(StartTimer(timer_id=timer_id, delay_ms=delay_ms, step=step.name))
        return timer_id

    @abstractmethod
    def enter(self, step: Step) -> Next:
        """Run ``step``; returns the next step or None to wait."""
