"""Pipelines in `flowdesk try`/`flowdesk test` (the Simulator): what a person trying a flow sees."""

from __future__ import annotations

from typing import Any

import pytest

from engine.flow.context import FlowSet, InterpreterContext
from engine.flow.events import AIFailed, AIResult, CallAI, HttpFailed
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator
from engine.pipeline.types import Block, Message, PipelineContext
from tests.plugin_support import install_module

MODULE = "flowdesk_sim_processors"


class Tag:
    """Flags messages that mention a refund; blocks the word 'spam' with a reply."""

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        if "spam" in message.text:
            return Block("spam", "Please don't.")
        return message.replace(flags={**message.flags, "refund": "refund" in message.text})


class Censor:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def process(self, message: Message, context: PipelineContext) -> Message | Block:
        return Block("secret leaked") if "internal" in message.text else message


@pytest.fixture(autouse=True)
def fx_module(monkeypatch: pytest.MonkeyPatch) -> None:
    install_module(monkeypatch, MODULE, Tag, Censor)


FLOW = f"""
flow: piped
pipeline:
  inbound: [normalize, '{MODULE}:Tag']
  outbound: ['{MODULE}:Censor']
ai:
  bot: {{ providers: [{{ use: echo }}] }}
steps:
  listen:
    wait: message
  route:
    switch:
      - if: "message.flags.refund"
        goto: refund
    default: answer
  answer:
    ai: bot
    next: listen
  refund:
    say: Refunds take 5 days.
    next: listen
"""


def simulator() -> Simulator:
    result = compile_source(FLOW, "piped.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    flow: CompiledFlow = result.flow

    def echo(call: CallAI, at: str) -> AIResult | AIFailed:
        return AIResult(call.call_id, call.text, at)

    def no_http(call: Any, at: str) -> HttpFailed:
        return HttpFailed(call.call_id, "error", at)

    return Simulator(InterpreterContext(FlowSet([flow])), flow, ai=echo, http=no_http)


def test_inbound_processors_shape_what_the_flow_sees_and_flags_route() -> None:
    sim = simulator()
    assert [s.text for s in sim.user("  where   is my parcel ")] == ["where is my parcel"]
    assert [s.text for s in sim.user("I want a refund")] == ["Refunds take 5 days."]


def test_a_blocked_message_gets_the_reply_and_never_reaches_the_flow() -> None:
    sim = simulator()
    assert [s.text for s in sim.user("buy spam now")] == ["Please don't."]
    assert sim.log.blocked == [f"in: {MODULE}:Tag: spam"]
    assert sim.state.message is None and sim.state.transcript == []  # the flow never saw it
    assert [s.text for s in sim.user("hello")] == ["hello"]


def test_a_blocked_reply_is_not_sent() -> None:
    sim = simulator()
    assert sim.user("tell me the internal price") == []
    assert sim.log.blocked == [f"out: {MODULE}:Censor: secret leaked"]
    assert [s.text for s in sim.user("thanks")] == ["thanks"]
