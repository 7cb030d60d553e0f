"""The flow test runner: what passes, and what a failing test tells the person who wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.flow.context import FlowSet, FlowSettings, InterpreterContext
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_paths, compile_source
from engine.flowtest.report import TestResult, bot_diff
from engine.flowtest.runner import run_flow_test, run_tests

SHOP = """
flow: shop
vars: {attempts: 0}
ai:
  helpdesk:
    providers: [{use: openai, model: gpt-4o-mini}]
steps:
  greet:
    say: "Hi {{ contact.name or 'there' }}! How can I help?"
    next: listen
  listen:
    wait: message
    timeout: 30m
    on_timeout: close
    next: route
  route:
    switch:
      - if: "message.text is matching('(?i)refund')"
        goto: refund
      - if: "message.text is matching('(?i)human')"
        goto: human
      - if: "message.text is matching('(?i)question')"
        goto: answer
    default: echo
  echo:
    say: "You said: {{ message.text }}"
    next: listen
  answer:
    ai: helpdesk
    on_error: sorry
    next: listen
  refund:
    ask: "What's your order number?"
    save_as: order_id
    expect: "answer is matching('^[0-9]{6,12}$')"
    retry_prompt: "Order numbers have 6 to 12 digits."
    on_fail: human
    next: lookup
  lookup:
    http: {url: "https://shop.example/orders/{{ vars.order_id }}"}
    save_as: order
    on_error: sorry
    next: done
  done:
    say: "Order {{ vars.order.id }} is {{ vars.order.status }}."
    set: {attempts: "vars.attempts + 1"}
    next: listen
  sorry:
    say: "Sorry, I cannot help with that right now."
    next: listen
  human:
    handoff: {queue: tier1, timeout: 10m}
    say: "Connecting you to a colleague..."
    on_timeout: sorry
    next: listen
  close:
    say: "Closing this chat. Thanks!"
    end: resolved
