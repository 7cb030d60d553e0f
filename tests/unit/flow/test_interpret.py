"""Step semantics of the pure interpreter: every kind and every exit path."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from engine.flow.compile import build_flow
from engine.flow.context import FlowSet, InterpreterContext, Limits
from engine.flow.events import (
    AgentTransferred,
    AIFailed,
    AIResult,
    CallAI,
    CallHttp,
    CancelHandoff,
    CloseRequested,
    EndConversation,
    Fault,
    HttpFailed,
    HttpResult,
    MessageReceived,
    SendText,
    StartHandoff,
    TimerFired,
    TransferHandoff,
    event_from_dict,
    to_dict,
)
from engine.flow.interpret import adopt_revision, advance, begin
from engine.flow.model import CompiledFlow
from engine.flow.state import ConversationState
from engine.flow.validate import compile_source
from engine.flowtest.simulate import Simulator

T0 = "2026-01-05T10:00:00+00:00"


def flow(text: str, file: str = "t.yaml") -> CompiledFlow:
    result = compile_source(textwrap.dedent(text), file)
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def no_ai(call: CallAI, at: str) -> AIResult | AIFailed:
    raise AssertionError(f"unexpected AI call from {call.step}")


def no_http(call: CallHttp, at: str) -> HttpResult | HttpFailed:
    raise AssertionError(f"unexpected HTTP call from {call.step}")


def sim(*flows: CompiledFlow, ai: Any = no_ai, http: Any = no_http, **kwargs: Any) -> Simulator:
    ctx = InterpreterContext(FlowSet(list(flows)))
    return Simulator(ctx, flows[0], ai=ai, http=http, **kwargs)


def texts(sent: list[SendText]) -> list[str]:
    return [s.text for s in sent]


def ai_reply(text: str) -> Any:
    return lambda call, at: AIResult(call.call_id, text, at, confidence=0.9, provider="test")


def ai_fail(reason: str) -> Any:
    return lambda call, at: AIFailed(call.call_id, reason, at, "boom")


ECHO = """
flow: echo
steps:
  hello: { say: "Hello {{ contact.name or 'there' }}" }
  listen: { wait: message }
  repeat: { say: "You said: {{ message.text }}", next: listen }
"""


def test_say_wait_and_the_opening_message_is_seen_first() -> None:
    s = sim(flow(ECHO), contact={"name": "Ann"})
    assert texts(s.user("first")) == ["Hello Ann", "You said: first"]
    assert texts(s.user("second")) == ["You said: second"]
    assert s.state.step == "listen" and s.state.pending is not None


def test_customer_text_is_never_evaluated_as_a_template() -> None:
    s = sim(flow(ECHO))
    assert texts(s.user("{{ 7*7 }} {% for x in range(3) %}x{% endfor %}"))[-1] == (
        "You said: {{ 7*7 }} {% for x in range(3) %}x{% endfor %}"
    )


def test_falling_off_the_last_step_completes_the_conversation() -> None:
    s = sim(
        flow("""
        flow: short
        steps:
          a: { say: one }
          b: { say: two }
    """)
    )
    assert texts(s.user("hi")) == ["one", "two"]
    assert s.log.ended == "completed" and s.state.ended
    assert s.user("anyone?") == []  # an ended conversation takes no more messages


def test_messages_queue_in_order_while_the_flow_is_busy() -> None:
    s = sim(
        flow("""
        flow: pause
        steps:
          pause: { wait: 10s }
          first: { wait: message }
          say1: { say: "1: {{ message.text }}" }
          second: { wait: message }
          say2: { say: "2: {{ message.text }}", end: resolved }
    """)
    )
    assert s.user("a") == [] and s.user("b") == []  # paused; both queue
    assert texts(s.elapse(10_000)) == ["1: a", "2: b"]
    assert s.log.ended == "resolved"


WAIT_TIMEOUT = """
flow: idle
steps:
  listen: {{ wait: message, timeout: 30m{extra} }}
  got: {{ say: "got {{{{ message.text }}}}", next: listen }}
  bye: {{ say: bye, end: abandoned }}
  oops: {{ say: oops, end: failed_politely }}
