"""Pieces of ``flowdesk try``: loading the flow and mocks, and printing a turn."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from engine.errors import ConfigError
from engine.flow.compile import parse_duration
from engine.flow.events import Fault, SendText, TraceEntry
from engine.flow.load import load_document
from engine.flow.model import CompiledFlow
from engine.flow.schema_check import schema_check, schema_diagnostics
from engine.flow.validate import FLOW_SUFFIXES, TEST_SUFFIXES, compile_paths, is_data_file
from engine.flowtest.report import trace_line

SLASH_HELP = """\
commands:
  /wait DURATION       let time pass (30s, 10m, 2h), firing timeouts that fall due
  /agent accept        play the agent: take the hand-off
  /agent say TEXT      play the agent: send TEXT to the customer
  /agent resolve       play the agent: hand the conversation back to the flow
  /state               show where the conversation is and its variables
  /restart             start a new conversation
  /quit                leave (Ctrl-D too)
  //text               send a message that starts with '/'"""


def parse_wait(text: str) -> int | None:
    """Milliseconds of a ``/wait`` argument (``30m``, ``90s``, bare seconds), or ``None``."""
    try:
        value: str | int = int(text) if text.isdigit() else text
        return parse_duration(value)
    except ValueError:
        return None


# -- loading ------------------------------------------------------------------------------


def load_mocks(path: Path) -> dict[str, dict[str, object]]:
    """A ``--mock`` file: ``{ai: {step: reply}, http: {step: body}}``; raises ConfigError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read mock file {path}: {exc.strerror or exc}") from None
    doc, problems = load_document(raw, str(path))
    if doc is None:
        if [p.code for p in problems] == ["FD103"]:
            return {}
        raise ConfigError("\n".join(p.format() for p in problems))
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}:1:1: a mock file is a mapping with `ai:` and/or `http:` (step name -> result)")
    # The `mock:` of a test, validated on its own: the flow schema with its root swapped.
    problems = schema_diagnostics(doc, schema_check("flow.schema.json", "mock"))
    if problems:
        raise ConfigError(f"invalid mock file {path}:\n" + "\n".join(p.format() for p in problems))
    return {family: dict(doc.data.get(family) or {}) for family in ("ai", "http")}


def _sibling_flows(path: Path) -> list[Path]:
    """Flow files next to ``path`` (not recursive: a flow's directory is its neighbourhood)."""
    found = []
    for candidate in sorted(path.parent.iterdir()):
        name = candidate.name
        if candidate == path or not candidate.is_file() or not name.endswith(FLOW_SUFFIXES):
            continue
        if name.endswith(TEST_SUFFIXES):
            continue
        try:
            doc, _ = load_document(candidate.read_bytes(), str(candidate))
        except OSError:
            continue
        if not is_data_file(doc):
            found.append(candidate)
    return found


def load_flows(path: Path, *, quiet: bool) -> tuple[CompiledFlow, list[CompiledFlow]] | None:
    """``path``'s flow and the other flows beside it; prints problems and returns ``None`` on errors."""
    if not path.is_file():
        print(f"error: {path} is not a file (flowdesk try takes one flow file)", file=sys.stderr)
        return None
    project = compile_paths([path, *_sibling_flows(path)])
    mine = next(r for r in project.flows if r.file == str(path))
    if mine.flow is None:
        for diagnostic in mine.diagnostics:
            print(diagnostic.format())
        errors = sum(d.is_error for d in mine.diagnostics)
        print(f"{path}: {errors} error{'s' if errors != 1 else ''}; fix them to chat with this flow", file=sys.stderr)
        return None
    if not quiet:
        for diagnostic in mine.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
    others = []
    for result in project.flows:
        if result is mine:
            continue
        if result.flow is None:
            note = f"note: {result.file} has errors and is not loaded (see flowdesk validate {result.file})"
            print(note, file=sys.stderr)
        else:
            others.append(result.flow)
    return mine.flow, others


# -- printing -----------------------------------------------------------------------------


class Printer:
    """Writes the chat: messages always; steps and notes unless quiet; colour on a terminal."""

    def __init__(self, stream: TextIO, *, color: bool, quiet: bool) -> None:
        self.stream = stream
        self.color = color and "NO_COLOR" not in os.environ
        self.quiet = quiet

    def _write(self, text: str, style: str = "") -> None:
        if self.color and style:
            text = f"\033[{style}m{text}\033[0m"
        self.stream.write(text + "\n")

    def plain(self, text: str) -> None:
        self._write(text)

    def info(self, text: str) -> None:
        self._write(text, "36")

    def dim(self, text: str) -> None:
        if not self.quiet:
            self._write(text, "2")

    def fault(self, text: str) -> None:
        # Faults show even when quiet: they explain why the conversation took another path.
        self._write(f"  ! {text}", "33")

    def message(self, sent: SendText) -> None:
        who = "bot" if sent.sender == "bot" else sent.sender.split(":")[0]
        first, *more = sent.text.split("\n")
        indent = " " * (len(who) + 2)
        self._write(f"{who}: {first}", "1")
        for line in more:
            self._write(indent + line)
        for number, choice in enumerate(sent.choices, 1):
            self._write(f"{indent}{number}. {choice}")

    def fault_of(self, fault: Fault, mocked_http: set[str]) -> None:
        where = f" at step {fault.step!r}" if fault.step else ""
        text = f"fault {fault.code}{where}: {fault.message}"
        if fault.code.startswith("http_") and fault.step and fault.step not in mocked_http:
            text += f"; taking its error path (to answer it, pass --mock FILE with `http: {{{fault.step}: <body>}}`)"
        self.fault(text)

    def turn(
        self,
        sent: Iterable[SendText],
        trace: list[TraceEntry],
        faults: Iterable[Fault],
        root: str,
        mocked_http: set[str],
    ) -> None:
        """Steps, messages and faults of one action, interleaved in the order they happened."""
        messages, pending_faults = list(sent), list(faults)
        for index, entry in enumerate(trace):
            # A message whose step does not run from here on was sent before this entry.
            later = {e.step for e in trace[index:] if e.kind != "note"}
            while messages and messages[0].step not in later:
                self.message(messages.pop(0))
            if entry.kind == "note" and entry.note.startswith("fault ") and pending_faults:
                self.fault_of(pending_faults.pop(0), mocked_http)
                continue
            self.dim(f"  {trace_line(entry, root)}")
            if entry.kind != "note":
                while messages and messages[0].step == entry.step:
                    self.message(messages.pop(0))
        for message in messages:
            self.message(message)
        for fault in pending_faults:
            self.fault_of(fault, mocked_http)

    def flush(self) -> None:
        self.stream.flush()
