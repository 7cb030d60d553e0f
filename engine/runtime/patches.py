"""Changes guarded for running conversations: the interpreter's, then the workflow's own.

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

# -- workflow patches ----------------------------------------------------------------
# Changes of the workflow's own commands (activities, timers, their order), asked of
# ``workflow.patched`` where the workflow code branches. The values are in histories.

#: A conversation's end is logged (the store marks it ended).
RECORD_END = "record-conversation-end"
#: A logged message on a flow without an inbound pipeline skips the prepare activity.
SKIP_IDLE_PREPARE = "skip-idle-prepare"
#: The conversation runs on a settings revision and moves to new ones at safe points.
SETTINGS_REVISION = "settings-revision"
#: A chain that gave no answer is logged with its attempts.
RECORD_AI_FAILURES = "record-ai-failures"
#: A chain whose answer is a pure function of the flow revision is answered in
#: workflow code, without the AI activity.
OFFLINE_AI_IN_WORKFLOW = "offline-ai-in-workflow"
#: Replies to a channel that asks for it go out inside the workflow task that made
#: them (a local activity), and a reply's key names its text.
DELIVER_IN_TASK = "deliver-in-task"
#: An agent's transfer is an interpreter event (``AgentTransferred``) handled in turn
#: by the loop; before, the update handler moved the hand-off and logged it itself.
AGENT_TRANSFER_EVENT = "agent-transfer-event"
#: People work hand-offs: the ``agent`` update decides the claim in its handler (the run's
#: holder, checked by the validator: one of two concurrent takes wins) and queues the newer
#: actions (assign, note, labels, snooze, reopen, position, unavailable) as interpreter events.
AGENT_CLAIMS = "agent-claims"