"""


def test_wait_timeout_takes_on_timeout() -> None:
    s = sim(flow(WAIT_TIMEOUT.format(extra=", on_timeout: bye")))
    assert texts(s.user("x")) == ["got x"]
    assert s.elapse(29 * 60_000) == []
    assert texts(s.elapse(60_000)) == ["bye"]
    assert s.log.ended == "abandoned"


def test_wait_timeout_without_on_timeout_takes_on_error_then_ends() -> None:
    s = sim(flow(WAIT_TIMEOUT.format(extra=", on_error: oops")))
    s.user("x")
    assert texts(s.elapse(30 * 60_000)) == ["oops"]
    s = sim(flow(WAIT_TIMEOUT.format(extra="")))
    s.user("x")
    s.elapse(30 * 60_000)
    assert s.log.ended == "timed_out"


def test_a_message_before_the_timeout_cancels_it() -> None:
    s = sim(flow(WAIT_TIMEOUT.format(extra=", on_timeout: bye")))
    s.user("x")
    s.elapse(20 * 60_000)
    s.user("y")
    assert s.elapse(20 * 60_000) == []  # the new wait has its own 30 minutes
    assert texts(s.elapse(10 * 60_000)) == ["bye"]


ASK = """
flow: order
steps:
  start: { wait: message }
  ask_order:
    ask: "Order number?"
    expect: "answer is matching('^[0-9]{6,12}$')"
    retry_prompt: "6 to 12 digits, please."
    max_attempts: 3
    save_as: order_id
    on_fail: human
  done: { say: "Thanks, {{ vars.order_id }}", end: resolved }
  human: { handoff: tier1 }
"""


def test_ask_saves_a_valid_answer() -> None:
    s = sim(flow(ASK))
    assert texts(s.user("hi")) == ["Order number?"]
    assert texts(s.user("1234567")) == ["Thanks, 1234567"]
    assert s.state.vars["order_id"] == "1234567"


def test_ask_retries_then_takes_on_fail() -> None:
    s = sim(flow(ASK))
    s.user("hi")
    assert texts(s.user("12")) == ["6 to 12 digits, please."]
    assert texts(s.user("abc")) == ["6 to 12 digits, please."]
    # The hand-off step says nothing itself: the customer is told they are queued.
    assert texts(s.user("still wrong")) == [
        "You're in the queue for tier1. A colleague will be with you as soon as possible."
    ]
    assert s.log.handoffs == ["tier1"] and s.state.status == "handoff"


def test_ask_without_on_fail_fails_the_step() -> None:
    s = sim(flow(ASK.replace("    on_fail: human\n", "    max_attempts: 1\n").replace("    max_attempts: 3\n", "")))
    s.user("hi")
    s.user("nope")
    assert [f.code for f in s.log.faults] == ["invalid_answer"]
    assert s.log.ended == "failed"


def test_ask_with_choices_accepts_text_or_number() -> None:
    f = flow("""
        flow: menu
        steps:
          pick:
            ask: "Tea or coffee?"
            choices: [Tea, Coffee]
            save_as: drink
          done: { say: "{{ vars.drink }} it is", next: pick }
    """)
    s = sim(f)
    # The opening message is the first answer an `ask` sees: "hello" is no choice.
    first = s.user("hello")
    assert texts(first) == ["Tea or coffee?", "Tea or coffee?"] and first[0].choices == ("Tea", "Coffee")
    assert texts(s.user("beer")) == ["Tea or coffee?"]  # the question again, as no retry_prompt
    assert texts(s.user("2")) == ["Coffee it is", "Tea or coffee?"]
    assert texts(s.user("tea")) == ["Tea it is", "Tea or coffee?"]


def test_ask_timeout() -> None:
    s = sim(flow(ASK.replace("    on_fail: human\n", "    on_fail: human\n    timeout: 5m\n    on_timeout: human\n")))
    s.user("hi")
    s.elapse(5 * 60_000)
    assert s.log.handoffs == ["tier1"]


SWITCH = """
flow: router
vars: { hits: 0 }
steps:
  listen: { wait: message }
  route:
    switch:
      - if: "message.text is matching('(?i)refund|退款')"
        goto: refund
      - if: "'vip' in contact.tags"
        goto: vip
    default: other
    set: { hits: "vars.hits + 1" }
  refund: { say: refund, next: listen }
  vip: { say: vip, next: listen }
  other: { say: "other {{ vars.hits }}", next: listen }