"""

ORDER = {"http": {"lookup": {"id": "1234567", "status": "shipped"}}}


@pytest.fixture(name="fx_shop", scope="module")
def fixture_shop() -> CompiledFlow:
    result = compile_source(SHOP, "shop.yaml")
    assert result.flow is not None, [d.format() for d in result.diagnostics]
    return result.flow


def play(flow: CompiledFlow, turns: list[dict[str, Any]], **test: Any) -> TestResult:
    ctx = InterpreterContext(FlowSet([flow]))
    return run_flow_test(ctx, flow, {"name": "t", "turns": turns, **test})


def failure_text(result: TestResult) -> str:
    assert result.failure is not None, "the test passed"
    return "\n".join(result.failure.lines())


def test_happy_path_passes(fx_shop: CompiledFlow) -> None:
    result = play(
        fx_shop,
        [
            {"user": "I want a refund"},
            {"bot": "Hi Ann! How can I help?"},
            {"bot": "What's your order number?"},
            {"user": "1234567"},
            {"bot": "/Order 1234567 is shipped/"},
            {"vars": {"order_id": "1234567", "attempts": 1}},
            {"step": "listen"},
        ],
        mock=ORDER,
        contact={"name": "Ann"},
    )
    assert result.passed, failure_text(result)
    assert result.label == "shop: t"


def test_wrong_bot_message_reports_turn_and_diff(fx_shop: CompiledFlow) -> None:
    result = play(
        fx_shop,
        [{"user": "refund please"}, {"bot": "/How can I help/"}, {"bot": "What's your order?"}],
    )
    assert result.failure is not None
    assert result.failure.turn == 3
    assert result.failure.message == ('bot message "What\'s your order number?" does not match "What\'s your order?"')
    assert list(result.failure.diff) == [
        "  Hi there! How can I help?",
        "- What's your order?",
        "+ What's your order number?",
    ]
    # the step trace of the failing turn (the `user` turn that produced the messages)
    assert "→ refund (ask)" in result.failure.trace
    assert failure_text(result).startswith("turn 3: bot message")


def test_missing_bot_message(fx_shop: CompiledFlow) -> None:
    turns = [{"user": "hello"}, {"bot": "/How can I help/"}, {"bot": "You said: hello"}, {"bot": "More?"}]
    result = play(fx_shop, turns)
    assert result.failure is not None and result.failure.turn == 4
    assert "the bot sent nothing more" in result.failure.message
    assert "it waits at step 'listen' (for message)" in result.failure.message
    assert result.failure.diff[-1] == "- More?"


def test_regex_turns_search_anywhere(fx_shop: CompiledFlow) -> None:
    passing = play(fx_shop, [{"user": "hello"}, {"bot": "/help/"}, {"bot": r"/^You said: \w+$/"}])
    assert passing.passed, failure_text(passing)
    failing = play(fx_shop, [{"user": "hello"}, {"bot": "/^help/"}])
    assert failing.failure is not None and 'does not match "/^help/"' in failing.failure.message


def test_invalid_regex_is_a_clear_failure(fx_shop: CompiledFlow) -> None:
    result = play(fx_shop, [{"user": "hello"}, {"bot": "/(unclosed/"}])
    assert result.failure is not None and result.failure.turn == 2
    assert result.failure.message.startswith("invalid regular expression /(unclosed/:")


def test_unexpected_bot_message_before_the_next_user_turn(fx_shop: CompiledFlow) -> None:
    result = play(fx_shop, [{"user": "hello"}, {"bot": "/How can I help/"}, {"user": "again"}])
    assert result.failure is not None and result.failure.turn == 3
    assert result.failure.message.startswith('unexpected bot message "You said: hello"')
    assert "+ You said: hello" in result.failure.diff


def test_unexpected_bot_message_after_the_last_turn(fx_shop: CompiledFlow) -> None:
    result = play(fx_shop, [{"user": "hello"}])
    assert result.failure is not None and result.failure.turn is None
    assert 'unexpected bot message "Hi there! How can I help?" (and 1 more)' in result.failure.message
    assert failure_text(result).startswith("after the last turn: unexpected bot message")


def test_elapse_fires_the_wait_timeout(fx_shop: CompiledFlow) -> None:
    turns = [{"user": "hello"}, {"bot": "/help/"}, {"bot": "/You said/"}]
    early = play(fx_shop, [*turns, {"elapse": "29m"}, {"step": "listen"}])
    assert early.passed, failure_text(early)
    due = play(fx_shop, [*turns, {"elapse": "30m"}, {"bot": "Closing this chat. Thanks!"}, {"end": "resolved"}])
    assert due.passed, failure_text(due)


def test_agent_turns_through_a_handoff(fx_shop: CompiledFlow) -> None:
    result = play(
        fx_shop,
        [
            {"user": "human please"},
            {"bot": "/How can I help/"},
            {"bot": "Connecting you to a colleague..."},
            {"step": "human"},
            {"agent": "accept"},
            {"agent": {"say": "Hi, Bob here."}},  # the agent's own words need no `bot:` turn
            {"user": "thanks Bob"},
            {"agent": "resolve"},
            {"step": "listen"},
            {"elapse": "10m"},  # the hand-off timer was cancelled: nothing fires
            {"step": "listen"},
        ],
    )
    assert result.passed, failure_text(result)


def test_handoff_timeout_takes_on_timeout(fx_shop: CompiledFlow) -> None:
    result = play(
        fx_shop,
        [
            {"user": "human"},
            {"bot": "/help/"},
            {"bot": "/colleague/"},
            {"elapse": "10m"},
            {"bot": "Sorry, I cannot help with that right now."},
            {"step": "listen"},
        ],
    )
    assert result.passed, failure_text(result)


def test_agent_turn_without_handoff_fails(fx_shop: CompiledFlow) -> None:
    result = play(fx_shop, [{"user": "hello"}, {"bot": "/help/"}, {"bot": "/said/"}, {"agent": "accept"}])
    assert result.failure is not None and result.failure.turn == 4
    assert result.failure.message == (
        "the agent cannot accept: the conversation is not handed off; it waits at step 'listen' (for message)"
    )


def test_end_step_and_vars_failures(fx_shop: CompiledFlow) -> None:
    base = [{"user": "hello"}, {"bot": "/help/"}, {"bot": "/said/"}]
    not_ended = play(fx_shop, [*base, {"end": "resolved"}])
    assert not_ended.failure is not None
    assert not_ended.failure.message == (
        "expected the conversation to end with 'resolved', but it waits at step 'listen' (for message)"
    )
    other_status = play(fx_shop, [*base, {"elapse": "1h"}, {"bot": "/Closing/"}, {"end": "abandoned"}])
    assert other_status.failure is not None
    assert other_status.failure.message == (
        "expected the conversation to end with 'abandoned', but it ended with 'resolved'"
    )
    wrong_step = play(fx_shop, [*base, {"step": "refund"}])
    assert wrong_step.failure is not None
    assert wrong_step.failure.message.startswith("expected the conversation to wait at step 'refund', but it waits")
    wrong_vars = play(fx_shop, [*base, {"vars": {"attempts": "0", "missing": True}}])
    assert wrong_vars.failure is not None
    # JSON rendering makes "0" (text) and 0 (number) look different
    assert wrong_vars.failure.message == (
        'vars.attempts: expected "0", got 0; vars.missing: expected true, but it is not set'
    )


def test_vars_true_is_not_one(fx_shop: CompiledFlow) -> None:
    result = play(fx_shop, [{"user": "hi"}, {"bot": "/help/"}, {"bot": "/said/"}, {"vars": {"attempts": False}}])
    assert result.failure is not None and "vars.attempts: expected false, got 0" in result.failure.message


def test_fault_shows_in_the_failure_output(fx_shop: CompiledFlow) -> None:
    # No http mock: the lookup fails, the flow apologises, the test expected the order.
    result = play(
        fx_shop,
        [
            {"user": "refund"},
            {"bot": "/help/"},
            {"bot": "/order number/"},
            {"user": "1234567"},
            {"bot": "/is shipped/"},
        ],
    )
    text = failure_text(result)
    assert "turn 4: http_error at step 'lookup': no mock for http step 'lookup'" in text
    assert "- /is shipped/" in text
    assert "+ Sorry, I cannot help with that right now." in text
    assert "  → lookup (http)" in text


def test_ai_mocks_and_offline_notes(fx_shop: CompiledFlow) -> None:
    turns = [{"user": "a question"}, {"bot": "/help/"}]
    mocked = play(fx_shop, [*turns, {"bot": "It ships tomorrow."}], mock={"ai": {"answer": "It ships tomorrow."}})
    assert mocked.passed, failure_text(mocked)
    failed = play(fx_shop, [*turns, {"bot": "/Sorry/"}], mock={"ai": {"answer": {"error": "timeout"}}})
    assert failed.passed, failure_text(failed)
    unmocked = play(fx_shop, [*turns, {"bot": "It ships tomorrow."}])
    text = failure_text(unmocked)
    assert "skipped openai (needs a network; mock it with mock.ai.answer)" in text


def test_a_crash_in_the_interpreter_is_a_failure_not_a_traceback(fx_shop: CompiledFlow) -> None:
    ctx = InterpreterContext(FlowSet([]))  # the flow is missing from the context
    result = run_flow_test(ctx, fx_shop, {"name": "t", "turns": [{"user": "hi"}]})
    assert result.failure is not None and result.failure.turn == 1
    assert "the conversation stopped: flow 'shop'" in result.failure.message


def test_settings_are_visible_to_the_flow(tmp_path: Path) -> None:
    flow = compile_source("flow: hello\nsteps:\n  hi: {say: 'Welcome to {{ settings.brand }}'}\n").flow
    assert flow is not None
    ctx = InterpreterContext(FlowSet([flow]))
    test = {"name": "brand", "turns": [{"user": "x"}, {"bot": "Welcome to Acme"}, {"end": "completed"}]}
    assert run_flow_test(ctx, flow, test, settings=FlowSettings(brand="Acme")).passed


def test_bot_diff_aligns_a_missing_message() -> None:
    assert bot_diff(["a", "b", "/c+/"], ["a", "ccc"]) == ["  a", "- b", "  ccc"]
    assert bot_diff([], []) == ["  (no bot messages expected or sent)"]


# -- whole projects -----------------------------------------------------------------------

TINY = """
flow: tiny
steps:
  hi: {say: "Hello!", next: listen}
  listen: {wait: message, next: echo}
  echo: {say: "Echo: {{ message.text }}", next: listen}
