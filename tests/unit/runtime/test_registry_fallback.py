"""A replay finds a revision through any worker's flows, passing over a stopped node's that cannot answer."""

from __future__ import annotations

from typing import Any, cast

import pytest

from engine.errors import FlowRuntimeError
from engine.runtime import registry
from engine.runtime.revisions import CompiledFlows


class _Flows:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get(self, name: str, revision: str) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def test_a_replay_passes_over_flows_whose_store_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_COMPILED", {})
    registry.register("stopped-node", cast(CompiledFlows, _Flows(OSError("database does not exist"))))
    registry.register("no-such-revision", cast(CompiledFlows, _Flows(FlowRuntimeError("unknown_revision", "no"))))
    registry.register("live-node", cast(CompiledFlows, _Flows("the flow")))
    assert registry.load("replayer-queue", "shop", "abc") == "the flow"


def test_a_node_unregisters_only_its_own_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_COMPILED", {})
    mine, theirs = cast(CompiledFlows, _Flows("mine")), cast(CompiledFlows, _Flows("theirs"))
    registry.register("shared", mine)
    registry.register("shared", theirs)  # a second node of the process on the same task queue
    registry.unregister("shared", mine)
    assert registry.load("shared", "shop", "abc") == "theirs"
    registry.unregister("shared", theirs)
    with pytest.raises(FlowRuntimeError):
        registry.load("shared", "shop", "abc")