"""


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [("I want a REFUND", [], "refund"), ("我要退款", [], "refund"), ("hi", ["vip"], "vip"), ("hi", [], "other 1")],
)
def test_switch_takes_the_first_true_case_or_default(text: str, tags: list[str], expected: str) -> None:
    s = sim(flow(SWITCH), contact={"tags": tags})
    assert texts(s.user(text)) == [expected]
    assert s.state.vars["hits"] == 1  # `set` applies whichever branch is taken


def test_switch_without_default_continues_with_next() -> None:
    s = sim(
        flow("""
        flow: sw
        steps:
          w: { wait: message }
          s: { switch: [{ if: "message.text == 'a'", goto: a }] }
          fallthrough: { say: none, end: resolved }
          a: { say: a, end: resolved }
    """)
    )
    assert texts(s.user("b")) == ["none"]


AI_FLOW = """
flow: bot
ai:
  helpdesk:
    system: "You help {{ settings.brand }} customers."
    providers: [{ use: echo }]
steps:
  listen: { wait: message }
  answer: { ai: helpdesk, save_as: reply, on_error: human, on_timeout: slow, next: listen }
  human: { handoff: tier1 }
  slow: { say: "Sorry, that took too long.", next: listen }
"""


def test_ai_reply_is_sent_and_saved() -> None:
    calls: list[CallAI] = []

    def responder(call: CallAI, at: str) -> AIResult:
        calls.append(call)
        return AIResult(call.call_id, f"answer to {call.text}", at, confidence=0.8, provider="x")

    s = sim(flow(AI_FLOW), ai=responder)
    assert texts(s.user("where is my parcel")) == ["answer to where is my parcel"]
    assert s.state.vars["reply"] == "answer to where is my parcel"
    assert calls[0].system == "You help Flowdesk customers."
    assert calls[0].context == () and calls[0].history == ()  # nothing was said before


def recorder(calls: list[CallAI]) -> Any:
    def respond(call: CallAI, at: str) -> AIResult:
        calls.append(call)
        return AIResult(call.call_id, f"answer to {call.text}", at, confidence=0.8, provider="x")

    return respond


def test_ai_calls_carry_the_turns_chosen_for_the_vendor_not_the_transcript() -> None:
    f = flow(AI_FLOW.replace("providers: [{ use: echo }]", "providers: [{ use: echo }]\n    context: { max_turns: 3 }"))
    calls: list[CallAI] = []
    s = sim(f, ai=recorder(calls))
    for text in ("one", "two", "three"):
        s.user(text)
    assert calls[2].context == (
        {"role": "assistant", "text": "answer to one"},
        {"role": "user", "text": "two"},
        {"role": "assistant", "text": "answer to two"},
    )
    assert calls[2].history == ()


def test_conversations_from_before_the_change_still_send_their_transcript() -> None:
    # A conversation whose history was written by the older interpreter replays without the
    # feature (workflow.patched): its calls carry the transcript, and the activity chooses.
    f = flow(AI_FLOW)
    calls: list[CallAI] = []
    s = Simulator(InterpreterContext(FlowSet([f]), features=frozenset()), f, ai=recorder(calls), http=no_http)
    s.user("one")
    s.user("two")
    assert [turn["text"] for turn in calls[1].history] == ["one", "answer to one", "two"]
    assert calls[1].context == ()


def test_ai_failure_takes_on_error_and_timeout_takes_on_timeout() -> None:
    s = sim(flow(AI_FLOW), ai=ai_fail("failed"))
    s.user("x")
    assert s.state.status == "handoff" and [f.code for f in s.log.faults] == ["ai_failed"]
    s = sim(flow(AI_FLOW), ai=ai_fail("timeout"))
    assert texts(s.user("x")) == ["Sorry, that took too long."]


def test_ai_with_send_false_only_saves() -> None:
    s = sim(flow(AI_FLOW.replace("save_as: reply,", "save_as: reply, send: false,")), ai=ai_reply("secret plan"))
    assert s.user("x") == [] and s.state.vars["reply"] == "secret plan"


def test_ai_without_on_error_ends_the_conversation_as_failed() -> None:
    f = flow(AI_FLOW.replace(" on_error: human,", ""))
    s = sim(f, ai=ai_fail("failed"))
    s.user("x")
    assert s.log.ended == "failed"


def test_stale_results_are_ignored() -> None:
    f = flow(AI_FLOW)
    ctx = InterpreterContext(FlowSet([f]))
    state = begin(f, conversation={"id": "c"}, at=T0)
    out = advance(ctx, state, MessageReceived({"id": "1", "text": "x"}, at=T0))
    stale = advance(ctx, out.state, AIResult("ai-999", "late", T0))
    assert stale.commands == [] and stale.state.pending == out.state.pending


CLASSIFY = """
flow: intents
steps:
  listen: { wait: message }
  sort:
    classify:
      intents:
        refund: ["I want my money back", "refund please", "我要退款"]
        shipping: ["where is my parcel", "delivery status", "快递到哪了"]
    routes: { refund: refund, shipping: shipping, _other: other }
    save_as: topic
  refund: { say: refund, next: listen }
  shipping: { say: shipping, next: listen }
  other: { say: "other ({{ vars.topic }})", next: listen }
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can I get a refund please", "refund"),
        ("where is my parcel?", "shipping"),
        ("我要退款", "refund"),
        ("what's the weather", "other (None)"),
    ],
)
def test_classify_by_keywords_routes_by_intent(text: str, expected: str) -> None:
    assert texts(sim(flow(CLASSIFY)).user(text)) == [expected]


