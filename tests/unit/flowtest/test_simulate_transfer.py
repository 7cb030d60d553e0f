"""The simulator replays an agent's transfer of a hand-off to another queue, as the workflow does."""

from __future__ import annotations

import textwrap

from engine.flow.context import FlowSet, InterpreterContext
from engine.flow.events import AIFailed, AIResult, CallAI, CallHttp, HttpFailed, HttpResult, SendText
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator

DESK = """
flow: desk
steps:
  listen: { wait: message }
  human:
    say: "Connecting you..."
    handoff: { queue: support, timeout: 10m }
    on_timeout: sorry
    next: after
  after: { say: "Anything else?", next: listen2 }
  listen2: { wait: message }
  echo: { say: "flow got {{ message.text }}", end: resolved }
  sorry: { say: "Nobody is free.", next: listen2 }
"""


def _flow() -> CompiledFlow:
    result = compile_source(textwrap.dedent(DESK), "desk.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def _no_ai(call: CallAI, at: str) -> AIResult | AIFailed:
    raise AssertionError(f"unexpected AI call from {call.step}")


def _no_http(call: CallHttp, at: str) -> HttpResult | HttpFailed:
    raise AssertionError(f"unexpected HTTP call from {call.step}")


def _desk() -> Simulator:
    flow = _flow()
    return Simulator(InterpreterContext(FlowSet([flow])), flow, ai=_no_ai, http=_no_http)


def _texts(sent: list[SendText]) -> list[str]:
    return [s.text for s in sent]


def test_a_transferred_hand_off_waits_on_the_new_queue_and_is_resolved_there() -> None:
    s = _desk()
    assert _texts(s.user("I need a person")) == ["Connecting you..."]
    assert s.user("hello?") == []  # held for whoever takes the hand-off
    assert s.log.handoffs == ["support"]

    assert s.transfer("billing", agent="anna", reason="refund question") == []  # the customer hears nothing
    assert s.log.transfers == ["billing"]
    assert s.state.status == "handoff" and s.state.handoff is not None
    assert s.state.handoff["queue"] == "billing"
    assert [m["text"] for m in s.state.handoff["held"]] == ["hello?"]  # still there for the billing agent
    assert s.state.pending is not None and s.state.pending.wait == "agent"

    s.agent("accept", agent="ben")
    reply = s.agent("say", agent="ben", text="Ben from billing here.")
    assert _texts(reply) == ["Ben from billing here."] and reply[0].sender == "agent:ben"
    assert _texts(s.agent("resolve", agent="ben")) == ["Anything else?"]
    assert s.state.status == "active" and s.state.handoff is None
    assert _texts(s.user("no")) == ["flow got no"]


def test_a_transfer_keeps_the_hand_off_timeout() -> None:
    s = _desk()
    s.user("I need a person")
    s.elapse(5 * 60_000)
    s.transfer("billing")
    assert s.elapse(4 * 60_000) == []
    assert _texts(s.elapse(60_000)) == ["Nobody is free."]  # ten minutes after the hand-off began
    assert s.state.status == "active" and s.state.handoff is None


def test_a_transfer_of_a_conversation_not_handed_off_changes_nothing() -> None:
    s = _desk()
    before = s.state.to_dict()
    assert s.transfer("billing") == []
    assert s.log.transfers == []
    assert s.state.to_dict() == before
