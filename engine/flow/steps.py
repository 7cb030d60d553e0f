"""Facts about step mappings shared by the validator and the compiler.

Which key makes a step which kind, which keys each kind accepts, and where a step
can go next. Works on the validated mapping (plain data), before compilation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.flow.model import ACTION_KINDS, StepKind

COMMON_KEYS = frozenset({"say", "set", "next", "on_error", "description"})

KIND_KEYS: dict[StepKind, frozenset[str]] = {
    StepKind.SAY: frozenset(),
    StepKind.SET: frozenset(),
    StepKind.ASK: frozenset(
        {"ask", "expect", "retry_prompt", "max_attempts", "on_fail", "choices", "save_as", "timeout", "on_timeout"}
    ),
    StepKind.WAIT: frozenset({"wait", "timeout", "on_timeout"}),
    StepKind.SWITCH: frozenset({"switch", "default"}),
    StepKind.AI: frozenset({"ai", "save_as", "send", "timeout", "retries", "on_timeout"}),
    StepKind.CLASSIFY: frozenset({"classify", "routes", "save_as"}),
    StepKind.HTTP: frozenset({"http", "save_as", "timeout", "retries", "on_timeout"}),
    StepKind.HANDOFF: frozenset({"handoff", "timeout", "on_timeout"}),
    StepKind.CSAT: frozenset({"csat", "save_as", "timeout", "on_timeout"}),
    StepKind.CALL: frozenset({"call", "save_as"}),
    StepKind.GOTO_FLOW: frozenset({"goto_flow"}),
    StepKind.END: frozenset({"end"}),
}

#: Kinds after which the conversation does not continue in this flow.
TERMINAL_KINDS = frozenset({StepKind.END, StepKind.GOTO_FLOW})


def kinds_in(step: Mapping[str, Any]) -> list[StepKind]:
    """The action kinds present in a step mapping (a valid step has exactly one)."""
    found = [kind for kind in ACTION_KINDS if kind.value in step]
    if found:
        return found
    if "say" in step:
        return [StepKind.SAY]
    if "set" in step:
        return [StepKind.SET]
    return []


@dataclass(frozen=True, slots=True)
class Edge:
    """A way from one step to another; ``field`` is the key path that declares it."""

    source: str
    target: str
    field: tuple[str | int, ...]
    implicit: bool = False


def following(order: list[str], name: str) -> str | None:
    """The step written after ``name``, where a step without ``next`` goes."""
    index = order.index(name)
    return order[index + 1] if index + 1 < len(order) else None


def edges(name: str, step: Mapping[str, Any], kind: StepKind, order: list[str]) -> Iterator[Edge]:
    """Every step reference a step makes, explicit or by falling through."""
    for key in ("on_error", "on_timeout", "on_fail"):
        if isinstance(step.get(key), str):
            yield Edge(name, step[key], (key,))
    if kind is StepKind.SWITCH:
        for i, case in enumerate(step.get("switch") or []):
            if isinstance(case, Mapping) and isinstance(case.get("goto"), str):
                yield Edge(name, case["goto"], ("switch", i, "goto"))
        if isinstance(step.get("default"), str):
            yield Edge(name, step["default"], ("default",))
            return
    if kind is StepKind.CLASSIFY:
        routes = step.get("routes") or {}
        for intent, target in routes.items():
            if isinstance(target, str):
                yield Edge(name, target, ("routes", intent))
        if "_other" in routes:
            return
    if kind in TERMINAL_KINDS:
        return
    if isinstance(step.get("next"), str):
        yield Edge(name, step["next"], ("next",))
    else:
        after = following(order, name)
        if after is not None:
            yield Edge(name, after, (), implicit=True)