def test_classify_through_an_ai_chain() -> None:
    f = flow(
        CLASSIFY.replace("    routes:", "      chain: c\n    routes:").replace(
            "steps:", "ai:\n  c: { providers: [{ use: echo }] }\nsteps:"
        )
    )
    seen: list[CallAI] = []

    def classify(call: CallAI, at: str) -> AIResult:
        seen.append(call)
        return AIResult(call.call_id, "shipping", at)

    s = sim(f, ai=classify)
    assert texts(s.user("anything")) == ["shipping"]
    assert seen[0].purpose == "classify" and [name for name, _ in seen[0].intents] == ["refund", "shipping"]
    s.user("and more")
    assert seen[1].context == () and seen[1].history == ()  # an intent is told from the message alone
    s = sim(f, ai=ai_reply("not-an-intent"))
    assert texts(s.user("anything")) == ["other (None)"]


HTTP = """
flow: lookup
steps:
  listen: { wait: message }
  ask: { ask: "Order?", save_as: order_id }
  get:
    http:
      method: POST
      url: "https://shop.example/orders/{{ vars.order_id }}"
      headers: { Authorization: "Bearer {{ secret('SHOP_TOKEN') }}" }
      query: { lang: "{{ contact.locale or 'en' }}" }
      json: { id: "{{ vars.order_id }}", count: 2 }
      timeout: 5s
      retries: 2
    save_as: order
    on_error: broken
    on_timeout: slow
  ok: { say: "Status: {{ vars.order.status }}", end: resolved }
  broken: { say: "Lookup failed ({{ http.status or http.error }})", end: unresolved }
  slow: { say: "Too slow", end: unresolved }
"""


