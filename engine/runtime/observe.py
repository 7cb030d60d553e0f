"""Metrics from workflow code: counted when a step runs for real, never on replay."""

from __future__ import annotations

from collections.abc import Iterable

from engine.flow.events import TraceEntry
from engine.metrics import STEP_DURATION, STEPS


def count_steps(trace: Iterable[TraceEntry]) -> None:
    """One count per step the interpreter ran (notes in the trace are not steps)."""
    for entry in trace:
        if entry.kind != "note":
            STEPS.labels(entry.flow, entry.kind).inc()


def time_step(flow: str, kind: str, seconds: float) -> None:
    """How long a step that calls out (AI, HTTP) took, from the call to its result."""
    STEP_DURATION.labels(flow, kind).observe(max(0.0, seconds))
