"""Validated flow data -> :class:`CompiledFlow`, and the revision hash.

The revision is the SHA-256 of the flow's canonical JSON (sorted keys, no
whitespace), so reformatting a file or editing comments does not make a new
revision, while any change in behaviour does. ``tests:`` are left out of the hash:
they do not change how a conversation runs. Knowledge files attached to the flow
(engine.flow.knowledge) are covered by their SHA-256, so a revision without any
hashes exactly as it did before knowledge was attached.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from engine.flow.knowledge import knowledge_digests
from engine.flow.model import (
    AIAction,
    AskAction,
    Chain,
    ClassifyAction,
    CompiledFlow,
    ContextSpec,
    CsatAction,
    EndAction,
    FlowJumpAction,
    FlowTest,
    HandoffAction,
    HttpAction,
    NoAction,
    ProviderRef,
    SetOp,
    Stage,
    Step,
    StepKind,
    SwitchAction,
    SwitchCase,
    VendorTemplate,
    WaitAction,
)
from engine.flow.steps import TERMINAL_KINDS, following, kinds_in

_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
DEFAULT_CLASSIFY_CONFIDENCE = 0.5
DEFAULT_MAX_ATTEMPTS = 3


def parse_duration(value: str | int | float | None) -> int | None:
    """``'30m'`` -> 1_800_000 ms; a bare integer is seconds.

    A float with no fraction (``5.0``) passes the schema as an integer (JSON Schema
    says it is one), so it is read as that integer wherever a duration is allowed.
    """
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value * 1000
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def revision_of(data: dict[str, Any], knowledge: Mapping[str, str] | None = None) -> str:
    """Content hash of a flow's behaviour (tests excluded) and of its attached knowledge texts."""
    behaviour: dict[str, Any] = {k: v for k, v in data.items() if k != "tests"}
    if knowledge:
        # Not a key a flow may write (the schema allows none starting with "_"), so no
        # flow without knowledge can hash the same as one with it.
        behaviour = {**behaviour, "_knowledge": knowledge_digests(knowledge)}
    canonical = json.dumps(behaviour, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _set_ops(mapping: dict[str, Any] | None) -> tuple[SetOp, ...]:
    ops = []
    for var, value in (mapping or {}).items():
        if isinstance(value, str):
            ops.append(SetOp(var, value))
        else:
            ops.append(SetOp(var, None, value))
    return tuple(ops)


def _jump(value: str | dict[str, Any]) -> FlowJumpAction:
    if isinstance(value, str):
        return FlowJumpAction(value, ())
    return FlowJumpAction(value["flow"], _set_ops(value.get("with")))


def _pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (mapping or {}).items())


def _action(kind: StepKind, step: dict[str, Any]) -> Any:
    if kind is StepKind.ASK:
        return AskAction(
            prompt=step["ask"],
            expect=step.get("expect"),
            retry_prompt=step.get("retry_prompt"),
            max_attempts=step.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
            on_fail=step.get("on_fail"),
            choices=tuple(str(c) for c in step.get("choices") or ()),
        )
    if kind is StepKind.WAIT:
        value = step["wait"]
        if value == "message":
            return WaitAction(for_message=True, duration_ms=None)
        return WaitAction(for_message=False, duration_ms=parse_duration(value))
    if kind is StepKind.SWITCH:
        cases = tuple(SwitchCase(c["if"], c["goto"]) for c in step["switch"])
        return SwitchAction(cases, step.get("default"))
    if kind is StepKind.AI:
        return AIAction(chain=step["ai"], send=step.get("send", True))
    if kind is StepKind.CLASSIFY:
        spec = step["classify"]
        routes = step.get("routes") or {}
        return ClassifyAction(
            intents=tuple((name, tuple(examples)) for name, examples in spec["intents"].items()),
            chain=spec.get("chain"),
            min_confidence=float(spec.get("min_confidence", DEFAULT_CLASSIFY_CONFIDENCE)),
            text=spec.get("text"),
            routes=tuple((k, v) for k, v in routes.items() if k != "_other"),
            other=routes.get("_other"),
        )
    if kind is StepKind.HTTP:
        spec = step["http"]
        return HttpAction(
            method=spec.get("method", "GET").upper(),
            url=spec["url"],
            headers=_pairs(spec.get("headers")),
            query=_pairs(spec.get("query")),
            json_body=spec.get("json"),
            body=spec.get("body"),
            has_json="json" in spec,
        )
    if kind is StepKind.HANDOFF:
        spec = step["handoff"]
        if isinstance(spec, str):
            spec = {"queue": spec}
        return HandoffAction(
            queue=spec.get("queue", "default"),
            timeout_ms=parse_duration(spec.get("timeout", step.get("timeout"))),
            note=spec.get("note"),
            priority=spec.get("priority", 0),
        )
    if kind is StepKind.CSAT:
        spec = step["csat"] if isinstance(step["csat"], dict) else {}
        return CsatAction(question=spec.get("question"), thanks=spec.get("thanks"))
    if kind in (StepKind.CALL, StepKind.GOTO_FLOW):
        return _jump(step[kind.value])
    if kind is StepKind.END:
        value = step["end"]
        return EndAction("completed" if value is True else str(value))
    return NoAction()