def test_http_renders_the_request_with_secret_markers_not_values() -> None:
    requests: list[CallHttp] = []

    def respond(call: CallHttp, at: str) -> HttpResult:
        requests.append(call)
        return HttpResult(call.call_id, 200, {"status": "shipped"}, at)

    s = sim(flow(HTTP), http=respond)
    s.user("hi")
    assert texts(s.user("42")) == ["Status: shipped"]
    request = requests[0]
    assert request.method == "POST" and request.url == "https://shop.example/orders/42"
    assert dict(request.headers) == {"Authorization": "Bearer ${secret:SHOP_TOKEN}"}
    assert dict(request.query) == {"lang": "en"}
    assert request.json_body == {"id": "42", "count": 2} and request.timeout_ms == 5000 and request.retries == 2


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (lambda c, at: HttpResult(c.call_id, 404, {"error": "nope"}, at), "Lookup failed (404)"),
        (lambda c, at: HttpFailed(c.call_id, "error", at, "refused"), "Lookup failed (error)"),
        (lambda c, at: HttpFailed(c.call_id, "timeout", at), "Too slow"),
    ],
)
def test_http_failures(result: Any, expected: str) -> None:
    s = sim(flow(HTTP), http=result)
    s.user("hi")
    assert texts(s.user("42")) == [expected]


HANDOFF = """
flow: human
steps:
  listen: { wait: message }
  human:
    say: "Connecting you..."
    handoff: { queue: tier1, timeout: 10m, note: "Customer said {{ message.text }}", priority: 2 }
    on_timeout: sorry
    next: after
  after: { say: "Anything else?", next: listen2 }
  listen2: { wait: message }
  echo: { say: "flow got {{ message.text }}", end: resolved }
  sorry: { say: "Nobody is free.", next: listen2 }
"""


def test_handoff_accept_agent_reply_and_resolve() -> None:
    f = flow(HANDOFF)
    ctx = InterpreterContext(FlowSet([f]))
    out = advance(ctx, begin(f, conversation={"id": "c"}, at=T0), MessageReceived({"id": "1", "text": "help"}, at=T0))
    start = next(c for c in out.commands if isinstance(c, StartHandoff))
    assert (start.queue, start.note, start.priority) == ("tier1", "Customer said help", 2)
    s = sim(f)
    assert texts(s.user("help")) == ["Connecting you..."]
    assert s.user("hello?") == []  # goes to the agent, not the flow
    s.agent("accept")
    assert s.elapse(60 * 60_000) == []  # accepted: the hand-off timer no longer runs
    reply = s.agent("say", text="Hi, I'm Bo")
    assert texts(reply) == ["Hi, I'm Bo"] and reply[0].sender == "agent:agent-1"
    assert texts(s.agent("resolve")) == ["Anything else?"]
    assert texts(s.user("no")) == ["flow got no"]  # the held message did not leak into the flow


def test_handoff_timeout_returns_held_messages_to_the_flow() -> None:
    f = flow(HANDOFF)
    ctx = InterpreterContext(FlowSet([f]))
    s = sim(f)
    s.user("help")
    s.user("are you there?")
    assert texts(s.elapse(10 * 60_000)) == ["Nobody is free.", "flow got are you there?"]
    state = begin(f, conversation={"id": "c"}, at=T0)
    out = advance(ctx, state, MessageReceived({"id": "1", "text": "help"}, at=T0))
    timer = out.state.pending.timer_id
    fired = advance(ctx, out.state, TimerFired(timer, at="2026-01-05T10:10:00+00:00"))
    assert any(isinstance(c, CancelHandoff) and c.queue == "tier1" for c in fired.commands)


