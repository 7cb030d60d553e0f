"""What each step kind does when entered and when its awaited thing arrives.

Every method returns the name of the step to run next, or ``None`` when the
conversation must wait (or has ended). :class:`StepRunner` is the base of the
interpreter's per-event run; it touches nothing but the state copy it was given.
The shared machinery (send, set, fail, end, timers) is in :mod:`engine.flow.steps_base`.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from engine.flow import expr
from engine.flow.ai_context import ai_history, choose_context
from engine.flow.context import AI_CONTEXT_IN_WORKFLOW, NEVER_SILENT
from engine.flow.events import (
    AIFailed,
    AIResult,
    CallAI,
    CallFailure,
    CallHttp,
    CancelTimer,
    HttpFailed,
    HttpResult,
    LogEvent,
    SendText,
    StartHandoff,
)
from engine.flow.model import (
    CSAT_CHOICES,
    AIAction,
    AskAction,
    ClassifyAction,
    CsatAction,
    EndAction,
    FlowJumpAction,
    HandoffAction,
    HttpAction,
    Step,
    StepKind,
    SwitchAction,
    WaitAction,
)
from engine.flow.state import Frame, Pending
from engine.flow.steps_base import Next, RunnerBase
from engine.flow.textmatch import KeywordClassifier


@lru_cache(maxsize=256)
def _classifier(intents: tuple[tuple[str, tuple[str, ...]], ...]) -> KeywordClassifier:
    return KeywordClassifier(dict(intents))


#: A numbered list's entry as a customer types it: ``2``, ``2.``, ``2)``, ``2、``.
_CHOICE_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)、．]?\s*$")


def match_choice(answer: str, choices: tuple[str, ...], pressed: str | None = None) -> str | None:
    """The choice an answer picks: the button pressed, its text (any case), or its number in the list.

    Channels without buttons show choices as a numbered list (engine/channels/degrade.py),
    so ``2`` or ``2.`` is the second choice.
    """
    if pressed is not None and pressed in choices:
        return pressed
    text = answer.strip()
    for choice in choices:
        if text.casefold() == choice.casefold():
            return choice
    number = _CHOICE_NUMBER.match(text)
    if number is not None and 1 <= int(number.group(1)) <= len(choices):
        return choices[int(number.group(1)) - 1]
    return None


class StepRunner(RunnerBase):
    """What each step kind does when entered and when its awaited thing arrives."""

    # -- entering a step ----------------------------------------------------------------

    def enter(self, step: Step) -> Next:
        if step.say or step.say_template is not None or step.say_image is not None:
            template = self.vendor_template(step.say_template) if step.say_template is not None else None
            image = self.render(step.say_image).strip() if step.say_image is not None else ""
            images = ({"kind": "image", "url": image},) if image else ()
            self.send(self.render(step.say or ""), step.name, template=template, attachments=images)
        action = step.action
        if isinstance(action, AskAction):
            self.state.attempts = 0
            self.send(self.render(action.prompt), step.name, choices=action.choices)
            return self.await_message(step)
        if isinstance(action, WaitAction):
            if action.for_message:
                return self.await_message(step)
            assert action.duration_ms is not None
            self.state.pending = Pending("timer", step.name, timer_id=self.start_timer(step, action.duration_ms))
            return None
        if isinstance(action, SwitchAction):
            return self.enter_switch(step, action)
        if isinstance(action, AIAction):
            return self.call_ai(step, action.chain, "reply", self.ai_text())
        if isinstance(action, ClassifyAction):
            return self.enter_classify(step, action)
        if isinstance(action, HttpAction):
            return self.call_http(step, action)
        if isinstance(action, HandoffAction):
            return self.enter_handoff(step, action)
        if isinstance(action, CsatAction):
            question = self.render(action.question) if action.question is not None else None
            text = question or self.ctx.settings.message("csat_question", self.language())
            self.send(text, step.name, choices=CSAT_CHOICES)
            return self.await_message(step)
        if isinstance(action, FlowJumpAction):
            return self.jump(step, action, returns=step.kind is StepKind.CALL)
        if isinstance(action, EndAction):
            self.apply_set(step)
            return self.end_flow(action.status)
        return self.complete(step)

    def message_text(self) -> str:
        return str((self.state.message or {}).get("text", ""))

    def ai_text(self) -> str:
        """What AI providers get of the message: ``ai_text`` when a processor redacted it for them."""
        message = self.state.message or {}
        return str(message.get("ai_text") or message.get("text", ""))

    def await_message(self, step: Step) -> Next:
        timer = self.start_timer(step, step.timeout_ms) if step.timeout_ms else None
        self.state.pending = Pending("message", step.name, timer_id=timer)
        if self.state.inbox:
            return self.deliver_message(step)
        return None

    def deliver_message(self, step: Step) -> Next:
        """Hand the oldest queued message to the waiting ``wait``/``ask`` step."""
        message = self.state.inbox.pop(0)
        self.state.message = message
        self.state.steps_since_input = 0
        pending = self.state.pending
        if pending is not None and pending.timer_id is not None:
            self.emit(CancelTimer(pending.timer_id))
        self.state.pending = None
        if isinstance(step.action, AskAction):
            action = step.action
            return self.attempt(step, lambda: self.check_answer(step, action))
        if isinstance(step.action, CsatAction):
            csat = step.action
            return self.attempt(step, lambda: self.rated(step, csat))
        return self.attempt(step, lambda: self.complete(step))

    def rated(self, step: Step, action: CsatAction) -> Next:
        """A ``csat`` step's answer: a rating is logged (with the agent it rates) and thanked for."""
        pressed = (self.state.message or {}).get("choice")
        choice = match_choice(self.message_text(), CSAT_CHOICES, pressed if isinstance(pressed, str) else None)
        rating = int(choice) if choice is not None else None
        if step.save_as:
            self.state.vars[step.save_as] = rating
        if rating is None:
            self.note(step.name, "not a rating; the flow goes on without one")
            return self.complete(step)
        last = self.state.last_handoff or {}
        meta = {"rating": rating, "agent": last.get("agent"), "queue": last.get("queue") or None}
        self.emit(LogEvent("csat", str(rating), "customer", meta, id=self.state.next_id("csat")))
        thanks = self.render(action.thanks) if action.thanks is not None else None
        self.send(
            thanks if thanks is not None else self.ctx.settings.message("csat_thanks", self.language()), step.name
        )
        return self.complete(step)

    def check_answer(self, step: Step, action: AskAction) -> Next:
        answer = self.message_text().strip()
        self.state.answer = answer
        value: str | None = answer
        if action.expect is not None:
            value = answer if expr.is_truthy(expr.evaluate(action.expect, self.scope())) else None
        elif action.choices:
            pressed = (self.state.message or {}).get("choice")
            value = match_choice(answer, action.choices, pressed if isinstance(pressed, str) else None)
        if value is not None:
            if step.save_as:
                self.state.vars[step.save_as] = value
            self.state.attempts = 0
            return self.complete(step)
        self.state.attempts += 1
        self.note(step.name, f"answer rejected ({self.state.attempts} of {action.max_attempts} attempts)")
        if self.state.attempts >= action.max_attempts:
            self.state.attempts = 0
            if action.on_fail:
                return action.on_fail
            return self.fail(step, "invalid_answer", f"no valid answer after {action.max_attempts} attempts")
        self.send(self.render(action.retry_prompt or action.prompt), step.name, choices=action.choices)
        return self.await_message(step)

    def enter_switch(self, step: Step, action: SwitchAction) -> Next:
        for case in action.cases:
            if expr.is_truthy(expr.evaluate(case.condition, self.scope())):
                self.apply_set(step)
                return case.goto
        if action.default is not None:
            self.apply_set(step)
            return action.default
        return self.complete(step)

    def enter_classify(self, step: Step, action: ClassifyAction) -> Next:
        text = self.ai_text()
        if action.text is not None:
            text = str(expr.evaluate(action.text, self.scope()) or "")
        if action.chain is not None:
            return self.call_ai(step, action.chain, "classify", text, intents=action.intents)
        intent, score = _classifier(action.intents).classify(text)
        self.note(step.name, f"intent {intent!r} score {score:.2f}")
        return self.route_intent(step, action, intent if score >= action.min_confidence else None)

    def route_intent(self, step: Step, action: ClassifyAction, intent: str | None) -> Next:
        if intent not in {name for name, _ in action.intents}:
            intent = None
        self.state.intent = intent
        if step.save_as:
            self.state.vars[step.save_as] = intent
        target = dict(action.routes).get(intent) if intent else None
        if target is None:
            target = action.other
        if target is not None:
            self.apply_set(step)
            return target
        return self.complete(step)

    def call_ai(
        self,
        step: Step,
        chain_name: str,
        purpose: str,
        text: str,
        intents: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> Next:
        chain = self.flow.chains[chain_name]
        call_id = self.state.next_id("ai")
        history: tuple[dict[str, str], ...] = ()
        context: tuple[dict[str, str], ...] = ()
        if not self.ctx.has(AI_CONTEXT_IN_WORKFLOW):
            history = ai_history(self.state.transcript)
        elif purpose != "classify":  # an intent is told from the message alone
            context = choose_context(self.state.transcript, text, chain.context)
        self.emit(
            CallAI(
                call_id=call_id,
                step=step.name,
                flow=self.state.flow,
                revision=self.state.revision,
                chain=chain_name,
                text=text,
                system=self.render(chain.system) if chain.system else None,
                history=history,
                purpose=purpose,
                intents=intents,
                timeout_ms=step.timeout_ms,
                retries=step.retries,
                sessions=dict(self.state.ai_sessions),
                context=context,
            )
        )
        self.state.pending = Pending("ai", step.name, call_id=call_id)
        return None

    def ai_finished(self, step: Step, event: AIResult | AIFailed) -> Next:
        if isinstance(event, AIFailed):
            self.state.last_ai = {"error": event.reason, "detail": event.detail}
            if event.reason == CallFailure.TIMEOUT and step.on_timeout:
                return step.on_timeout
            return self.fail(step, f"ai_{event.reason}", event.detail or f"AI chain failed ({event.reason})")
        self.state.last_ai = {"text": event.text, "confidence": event.confidence, "provider": event.provider}
        self.state.ai_sessions.update(event.sessions)
        action = step.action
        if isinstance(action, ClassifyAction):
            return self.attempt(step, lambda: self.route_intent(step, action, event.text.strip()))
        if isinstance(action, AIAction) and action.send:
            self.send(event.text, step.name, meta={"ai": _provenance(event)})
        if step.save_as:
            self.state.vars[step.save_as] = event.text
        return self.attempt(step, lambda: self.complete(step))

    def call_http(self, step: Step, action: HttpAction) -> Next:
        scope = self.scope(secrets=True)

        def render(template: str) -> str:
            return expr.render(template, scope)

        call_id = self.state.next_id("http")
        self.emit(
            CallHttp(
                call_id=call_id,
                step=step.name,
                method=action.method,
                url=render(action.url),
                headers=tuple((k, render(v)) for k, v in action.headers),
                query=tuple((k, render(v)) for k, v in action.query),
                json_body=expr.map_strings(action.json_body, render) if action.has_json else None,
                has_json=action.has_json,
                body=render(action.body) if action.body is not None else None,
                timeout_ms=step.timeout_ms,
                retries=step.retries,
            )
        )
        self.state.pending = Pending("http", step.name, call_id=call_id)
        return None

    def http_finished(self, step: Step, event: HttpResult | HttpFailed) -> Next:
        if isinstance(event, HttpFailed):
            self.state.last_http = {"error": event.reason, "detail": event.detail}
            if event.reason == CallFailure.TIMEOUT and step.on_timeout:
                return step.on_timeout
            return self.fail(step, f"http_{event.reason}", event.detail or f"HTTP call failed ({event.reason})")
        self.state.last_http = {"status": event.status, "body": event.body}
        if not 200 <= event.status < 300:
            return self.fail(step, "http_status", f"HTTP {event.status} from step {step.name!r}")
        if step.save_as:
            self.state.vars[step.save_as] = event.body
        return self.attempt(step, lambda: self.complete(step))

    def enter_handoff(self, step: Step, action: HandoffAction) -> Next:
        note = self.render(action.note) if action.note else None
        self.emit(StartHandoff(queue=action.queue, step=step.name, note=note, priority=action.priority))
        if self.ctx.has(NEVER_SILENT) and not any(isinstance(c, SendText) for c in self.commands):
            # The customer learns at once that a person is coming, unless the flow just said so.
            self.send(self.ctx.settings.message("handoff", self.language()).replace("{queue}", action.queue), step.name)
        self.state.status = "handoff"
        # Messages already queued were written to whoever answers next: the agent.
        held, self.state.inbox = self.state.inbox, []
        self.state.handoff = {"queue": action.queue, "step": step.name, "held": held}
        timeout = action.timeout_ms or step.timeout_ms
        timer = self.start_timer(step, timeout) if timeout else None
        self.state.pending = Pending("agent", step.name, timer_id=timer)
        return None

    def jump(self, step: Step, action: FlowJumpAction, *, returns: bool) -> Next:
        target = self.ctx.flows.get(action.flow)
        if target is None:
            return self.fail(step, "unknown_flow", f"flow {action.flow!r} is not deployed")
        scope = self.scope()
        given = {
            op.var: expr.evaluate(op.expression, scope) if op.expression else op.literal for op in action.with_vars
        }
        self.note(step.name, f"{'call' if returns else 'goto_flow'} {target.name}")
        if returns:
            self.state.stack.append(Frame(self.state.flow, self.state.revision, step.name, self.state.vars))
        else:
            self.apply_set(step)
            self.state.stack.clear()
        self.state.flow, self.state.revision = target.name, target.revision
        self.state.vars = {**copy.deepcopy(dict(target.vars)), **given}
        return target.start


def _provenance(event: AIResult) -> dict[str, Any]:
    """What the log keeps about an AI answer: who gave it, how sure, and every attempt."""
    return {"provider": event.provider, "confidence": event.confidence, "attempts": list(event.attempts)}
