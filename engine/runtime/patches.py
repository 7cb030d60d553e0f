"""Interpreter changes guarded for running conversations.

A conversation's workflow replays its history on every worker restart, so the
interpreter must produce the same commands for the same events as it did when
the history was written. A change that would produce different commands (a new
default, a different order of sends, another exit path) is added here under a
new name in ``engine.flow.context.INTERPRETER_FEATURES``, and the interpreter
branches on ``ctx.has(name)``:

    if ctx.has("fd-2027-01-ask-trims-answer"):
        answer = answer.strip()

The workflow asks ``workflow.patched(name)`` for each name: running
conversations that started before the change replay without it, new ones get
it. Once no conversation older than the change can still be running, the branch
and the name are removed (``workflow.deprecate_patch`` first).

The replay test (tests/integration/test_replay.py) runs recorded histories
against the current code and fails when a change was not guarded.
"""

from __future__ import annotations

from engine.flow.context import INTERPRETER_FEATURES

#: Oldest first: each is asked of ``workflow.patched`` before an event is interpreted.
INTERPRETER_PATCHES: tuple[str, ...] = INTERPRETER_FEATURES
