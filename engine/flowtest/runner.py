"""Flow tests: scripted conversations run through the interpreter, for ``flowdesk test``.

A test (``tests:`` in a flow file, or a ``*.test.yaml`` file) is a list of turns.
``user``/``elapse``/``agent`` turns act; ``bot`` turns match the bot's messages one
by one, in order; ``end``/``step``/``vars`` turns check the conversation's state.
Tests are strict: before every acting turn and after the last turn, every bot
message sent so far must have been matched by a ``bot`` turn, so a test never
passes while the bot says something nobody looked at.

The turns are played through a driver (:mod:`engine.flowtest.driver`): by default
in-process on a fake clock with scripted AI and HTTP results
(:mod:`engine.flowtest.offline`), so a test takes milliseconds; ``flowdesk test --live``
plays the same turns, matched and reported by the same code, through the runtime.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.errors import FlowdeskError
from engine.flow.compile import parse_duration
from engine.flow.context import FlowSet, FlowSettings, InterpreterContext
from engine.flow.model import CompiledFlow, StepKind
from engine.flow.public_settings import PublicSettings, interpreter_context
from engine.flow.validate import ProjectResult
from engine.flowtest.driver import DriverFactory, SimulatorDriver, TurnDriver
from engine.flowtest.report import (
    TestFailure,
    TestResult,
    bot_diff,
    bot_matches,
    equal_values,
    regex_problem,
    show,
    trace_line,
)
from engine.pipeline.runner import Pipelines

#: Turns that make something happen; the others only look.
ACTING_TURNS = frozenset({"user", "elapse", "agent"})


class _TestRun:
    """One test being played; each ``_turn_*`` method returns a failure or ``None``."""

    def __init__(self, flow: CompiledFlow, test: Mapping[str, Any], driver: TurnDriver) -> None:
        self.driver = driver
        self.root = flow.name
        self.turns: list[dict[str, Any]] = list(test["turns"])
        self.matched = 0  # bot messages matched by `bot` turns so far
        self.segment = 0  # index of the acting turn that opened the current segment (0: none yet)
        self.segment_sent = 0  # bot messages sent before that turn
        self.segment_trace = 0  # trace entries before that turn
        self.fault_turns: list[int] = []  # the acting turn each fault came from, once known

    def bot_texts(self) -> list[str]:
        # Agent messages are the test's own `agent: {say: ...}` turns; only the bot is checked.
        return self.driver.bot_texts()

    def play(self) -> TestFailure | None:
        for number, turn in enumerate(self.turns, 1):
            ((kind, value),) = turn.items()
            if kind in ACTING_TURNS:
                failure = self.all_matched(number)
                if failure is not None:
                    return failure
                self.open_segment(number)
            try:
                failure = getattr(self, f"_turn_{kind}")(number, value)
            except FlowdeskError as exc:
                failure = self.failure(number, f"the conversation stopped: {exc}")
            if failure is not None:
                return failure
        return self.all_matched(None)

    # -- bookkeeping ----------------------------------------------------------------------

    def open_segment(self, number: int) -> None:
        # Faults so far came from the previous acting turn.
        self.fault_turns += [self.segment] * (len(self.driver.faults()) - len(self.fault_turns))
        self.segment = number
        self.segment_sent = len(self.bot_texts())
        self.segment_trace = len(self.driver.trace())

    def faults(self) -> list[str]:
        """Every fault so far, with the acting turn that caused it."""
        out = []
        for index, fault in enumerate(self.driver.faults()):
            turn = self.fault_turns[index] if index < len(self.fault_turns) else self.segment
            where = f" at step {fault.step!r}" if fault.step else ""
            out.append(f"turn {turn}: {fault.code}{where}: {fault.message}")
        return out

    def failure(self, number: int | None, message: str, *, diff: bool = False) -> TestFailure:
        """A failure at turn ``number`` with the context of the current segment."""
        lines: list[str] = []
        if diff:
            # The segment's expectations: its `bot` turns, up to the next acting turn.
            expected = []
            for index in range(max(self.segment, 1) - 1, len(self.turns)):
                ((kind, value),) = self.turns[index].items()
                if kind in ACTING_TURNS and index + 1 != self.segment:
                    break
                if kind == "bot":
                    expected.append(str(value))
            lines = bot_diff(expected, self.bot_texts()[self.segment_sent :])
        trace = [trace_line(entry, self.root) for entry in self.driver.trace()[self.segment_trace :]]
        return TestFailure(
            turn=number,
            message=message,
            diff=tuple(lines),
            trace=tuple(trace),
            faults=tuple(self.faults()),
            notes=tuple(self.driver.notes()),
        )

    def all_matched(self, number: int | None) -> TestFailure | None:
        texts = self.bot_texts()
        if self.matched >= len(texts):
            return None
        extra = len(texts) - self.matched
        more = f" (and {extra - 1} more)" if extra > 1 else ""
        message = f"unexpected bot message {show(texts[self.matched])}{more}: add a `bot:` turn for every message"
        return self.failure(number, message, diff=True)

    def where(self) -> str:
        state = self.driver.look()
        if state.ended:
            return f"the conversation ended with {state.end_status!r}"
        if not state.started:
            return "the conversation has not started (it starts with the first `user:` turn)"
        if state.waiting_for is None:
            return f"it stopped at step {state.step!r}"
        step = f"step {state.step!r}" + (f" of flow {state.flow!r}" if state.flow != self.root else "")
        return f"it waits at {step} (for {'an agent' if state.waiting_for == 'agent' else state.waiting_for})"

    # -- turns ----------------------------------------------------------------------------

    def _turn_user(self, number: int, text: str) -> TestFailure | None:
        self.driver.user(str(text))
        return None

    def _turn_elapse(self, number: int, duration: str | int) -> TestFailure | None:
        milliseconds = parse_duration(duration)
        assert milliseconds is not None  # the schema requires a duration here
        self.driver.elapse(milliseconds)
        return None

    def _turn_agent(self, number: int, action: str | Mapping[str, Any]) -> TestFailure | None:
        name = "say" if isinstance(action, Mapping) else str(action)
        if self.driver.look().status != "handoff":
            return self.failure(number, f"the agent cannot {name}: the conversation is not handed off; {self.where()}")
        if isinstance(action, Mapping):
            self.driver.agent("say", text=str(action.get("say", "")))
        else:
            self.driver.agent(name)
        return None

    def _turn_bot(self, number: int, expected: str) -> TestFailure | None:
        problem = regex_problem(expected)
        if problem is not None:
            return self.failure(number, f"invalid regular expression {expected}: {problem}")
        texts = self.bot_texts()
        if self.matched >= len(texts):
            message = f"expected bot message {show(expected)}, but the bot sent nothing more; {self.where()}"
            return self.failure(number, message, diff=True)
        actual = texts[self.matched]
        if not bot_matches(expected, actual):
            message = f"bot message {show(actual)} does not match {show(expected)}"
            return self.failure(number, message, diff=True)
        self.matched += 1
        return None

    def _turn_end(self, number: int, status: str) -> TestFailure | None:
        state = self.driver.look()
        if not state.ended:
            return self.failure(number, f"expected the conversation to end with {status!r}, but {self.where()}")
        if state.end_status != status:
            return self.failure(
                number, f"expected the conversation to end with {status!r}, but it ended with {state.end_status!r}"
            )
        return None

    def _turn_step(self, number: int, name: str) -> TestFailure | None:
        state = self.driver.look()
        if state.ended or state.waiting_for is None or state.step != name:
            return self.failure(number, f"expected the conversation to wait at step {name!r}, but {self.where()}")
        return None

    def _turn_vars(self, number: int, expected: Mapping[str, Any]) -> TestFailure | None:
        actual = self.driver.look().vars
        wrong = []
        for name, value in expected.items():
            if name not in actual:
                wrong.append(f"vars.{name}: expected {show(value)}, but it is not set")
            elif not equal_values(value, actual[name]):
                wrong.append(f"vars.{name}: expected {show(value)}, got {show(actual[name])}")
        if wrong:
            return self.failure(number, "; ".join(wrong))
        return None


def run_flow_test(
    ctx: InterpreterContext,
    flow: CompiledFlow,
    test: Mapping[str, Any],
    *,
    settings: FlowSettings | None = None,
    file: str | None = None,
    pipelines: Pipelines | None = None,
    driver: DriverFactory = SimulatorDriver,
) -> TestResult:
    """Play one test (its validated mapping) against ``flow``.

    ``settings`` replaces the public settings of ``ctx`` when given; ``file`` is where
    the test was written (default: the flow's file); ``driver`` makes what plays the
    turns (default: the in-process simulator).
    """
    if settings is not None:
        ctx = replace(ctx, settings=settings)
    name = str(test.get("name", "?"))
    started = time.perf_counter()
    try:
        failure = _TestRun(flow, test, driver(ctx, flow, test, pipelines)).play()
    except Exception as exc:  # a bug in Flowdesk must not hide the other tests' results
        failure = TestFailure(turn=None, message=f"internal error ({type(exc).__name__}: {exc}); please report it")
    elapsed = (time.perf_counter() - started) * 1000
    return TestResult(flow.name, name, file or flow.file, failure, round(elapsed, 3))


def _unknown_mocks(flow: CompiledFlow, test: Mapping[str, Any]) -> str | None:
    # What FD211 checks for `tests:` inside a flow, checked here for *.test.yaml files,
    # whose flow is only known once every file is loaded.
    kinds = {
        "ai": {n for n, s in flow.steps.items() if s.kind in (StepKind.AI, StepKind.CLASSIFY)},
        "http": {n for n, s in flow.steps.items() if s.kind is StepKind.HTTP},
    }
    for family, names in kinds.items():
        for step in (test.get("mock") or {}).get(family) or {}:
            if step not in names:
                known = ", ".join(sorted(names)) or "none"
                return f"mock.{family}.{step}: {step!r} is not an {family} step of flow {flow.name!r} ({known})"
    return None


def run_tests(
    project: ProjectResult,
    *,
    settings: PublicSettings | None = None,
    keyword: str | None = None,
    pipelines: Pipelines | None = None,
    driver: DriverFactory = SimulatorDriver,
) -> list[TestResult]:
    """Run every test of a validated project: ``tests:`` of each flow, then ``*.test.yaml`` files.

    ``keyword`` keeps the tests whose ``flow-id: name`` contains it (any case). A test
    file for a flow that is not among the flows is one failed result. ``driver``
    plays each test (see :func:`run_flow_test`).
    """
    flows = FlowSet([r.flow for r in project.flows if r.flow is not None])
    ctx = interpreter_context(flows, settings)
    wanted = (keyword or "").casefold()

    def selected(flow: str, name: str) -> bool:
        return wanted in f"{flow}: {name}".casefold()

    results: list[TestResult] = []
    for compiled in project.flows:
        if compiled.flow is None:
            continue
        for test in compiled.flow.tests:
            if selected(compiled.flow.name, test.name):
                results.append(run_flow_test(ctx, compiled.flow, test.data, pipelines=pipelines, driver=driver))
    for test_file in project.test_files:
        if test_file.flow_id is None:
            continue  # invalid: validation reported it
        names = [str(t.get("name", "?")) for t in test_file.tests]
        flow = flows.get(test_file.flow_id)
        if flow is None:
            if any(selected(test_file.flow_id, n) for n in names):
                known = ", ".join(flows.names()) or "none"
                message = (
                    f"{test_file.file} has tests for flow {test_file.flow_id!r}, which is not among the "
                    f"flows given (known: {known}); pass its flow file or directory too"
                )
                failure = TestFailure(turn=None, message=message)
                results.append(
                    TestResult(test_file.flow_id, f"{len(names)} test(s) in {test_file.file}", test_file.file, failure)
                )
            continue
        for data in test_file.tests:
            name = str(data.get("name", "?"))
            if not selected(flow.name, name):
                continue
            problem = _unknown_mocks(flow, data)
            if problem is not None:
                results.append(TestResult(flow.name, name, test_file.file, TestFailure(turn=None, message=problem)))
                continue
            results.append(run_flow_test(ctx, flow, data, file=test_file.file, pipelines=pipelines, driver=driver))
    return results


__all__ = ["ACTING_TURNS", "TestFailure", "TestResult", "run_flow_test", "run_tests"]
