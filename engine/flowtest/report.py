"""Results of flow tests and how a failure reads: a turn, a message, a diff, a trace.

Kept apart from the runner (:mod:`engine.flowtest.runner`) so that ``flowdesk try``
can show steps the same way and so that output formats stay in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from engine.flow.events import TraceEntry


@dataclass(frozen=True)
class TestFailure:
    """Why a test failed: at which turn (``None``: after the last turn), and the context."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite its name

    turn: int | None
    message: str
    #: the bot messages of the failing segment, ``- expected`` / ``+ actual`` / ``  both``
    diff: tuple[str, ...] = ()
    #: the steps the failing segment's acting turn ran
    trace: tuple[str, ...] = ()
    #: every fault of the conversation so far, with its turn
    faults: tuple[str, ...] = ()
    #: notes of the offline AI (providers skipped because they need a network)
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The failure as indented text lines, for the terminal."""
        where = f"turn {self.turn}" if self.turn is not None else "after the last turn"
        out = [f"{where}: {self.message}"]
        if self.diff:
            out += ["bot messages (- expected, + actual):", *(f"  {line}" for line in self.diff)]
        if self.faults:
            out += ["faults:", *(f"  {fault}" for fault in self.faults)]
        if self.trace:
            out += ["steps run:", *(f"  {line}" for line in self.trace)]
        if self.notes:
            out += ["notes:", *(f"  {note}" for note in self.notes)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "message": self.message,
            "diff": list(self.diff),
            "trace": list(self.trace),
            "faults": list(self.faults),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test."""

    __test__: ClassVar[bool] = False

    flow: str
    name: str
    file: str
    failure: TestFailure | None = None
    duration_ms: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def label(self) -> str:
        """``flow-id: test name``, as the report and ``-k`` see it."""
        return f"{self.flow}: {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "name": self.name,
            "file": self.file,
            "passed": self.passed,
            "duration_ms": self.duration_ms,
            "failure": self.failure.to_dict() if self.failure else None,
        }


# -- matching bot messages ------------------------------------------------------------


def is_regex(expected: str) -> bool:
    """``/.../`` is a regular expression; anything else is the exact text."""
    return len(expected) >= 2 and expected.startswith("/") and expected.endswith("/")


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regex_problem(expected: str) -> str | None:
    """Why a ``/regex/`` expectation does not compile, or ``None``."""
    if not is_regex(expected):
        return None
    try:
        _compiled(expected[1:-1])
    except re.error as exc:
        return str(exc)
    return None


def bot_matches(expected: str, actual: str) -> bool:
    """Whether a bot message satisfies a ``bot:`` turn (exact after strip, or regex search)."""
    if is_regex(expected):
        if regex_problem(expected) is not None:
            return False
        return _compiled(expected[1:-1]).search(actual) is not None
    return expected.strip() == actual.strip()


def show(value: Any) -> str:
    """A value as a person reads it in a report: JSON, so ``"1"`` and ``1`` differ."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n")


def bot_diff(expected: list[str], actual: list[str]) -> list[str]:
    """Lines ``- expected`` / ``+ actual`` / ``  matched``, aligned on the longest match.

    Alignment uses the same rule as the test (regex or exact), so a missing message
    in the middle shows as one ``-`` line rather than every later line differing.
    """
    n, m = len(expected), len(actual)
    common = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if bot_matches(expected[i], actual[j]):
                common[i][j] = common[i + 1][j + 1] + 1
            else:
                common[i][j] = max(common[i + 1][j], common[i][j + 1])
    out: list[str] = []
    i = j = 0
    while i < n and j < m:
        if bot_matches(expected[i], actual[j]) and common[i][j] == common[i + 1][j + 1] + 1:
            out.append(f"  {_one_line(actual[j])}")
            i, j = i + 1, j + 1
        elif common[i + 1][j] >= common[i][j + 1]:
            out.append(f"- {_one_line(expected[i])}")
            i += 1
        else:
            out.append(f"+ {_one_line(actual[j])}")
            j += 1
    out += [f"- {_one_line(e)}" for e in expected[i:]]
    out += [f"+ {_one_line(a)}" for a in actual[j:]]
    if not out:
        out.append("  (no bot messages expected or sent)")
    return out


def equal_values(expected: Any, actual: Any) -> bool:
    """Equality for ``vars:`` checks where ``true`` is not ``1`` (Python says it is)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(equal_values(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(equal_values(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)


def trace_line(entry: TraceEntry, root: str) -> str:
    """``→ refund (ask)`` for a step, ``· refund: note`` for a note; other flows are named."""
    step = entry.step if entry.flow == root else f"{entry.flow}/{entry.step}"
    if entry.kind == "note":
        return f"· {step}: {entry.note}"
    return f"→ {step} ({entry.kind})"


__all__ = [
    "TestFailure",
    "TestResult",
    "bot_diff",
    "bot_matches",
    "equal_values",
    "is_regex",
    "regex_problem",
    "show",
    "trace_line",
]
