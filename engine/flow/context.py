"""What the interpreter needs besides state and event: flows, public settings, limits.

All of it is static configuration, so :func:`engine.flow.interpret.advance` stays
a pure function of (context, state, event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.errors import ExpressionError
from engine.flow import expr
from engine.flow.calendar import BusinessCalendar
from engine.flow.model import CompiledFlow
from engine.flow.state import ConversationState


class FlowResolver(Protocol):
    """Finds compiled flows by id (and revision, for conversations pinned to one)."""

    def get(self, name: str, revision: str | None = None) -> CompiledFlow | None: ...


class FlowSet:
    """An in-memory :class:`FlowResolver` holding every revision it was given."""

    def __init__(self, flows: Mapping[str, CompiledFlow] | list[CompiledFlow] | None = None) -> None:
        self._latest: dict[str, CompiledFlow] = {}
        self._revisions: dict[tuple[str, str], CompiledFlow] = {}
        for flow in (flows or {}).values() if isinstance(flows, Mapping) else flows or []:
            self.add(flow)

    def add(self, flow: CompiledFlow) -> None:
        self._latest[flow.name] = flow
        self._revisions[(flow.name, flow.revision)] = flow

    def get(self, name: str, revision: str | None = None) -> CompiledFlow | None:
        if revision is None:
            return self._latest.get(name)
        return self._revisions.get((name, revision))

    def names(self) -> list[str]:
        return sorted(self._latest)


@dataclass(frozen=True)
class FlowSettings:
    """The public part of settings that flows may read (never secrets)."""

    brand: str = "Flowdesk"
    values: Mapping[str, Any] = field(default_factory=dict)
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    #: what Flowdesk itself says (``messages.<name>.<language>``), over SYSTEM_MESSAGES
    messages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def scope(self) -> dict[str, Any]:
        return {"brand": self.brand, **self.values}

    def message(self, name: str, language: str) -> str:
        """System message ``name`` in ``language`` (a code such as ``zh-CN``), else in English."""
        texts = {**SYSTEM_MESSAGES[name], **self.messages.get(name, {})}
        base = language.split("-", maxsplit=1)[0].lower()
        return texts.get(language) or texts.get(base) or texts.get("en") or next(iter(texts.values()))


#: The defaults of ``messages:`` in the settings, in English and Chinese.
SYSTEM_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "failure": {
        "en": "Sorry, something went wrong on our side and I can't continue this chat. "
        "Please write to us again in a moment.",
        "zh": "抱歉，我们这边出了点问题，无法继续本次对话。请稍后再联系我们。",
    },
    "handoff": {
        "en": "You're in the queue for {queue}. A colleague will be with you as soon as possible.",
        "zh": "您已进入{queue}的排队，客服会尽快为您服务。",
    },
    "agent_joined": {
        "en": "{name} joined the conversation.",
        "zh": "{name} 已加入对话。",
    },
    "queue_position": {
        "en": "You are number {position} in the queue.",
        "zh": "您当前排在第 {position} 位。",
    },
    "nobody_available": {
        "en": "Sorry, nobody is available to help you right now.",
        "zh": "抱歉，目前没有客服可以为您服务。",
    },
    "csat_question": {
        "en": "How would you rate this conversation, from 1 (poor) to 5 (excellent)?",
        "zh": "请为本次服务打分：1（很差）到 5（很好）。",
    },
    "csat_thanks": {
        "en": "Thank you for your rating!",
        "zh": "感谢您的评价！",
    },
}


@dataclass(frozen=True)
class Limits:
    """Guards against flows that would run away."""

    #: steps run without new input from the customer or an agent before it is a fault
    max_steps_per_turn: int = 100
    #: longest text an `ask` or `say` may send
    max_text_chars: int = 10_000


#: The AI call's context turns are chosen by the interpreter (``CallAI.context``), not by
#: the activity from the whole transcript (``CallAI.history``).
AI_CONTEXT_IN_WORKFLOW = "fd-2026-11-ai-context-in-workflow"
#: Interpreter changes released since the first version, oldest first. A conversation
#: that started before one replays without it (``engine.runtime.patches``); everything
#: else (new conversations, ``flowdesk try``, ``test`` and ``chat``) runs with all of them.
INTERPRETER_FEATURES: tuple[str, ...] = (AI_CONTEXT_IN_WORKFLOW, "fd-2026-12-never-silent", "fd-2026-12-people")
#: A conversation that fails says so (``messages.failure``), and a hand-off in a turn where
#: the flow said nothing tells the customer they are queued (``messages.handoff``).
NEVER_SILENT = INTERPRETER_FEATURES[1]
#: People work hand-offs: an agent who takes one is announced (``messages.agent_joined``) and
#: logged (``assigned``), a reply from nobody's hand-off claims it and carries the agent's name,
#: a transfer to a queue releases the claim and waits again, a resolve is logged and resumes a
#: reopened flow where it waited; notes, labels, snoozes, queue positions, "nobody available".
PEOPLE = INTERPRETER_FEATURES[2]


@dataclass(frozen=True)
class InterpreterContext:
    """Static inputs of the interpreter."""

    flows: FlowResolver
    settings: FlowSettings = field(default_factory=FlowSettings)
    limits: Limits = field(default_factory=Limits)
    #: interpreter changes this conversation has (see engine.runtime.patches)
    features: frozenset[str] = frozenset(INTERPRETER_FEATURES)

    def has(self, feature: str) -> bool:
        """Whether a guarded interpreter change applies to this conversation."""
        return feature in self.features


def build_scope(ctx: InterpreterContext, state: ConversationState, *, secrets: bool = False) -> dict[str, Any]:
    """Names visible to expressions and templates for this conversation, now."""
    now = datetime.fromisoformat(state.clock)

    def business_hours(name: str) -> bool:
        calendar = ctx.settings.calendars.get(name)
        if calendar is None:
            known = ", ".join(sorted(ctx.settings.calendars)) or "none configured"
            raise ExpressionError(f"business_hours({name!r}): no such calendar (known: {known})")
        return calendar.is_open(now)

    def transcript(last: int = 10) -> str:
        turns = state.transcript[-max(0, int(last)) :] if last else []
        return "\n".join(f"{t['role']}: {t['text']}" for t in turns)

    scope: dict[str, Any] = {
        "message": state.message or {},
        "answer": state.answer,
        "contact": state.contact,
        "conversation": {**state.conversation, "flow": state.flow, "status": state.status},
        "vars": state.vars,
        "settings": ctx.settings.scope(),
        "now": now,
        "ai": state.last_ai or {},
        "http": state.last_http or {},
        "intent": state.intent,
        "business_hours": business_hours,
        "transcript": transcript,
    }
    if secrets:
        scope["secret"] = _secret
    return scope


def _secret(name: str) -> str:
    # A marker, not the value: activities substitute it, so no secret enters history.
    return expr.secret_marker(str(name))
