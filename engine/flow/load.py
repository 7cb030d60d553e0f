"""A flow file's bytes -> plain data plus the source position of every key and value.

Decoding (UTF-8, binary detection), the size limit and parser errors worded for
people live here; building data from YAML events (duplicate keys, aliases, depth,
tags, YAML 1.2 scalars) lives in :mod:`engine.flow.yaml_events`. Every problem
becomes a diagnostic at ``file:line:col``, never a traceback or a hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Diagnostic, FlowdeskError
from engine.flow.codes import make
from engine.flow.yaml_events import DataBuilder, EventLoader, LoadProblem, Path, Position

#: Flow files above this size are refused before parsing (a flow is a page or two).
MAX_BYTES = 1_000_000
#: Upper bound on nodes built, counting every alias expansion ("billion laughs").
MAX_NODES = 100_000
#: Upper bound on nesting depth.
MAX_DEPTH = 64

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "LoadedDocument", "Path", "Position", "json_path", "load_document"]


@dataclass
class LoadedDocument:
    """The data of one YAML file and where each part of it was written."""

    file: str
    text: str
    data: Any
    #: position of each value, by its path from the root
    values: dict[Path, Position] = field(default_factory=dict)
    #: position of each mapping key, by the path of the value it introduces
    keys: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> Position:
        """Where ``path`` was written; falls back to the nearest written ancestor."""
        probe = tuple(path)
        while True:
            table = self.keys if key else self.values
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            if not probe:
                return Position(1, 1)
            probe = probe[:-1]


def json_path(path: Path) -> str:
    """``('steps', 'refund', 'ask')`` -> ``$.steps.refund.ask``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


class _LoadFailed(FlowdeskError):
    """The file cannot be read as text at all; ``diagnostic`` says why (caught in this module)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.message)


def _decode(raw: bytes | str, file: str) -> str:
    if isinstance(raw, str):
        return raw
    if b"\x00" in raw[:8000]:
        raise _LoadFailed(make("FD100", "the file is binary, not YAML text", file=file, line=1, column=1))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _LoadFailed(
            make(
                "FD100",
                f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                file=file,
                line=line,
                column=column,
            )
        ) from None


def _clamp(text: str, line: int, column: int) -> tuple[int, int]:
    """Keep a position inside the file (parsers report end of stream past the last line)."""
    lines = text.splitlines() or [""]
    if line > len(lines):
        return len(lines), len(lines[-1]) + 1
    return max(line, 1), max(column, 1)


def _inside(text: str, positions: dict[Path, Position]) -> dict[Path, Position]:
    """Positions moved inside the file: an empty value at the very end (``? flow``) is
    reported by the parser on the line after the last."""
    lines = text.splitlines() or [""]
    last = Position(len(lines), len(lines[-1]) + 1)
    return {path: pos if pos.line <= len(lines) else last for path, pos in positions.items()}


def _mark(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _char_at(lines: list[str], line: int, column: int) -> str:
    return lines[line - 1][column - 1 : column] if 0 < line <= len(lines) else ""


def _yaml_error(exc: yaml.YAMLError, text: str, file: str) -> Diagnostic:
    """A parser error in words a person acts on, at the spot they must look."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return make(
            "FD100",
            f"the file contains a control character YAML does not allow ({char})",
            file=file,
            line=line,
            column=column,
            hint="delete the invisible character (often pasted from another program)",
        )
    problem = str(getattr(exc, "problem", None) or exc)
    context = str(getattr(exc, "context", None) or "")
    line, column = _mark(getattr(exc, "problem_mark", None))
    opened = _mark(getattr(exc, "context_mark", None))
    message, hint = f"{context}, {problem}" if context else problem, None
    lines = text.splitlines()
    at_char = lines[line - 1][column - 1 : column] if 0 < line <= len(lines) else ""
    if "unknown escape" in problem:
        escape = lines[line - 1][column - 1 : column + 1] if 0 < line <= len(lines) else "\\"
        message = f'`{escape}` is not an escape YAML knows: in double quotes a backslash starts one, like \\n or \\"'
        hint = f"use single quotes, where a backslash is only a backslash ('{escape}'), or write it twice (\\{escape})"
    elif "scanning an alias" in context and _char_at(lines, *opened) == "*":
        (line, column), message = opened, "a bare `*` starts an alias (`*name`) in YAML"
        hint = 'quote it: "*" (e.g. `channels: ["*"]` for every channel)'
    elif "quoted scalar" in context:
        (line, column), message = opened, "this quoted text is never closed"
        hint = "add the closing quote, or escape a quote inside the text"
    elif "flow sequence" in context:
        (line, column), message = opened, "this list is never closed: expected ',' or ']'"
        hint = "close the list with ']' (or write one item per line with '- ')"
    elif "flow mapping" in context:
        (line, column), message = opened, "this mapping is never closed: expected ',' or '}'"
        hint = "close the mapping with '}'"
    elif "nesting depth" in problem:
        return make("FD105", "the document is nested too deeply", file=file, line=line, column=column)
    elif at_char == "\t":
        message, hint = "a tab ('\\t') is used for indentation", "YAML indents with spaces, not tabs"
    elif "block mapping" in context or "<block end>" in problem or "expected key" in problem:
        message = "the indentation of this line does not match the keys above it"
        hint = "give every key of one mapping the same indentation"
    elif "mapping values are not allowed" in problem:
        message = "mapping values are not allowed here: ': ' inside plain text starts a mapping"
        hint = "quote text that contains ': ', or indent the nested mapping"
    line, column = _clamp(text, line, column)
    return make("FD101", message, file=file, line=line, column=column, hint=hint)


def load_document(raw: bytes | str, file: str = "<flow>") -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Parse one YAML document; returns the document or the diagnostics that stop it."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_BYTES:
        return None, [
            make(
                "FD104",
                f"the file is {size / 1_000_000:.1f} MB; flow files are limited to {MAX_BYTES // 1000} KB",
                file=file,
                line=1,
                column=1,
            )
        ]
    text = ""
    try:
        text = _decode(raw, file)
        loader = EventLoader(text)
        try:
            builder = DataBuilder(loader, max_nodes=MAX_NODES, max_depth=MAX_DEPTH)
            found, data = builder.document()
        finally:
            loader.dispose()
    except _LoadFailed as failed:
        return None, [failed.diagnostic]
    except LoadProblem as problem:
        line, column = _clamp(text, problem.position.line, problem.position.column)
        diagnostic = make(
            problem.code,
            problem.message,
            file=file,
            line=line,
            column=column,
            path=json_path(problem.path),
            hint=problem.hint,
        )
        return None, [diagnostic]
    except yaml.YAMLError as exc:
        return None, [_yaml_error(exc, text, file)]
    if not found or data is None:
        return None, [make("FD103", "the file is empty", file=file, line=1, column=1)]
    values, keys = _inside(text, builder.values), _inside(text, builder.keys)
    return LoadedDocument(file=file, text=text, data=data, values=values, keys=keys), []