tests:
  - name: greets
    turns: [{user: hi}, {bot: Hello!}, {bot: "Echo: hi"}]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_run_tests_covers_flow_files_and_test_files(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    write(
        tmp_path / "tiny.test.yaml",
        "flow: tiny\ntests:\n  - name: echoes\n    turns: [{user: yo}, {bot: Hello!}, {bot: 'Echo: yo'}]\n"
        "  - name: wrong\n    turns: [{user: yo}, {bot: Hello!}, {bot: 'Echo: no'}]\n",
    )
    project = compile_paths([tmp_path])
    assert project.ok
    results = run_tests(project)
    assert [(r.label, r.passed) for r in results] == [
        ("tiny: greets", True),
        ("tiny: echoes", True),
        ("tiny: wrong", False),
    ]
    assert results[1].file.endswith("tiny.test.yaml")
    assert [r.label for r in run_tests(project, keyword="ECHO")] == ["tiny: echoes"]


def test_test_file_for_an_unknown_flow_fails(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    write(tmp_path / "ghost.test.yaml", "flow: ghost\ntests:\n  - name: a\n    turns: [{user: hi}]\n")
    results = run_tests(compile_paths([tmp_path]))
    ghost = [r for r in results if r.flow == "ghost"]
    assert len(ghost) == 1 and ghost[0].failure is not None
    assert "has tests for flow 'ghost', which is not among the flows given (known: tiny)" in ghost[0].failure.message


def test_test_file_mocking_an_unknown_step_fails(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    write(
        tmp_path / "tiny.test.yaml",
        "flow: tiny\ntests:\n  - name: m\n    mock: {http: {lokup: {}}}\n    turns: [{user: hi}]\n",
    )
    result = next(r for r in run_tests(compile_paths([tmp_path])) if r.name == "m")
    assert result.failure is not None
    assert result.failure.message == "mock.http.lokup: 'lokup' is not an http step of flow 'tiny' (none)"


def test_call_into_another_flow(tmp_path: Path) -> None:
    write(
        tmp_path / "main.yaml",
        "flow: main\nsteps:\n  listen: {wait: message}\n  ask_name: {call: naming, save_as: sub, next: bye}\n"
        '  bye: {say: "Bye {{ vars.sub.vars.name }}"}\n'
        "tests:\n  - name: sub-flow\n    turns: [{user: hi}, {bot: 'Name?'}, {step: q}, {user: Ann}, {bot: Bye Ann},"
        " {end: completed}]\n",
    )
    write(tmp_path / "naming.yaml", 'flow: naming\nsteps:\n  q: {ask: "Name?", save_as: name}\n')
    project = compile_paths([tmp_path])
    assert project.ok, [d.format() for d in project.diagnostics]
    (result,) = run_tests(project)
    assert result.passed, failure_text(result)


def test_http_mocks_follow_the_schema(fx_shop: CompiledFlow) -> None:
    turns = [{"user": "refund"}, {"bot": "/help/"}, {"bot": "/order number/"}, {"user": "1234567"}]
    # a mapping with more keys than status/body is a 200 body, even with a numeric `status`
    body = play(
        fx_shop, [*turns, {"bot": "Order 1234567 is 3."}], mock={"http": {"lookup": {"id": "1234567", "status": 3}}}
    )
    assert body.passed, failure_text(body)
    error = play(fx_shop, [*turns, {"bot": "/Sorry/"}, {"end": "resolved"}], mock={"http": {"lookup": {"status": 500}}})
    assert error.failure is not None
    assert "turn 4: http_status at step 'lookup': HTTP 500 from step 'lookup'" in error.failure.faults
