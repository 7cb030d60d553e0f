"""`flowdesk try`/`test` ask plugin providers that declare themselves offline, and skip the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from engine.ai.types import AIReply, AIRequest
from engine.flow.context import FlowSet
from engine.flow.events import AIFailed, AIResult, CallAI
from engine.flow.validate import compile_source
from engine.flowtest.offline import OfflineAI
from tests.plugin_support import install_module

MODULE = "flowdesk_offline_plugins"


class Shouter:
    """Answers in capitals, with the confidence it was given."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.confidence = params["params"].get("confidence", 1.0)

    async def reply(self, request: AIRequest) -> AIReply:
        earlier = " / ".join(turn.text for turn in request.context)
        return AIReply(text=f"{request.message.upper()} (after: {earlier})", confidence=self.confidence)


def offline_factory(params: Mapping[str, Any]) -> Shouter:
    return Shouter(params)


offline_factory.offline = True  # type: ignore[attr-defined]


def online_factory(params: Mapping[str, Any]) -> Shouter:
    return Shouter(params)


@pytest.fixture(autouse=True)
def fx_module(monkeypatch: pytest.MonkeyPatch) -> None:
    install_module(monkeypatch, MODULE, offline_factory, online_factory)


def answer(providers: str, *, history: tuple[dict[str, str], ...] = ()) -> tuple[AIResult | AIFailed, list[str]]:
    source = f"""
flow: offline
ai:
  bot: {{ providers: {providers}, min_confidence: 0.5 }}
steps:
  listen:
    wait: message
  answer:
    ai: bot
    next: listen
"""
    result = compile_source(source, "offline.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    flow = result.flow
    ai = OfflineAI(FlowSet([flow]))
    call = CallAI("ai-1", "answer", flow.name, flow.revision, "bot", "where is it", None, history)
    return ai(call, "2026-01-01T00:00:00+00:00"), ai.notes


def test_an_offline_plugin_provider_answers_with_the_conversation_as_context() -> None:
    history = (
        {"role": "user", "text": "hello"},
        {"role": "bot", "text": "hi!"},
        {"role": "user", "text": "where is it"},
    )
    result, notes = answer(f"[{{ use: '{MODULE}:offline_factory' }}]", history=history)
    assert isinstance(result, AIResult)
    assert (result.text, result.provider) == ("WHERE IS IT (after: hello / hi!)", f"{MODULE}:offline_factory")
    assert notes == []


def test_a_provider_that_does_not_say_offline_is_skipped_with_a_note() -> None:
    result, notes = answer(f"[{{ use: '{MODULE}:online_factory' }}, {{ use: echo }}]")
    assert isinstance(result, AIResult) and result.provider == "echo"
    result, notes = answer(f"[{{ use: '{MODULE}:online_factory' }}]")
    assert isinstance(result, AIFailed)
    assert notes == [f"skipped {MODULE}:online_factory (needs a network; mock it with mock.ai.answer)"]


def test_an_unsure_offline_answer_falls_through_like_in_a_real_chain() -> None:
    result, _ = answer(f"[{{ use: '{MODULE}:offline_factory', params: {{ confidence: 0.2 }} }}, {{ use: echo }}]")
    assert isinstance(result, AIResult) and result.provider == "echo"


async def test_it_works_under_a_running_event_loop_too() -> None:
    result, _ = answer(f"[{{ use: '{MODULE}:offline_factory' }}]")
    assert isinstance(result, AIResult) and result.text.startswith("WHERE IS IT")