def test_a_transfer_moves_the_hand_off_and_a_timeout_withdraws_it_from_the_new_queue() -> None:
    f = flow(HANDOFF)
    ctx = InterpreterContext(FlowSet([f]))
    state = begin(f, conversation={"id": "c"}, at=T0)
    handed = advance(ctx, state, MessageReceived({"id": "1", "text": "help"}, at=T0))
    transfer = AgentTransferred("billing", "anna", at="2026-01-05T10:01:00+00:00", reason="refund")
    # it crosses continue-as-new in the backlog
    assert event_from_dict(json.loads(json.dumps(to_dict(transfer)))) == transfer
    moved = advance(ctx, handed.state, transfer)
    assert moved.commands == [TransferHandoff("billing", "tier1", "human", "anna", "refund")]
    assert moved.state.handoff["queue"] == "billing" and handed.state.handoff["queue"] == "tier1"
    timer = moved.state.pending.timer_id
    fired = advance(ctx, moved.state, TimerFired(timer, at="2026-01-05T10:10:00+00:00"))
    assert [c.queue for c in fired.commands if isinstance(c, CancelHandoff)] == ["billing"]


def test_a_transfer_while_not_handed_off_is_ignored() -> None:
    f = flow(HANDOFF)
    ctx = InterpreterContext(FlowSet([f]))
    out = advance(ctx, begin(f, conversation={"id": "c"}, at=T0), AgentTransferred("billing", "anna", at=T0))
    assert out.commands == [] and out.state.handoff is None
    assert any("not handed off" in t.note for t in out.trace)


MAIN = """
flow: main
steps:
  listen: { wait: message }
  collect: { call: { flow: contact-info, with: { purpose: "'billing'" } }, save_as: info }
  thanks: { say: "Thanks {{ vars.info.vars.email }} ({{ vars.info.status }})", end: resolved }
"""
SUB = """
flow: contact-info
vars: { purpose: null }
steps:
  ask: { ask: "E-mail for {{ vars.purpose }}?", save_as: email }
  done: { end: collected }
"""


def test_call_runs_a_sub_flow_and_returns_its_vars() -> None:
    s = sim(flow(MAIN), flow(SUB, "sub.yaml"))
    assert texts(s.user("hi")) == ["E-mail for billing?"]
    assert s.state.flow == "contact-info" and len(s.state.stack) == 1
    assert texts(s.user("a@b.c")) == ["Thanks a@b.c (collected)"]
    assert s.state.flow == "main" and s.log.ended == "resolved"


def test_goto_flow_hands_over_for_good() -> None:
    s = sim(
        flow(
            MAIN.replace("call:", "goto_flow:")
            .replace(", save_as: info", "")
            .replace(
                '  thanks: { say: "Thanks {{ vars.info.vars.email }} ({{ vars.info.status }})", end: resolved }\n', ""
            )
        ),
        flow(SUB, "sub.yaml"),
    )
    s.user("hi")
    s.user("a@b.c")
    assert s.log.ended == "collected" and s.state.flow == "contact-info" and s.state.stack == []


def test_call_to_a_missing_flow_takes_on_error() -> None:
    f = flow(MAIN.replace("save_as: info }", "save_as: info, on_error: sorry }") + "  sorry: { say: sorry }\n")
    s = sim(f)
    assert texts(s.user("hi")) == ["sorry"]
    assert s.log.faults[0].code == "unknown_flow"


def test_expression_errors_are_faults_that_take_on_error() -> None:
    s = sim(
        flow("""
        flow: bad
        steps:
          w: { wait: message }
          s: { say: "{{ vars.missing.upper() | int // 0 }}", on_error: e }
          e: { say: recovered, end: resolved }
    """)
    )
    assert texts(s.user("x")) == ["recovered"]
    assert s.log.faults[0].code == "expression_error" and s.log.faults[0].step == "s"


