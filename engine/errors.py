"""Flowdesk's one error tree.

::

    FlowdeskError                 base of everything Flowdesk raises on purpose
    ├── ConfigError               flowdesk.yaml / FLOWDESK_* settings are wrong
    ├── FlowError                 a flow file does not compile; carries Diagnostics
    ├── ExpressionError           an expression failed to compile or evaluate
    ├── FlowRuntimeError          a conversation cannot go on (missing flow, runaway)
    └── PluginError               a connector/processor plugin failed to load

A :class:`Diagnostic` is a located, coded message about a flow file: it is what
``flowdesk validate`` prints and what the API returns; it is data, not an exception.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a diagnostic is: errors stop a flow from going live, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a flow file, located at ``file:line:column``."""

    code: str
    severity: Severity
    message: str
    hint: str
    file: str
    line: int
    column: int
    path: str = "$"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self, *, with_hint: bool = True) -> str:
        """Compiler-style text: ``file:line:col: CODE severity: message``."""
        text = f"{self.file}:{self.line}:{self.column}: {self.code} {self.severity.value}: {self.message}"
        if with_hint and self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


class FlowdeskError(Exception):
    """Base of every error Flowdesk raises on purpose."""


class ConfigError(FlowdeskError):
    """Settings are missing or invalid; ``diagnostics`` locates the problems when a file had them."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class FlowError(FlowdeskError):
    """A flow file failed to compile; ``diagnostics`` says where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.is_error] or diagnostics
        first = errors[0].format(with_hint=False) if errors else "invalid flow"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ExpressionError(FlowdeskError):
    """An expression or template failed to compile or to evaluate."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        self.source = source
        self.line = line
        super().__init__(message)


class FlowRuntimeError(FlowdeskError):
    """A conversation cannot continue: a missing flow, a runaway loop, a bad event."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class PluginError(FlowdeskError):
    """A plugin (channel, AI provider, processor) could not be loaded."""