def _step(name: str, step: dict[str, Any], order: list[str]) -> Step:
    kind = kinds_in(step)[0]
    action = _action(kind, step)
    timeout = step.get("timeout")
    retries = step.get("retries")
    if isinstance(action, HttpAction):
        timeout = step["http"].get("timeout", timeout)
        retries = step["http"].get("retries", retries)
    next_step = step.get("next")
    if next_step is None and kind not in TERMINAL_KINDS:
        next_step = following(order, name)
    return Step(
        name=name,
        kind=kind,
        action=action,
        say=_say_text(step.get("say")),
        say_template=_say_template(step.get("say")),
        say_image=_say_image(step.get("say")),
        set=_set_ops(step.get("set")),
        next=next_step,
        on_error=step.get("on_error"),
        on_timeout=step.get("on_timeout"),
        timeout_ms=parse_duration(timeout),
        retries=retries,
        save_as=step.get("save_as"),
        description=step.get("description"),
    )


def _chain(name: str, data: dict[str, Any]) -> Chain:
    providers = tuple(
        ProviderRef(
            use=p["use"],
            profile=p.get("profile"),
            model=p.get("model"),
            timeout_ms=parse_duration(p.get("timeout")),
            retries=p.get("retries", 0),
            options={k: v for k, v in p.items() if k not in ("use", "profile", "model", "timeout", "retries")},
        )
        for p in data["providers"]
    )
    context = data.get("context") or {}
    return Chain(
        name=name,
        system=data.get("system"),
        providers=providers,
        min_confidence=data.get("min_confidence"),
        timeout_ms=parse_duration(data.get("timeout")),
        context=ContextSpec(
            strategy=context.get("strategy", "recent"),
            max_turns=context.get("max_turns", 12),
            max_tokens=context.get("max_tokens", 2000),
        ),
    )


def _stages(stages: list[Any] | None) -> tuple[Stage, ...]:
    out = []
    for stage in stages or []:
        if isinstance(stage, str):
            out.append(Stage(stage, {}))
        else:
            name, config = next(iter(stage.items()))
            config = config or {}
            out.append(Stage(name, config, config.get("on_error", "pass")))
    return tuple(out)


def build_flow(
    data: dict[str, Any], *, file: str = "<flow>", source: str = "", knowledge: Mapping[str, str] | None = None
) -> CompiledFlow:
    """Build the model of a flow document that validated without errors, with its knowledge texts."""
    order = list(data["steps"])
    steps = {name: _step(name, step, order) for name, step in data["steps"].items()}
    pipeline = data.get("pipeline") or {}
    return CompiledFlow(
        name=data["flow"],
        revision=revision_of(data, knowledge),
        steps=MappingProxyType(steps),
        start=data.get("start") or order[0],
        description=data.get("description"),
        channels=tuple(data.get("channels") or ("*",)),
        priority=data.get("priority", 0),
        when=data.get("when"),
        vars=MappingProxyType(dict(data.get("vars") or {})),
        inbound=_stages(pipeline.get("inbound")),
        outbound=_stages(pipeline.get("outbound")),
        chains=MappingProxyType({n: _chain(n, c) for n, c in (data.get("ai") or {}).items()}),
        tests=tuple(FlowTest(t["name"], t) for t in data.get("tests") or ()),
        file=file,
        source=source,
        knowledge=MappingProxyType(dict(knowledge or {})),
    )


def _say_text(say: Any) -> str | None:
    """The free text of ``say``: the template itself, or ``text`` of a vendor template."""
    if isinstance(say, dict):
        text = say.get("text")
        return text if isinstance(text, str) else None
    return say if isinstance(say, str) else None


def _say_image(say: Any) -> str | None:
    image = say.get("image") if isinstance(say, dict) else None
    return image if isinstance(image, str) else None


def _say_template(say: Any) -> VendorTemplate | None:
    if not isinstance(say, dict) or not isinstance(say.get("template"), str):
        return None
    return VendorTemplate(
        name=say["template"], language=str(say.get("language") or ""), params=tuple(say.get("params") or ())
    )