def test_runaway_guard_stops_a_flow_that_never_waits() -> None:
    # A loop the validator would reject, compiled directly to prove the runtime guard.
    looping = build_flow(
        {"flow": "loop", "steps": {"a": {"say": "again", "next": "b"}, "b": {"set": {"x": 1}, "next": "a"}}}
    )
    s = sim(looping)
    sent = s.user("go")
    assert len(sent) == 51  # every other step says something, until 100 steps ran; then the apology
    assert sent[-1].text.startswith("Sorry, something went wrong on our side")
    assert s.log.faults[-1].code == "runaway" and s.log.ended == "failed"
    linear = flow("flow: l\nsteps:\n" + "".join(f"  s{i}: {{ say: '{i}' }}\n" for i in range(5)))
    s = Simulator(
        InterpreterContext(FlowSet([linear]), limits=Limits(max_steps_per_turn=3)), linear, ai=no_ai, http=no_http
    )
    assert texts(s.user("go"))[:3] == ["0", "1", "2"] and s.log.faults[-1].code == "runaway"


def test_end_applies_set_then_ends_with_its_status() -> None:
    s = sim(
        flow("""
        flow: e
        steps:
          bye: { say: bye, set: { done: true }, end: resolved }
    """)
    )
    s.user("x")
    assert s.log.ended == "resolved" and s.state.vars == {"done": True} and s.state.end_status == "resolved"


def test_close_request_ends_a_waiting_conversation() -> None:
    f = flow(HANDOFF)
    ctx = InterpreterContext(FlowSet([f]))
    out = advance(ctx, begin(f, conversation={"id": "c"}, at=T0), MessageReceived({"id": "1", "text": "x"}, at=T0))
    closed = advance(ctx, out.state, CloseRequested("closed_by_agent", at=T0))
    kinds = [type(c) for c in closed.commands]
    assert CancelHandoff in kinds and EndConversation in kinds and closed.state.end_status == "closed_by_agent"


def test_the_same_events_give_the_same_commands_and_state_is_json() -> None:
    f = flow(ASK)
    ctx = InterpreterContext(FlowSet([f]))

    def play() -> tuple[list[dict[str, Any]], ConversationState]:
        state = begin(f, conversation={"id": "c"}, at=T0)
        commands: list[dict[str, Any]] = []
        for i, text in enumerate(["hi", "12", "1234567"]):
            out = advance(ctx, state, MessageReceived({"id": str(i), "text": text}, at=T0))
            commands += [to_dict(c) for c in out.commands]
            state = out.state
        return commands, state

    first, state = play()
    second, _ = play()
    assert first == second
    encoded = json.loads(json.dumps(state.to_dict()))
    assert ConversationState.from_dict(encoded) == state


def test_advance_does_not_modify_its_input_state() -> None:
    f = flow(ECHO)
    ctx = InterpreterContext(FlowSet([f]))
    state = begin(f, conversation={"id": "c"}, at=T0)
    before = json.dumps(state.to_dict())
    advance(ctx, state, MessageReceived({"id": "1", "text": "x"}, at=T0))
    assert json.dumps(state.to_dict()) == before


def test_a_new_revision_is_adopted_only_at_a_safe_point() -> None:
    old = flow(ECHO)
    new = flow(ECHO.replace("You said", "You wrote").replace("steps:", "vars: { n: 1 }\nsteps:"))
    ctx = InterpreterContext(FlowSet([old, new]))
    waiting = advance(
        ctx, begin(old, conversation={"id": "c"}, at=T0), MessageReceived({"id": "1", "text": "a"}, at=T0)
    )
    moved = adopt_revision(waiting.state, new)
    assert moved is not None and moved.revision == new.revision and moved.vars == {"n": 1}
    out = advance(ctx, moved, MessageReceived({"id": "2", "text": "b"}, at=T0))
    assert [c.text for c in out.commands if isinstance(c, SendText)] == ["You wrote: b"]
    renamed = flow(ECHO.replace("listen", "wait_here"))
    assert adopt_revision(waiting.state, renamed) is None  # its step is gone: finish on the old revision
    assert adopt_revision(waiting.state, old) is None  # same revision: nothing to do


