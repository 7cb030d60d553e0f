"""Per-task-queue worker state that workflow code may read: the compiled flows.

Workflow code cannot take constructor arguments, so a worker registers its
:class:`CompiledFlows` here under its task queue before it starts, and the
workflow finds it through ``workflow.info().task_queue``. Reading it is safe for
determinism because revisions are content-addressed and never change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from engine.errors import FlowRuntimeError
from engine.flow.model import CompiledFlow
from engine.flow.public_settings import PublicSettings
from engine.runtime.revisions import CompiledFlows

_COMPILED: dict[str, CompiledFlows] = {}
T = TypeVar("T")


def register(task_queue: str, compiled: CompiledFlows) -> None:
    _COMPILED[task_queue] = compiled


def unregister(task_queue: str, compiled: CompiledFlows | None = None) -> None:
    """Forget ``task_queue``'s flows (only if they are ``compiled``, when given: two nodes of one
    process may share a task queue, and the one stopping must not take the other's)."""
    if compiled is None or _COMPILED.get(task_queue) is compiled:
        _COMPILED.pop(task_queue, None)


def load(task_queue: str, name: str, revision: str) -> CompiledFlow:
    """Revision ``revision`` of flow ``name``, from the flows of ``task_queue``'s worker."""
    return _from_worker(task_queue, lambda compiled: compiled.get(name, revision))


def load_settings(task_queue: str, revision: str) -> PublicSettings:
    """Settings revision ``revision``, from the store of ``task_queue``'s worker."""
    return _from_worker(task_queue, lambda compiled: compiled.settings(revision))


def _from_worker(task_queue: str, read: Callable[[CompiledFlows], T]) -> T:
    """``read`` from ``task_queue``'s worker's revisions.

    A ``Replayer`` replays on a task queue of its own; then any registered set that
    holds the revision will do, since a revision's content is the same everywhere. A
    set that cannot answer at all (its worker's database is gone: a stopped node of
    the same process that did not unregister) is passed over like one without it.
    """
    own = _COMPILED.get(task_queue)
    if own is not None:
        return read(own)
    for compiled in list(_COMPILED.values()):
        try:
            return read(compiled)
        except FlowRuntimeError:
            continue
        except Exception:  # a store that does not answer: another set may have the revision
            continue
    raise FlowRuntimeError("no_worker_flows", f"no flows registered for task queue {task_queue!r}")
