"""Per-task-queue worker state that workflow code may read: the compiled flows.

Workflow code cannot take constructor arguments, so a worker registers its
:class:`CompiledFlows` here under its task queue before it starts, and the
workflow finds it through ``workflow.info().task_queue``. Reading it is safe for
determinism because revisions are content-addressed and never change.
"""

from __future__ import annotations

from engine.errors import FlowRuntimeError
from engine.runtime.revisions import CompiledFlows

_COMPILED: dict[str, CompiledFlows] = {}


def register(task_queue: str, compiled: CompiledFlows) -> None:
    _COMPILED[task_queue] = compiled


def unregister(task_queue: str) -> None:
    _COMPILED.pop(task_queue, None)


def compiled_for(task_queue: str) -> CompiledFlows:
    try:
        return _COMPILED[task_queue]
    except KeyError:
        raise FlowRuntimeError("no_worker_flows", f"no flows registered for task queue {task_queue!r}") from None