def test_faults_name_the_flow_and_step() -> None:
    s = sim(flow(AI_FLOW), ai=ai_fail("failed"))
    s.user("x")
    fault = s.log.faults[0]
    assert isinstance(fault, Fault) and (fault.flow, fault.step) == ("bot", "answer")


def test_a_loop_that_pauses_is_not_a_runaway() -> None:
    s = sim(
        flow("""
        flow: poll
        vars: { n: 0 }
        steps:
          first: { wait: message }
          tick: { wait: 1m, set: { n: "vars.n + 1" } }
          check:
            switch: [{ if: "vars.n >= 60", goto: done }]
            default: tick
          done: { say: "ticked {{ vars.n }} times", end: resolved }
    """)
    )
    s.user("hi")
    assert texts(s.elapse(2 * 60 * 60_000)) == ["ticked 60 times"]
    assert s.log.faults == [] and s.log.ended == "resolved"


def test_messages_queued_before_a_handoff_go_to_the_agent() -> None:
    s = sim(
        flow("""
        flow: queued
        steps:
          first: { wait: message }
          pause: { wait: 1m }
          human: { handoff: support }
          feedback: { ask: "Did we solve it?", choices: ["Yes", "No"], save_as: solved }
          bye: { say: "you said {{ vars.solved }}", end: resolved }
    """)
    )
    s.user("hi")
    s.user("No")  # written during the pause, before anyone took over
    s.elapse(60_000)
    s.agent("accept")
    assert texts(s.agent("resolve")) == ["Did we solve it?"]
    assert s.state.step == "feedback" and s.log.ended is None


def test_a_failure_inside_a_sub_flow_takes_the_call_steps_on_error() -> None:
    caller = flow("""
        flow: caller
        steps:
          w: { wait: message }
          c: { call: failing-sub, save_as: sub, on_error: recover }
          fine: { say: fine, end: resolved }
          recover: { say: "recovered from {{ vars.sub.status }}", end: unresolved }
    """)
    failing = flow(
        """
        flow: failing-sub
        steps:
          get: { http: { url: "http://shop/x" } }
    """,
        "sub.yaml",
    )
    s = sim(caller, failing, http=lambda call, at: HttpFailed(call.call_id, "error", at, "refused"))
    assert texts(s.user("x")) == ["recovered from failed"]
    assert s.state.flow == "caller" and s.state.stack == [] and s.log.ended == "unresolved"
    assert [f.code for f in s.log.faults] == ["http_error"]


def test_advance_leaves_the_state_it_was_given_as_it_was() -> None:
    # The workflow keeps no copy of its own: the interpreter must not change its input.
    f = flow(
        """
        flow: pure
        vars: { seen: [] }
        steps:
          listen: { wait: message }
          note:
            set: { seen: "vars.seen + [message.text]" }
          reply: { say: "got {{ message.text }}", next: listen }
        """
    )
    ctx = InterpreterContext(FlowSet([f]))
    state = begin(f, conversation={"id": "c"}, contact={}, at=T0)
    for i in range(3):
        message = {"id": f"m{i}", "text": f"t{i}", "channel": "test", "flags": {}, "meta": {}}
        state = advance(ctx, state, MessageReceived(message=message, at=T0)).state
    before = json.dumps(state.to_dict(), sort_keys=True)
    message = {"id": "m9", "text": "last", "channel": "test", "flags": {}, "meta": {}}
    after = advance(ctx, state, MessageReceived(message=message, at=T0)).state
    assert json.dumps(state.to_dict(), sort_keys=True) == before
    assert after.vars["seen"] == ["t0", "t1", "t2", "last"]
    assert len(after.transcript) == len(state.transcript) + 2
