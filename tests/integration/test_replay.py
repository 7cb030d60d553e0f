"""Recorded conversations replay on the current workflow code without nondeterminism.

Why this test exists
--------------------
A conversation can run for days. Whenever a worker picks it up again (a deploy, a
restart, a cache eviction, another worker), it *replays* the conversation's history
through the current code, and the code must ask for exactly the same commands
(activities, timers, their order) as the code that wrote the history. If it asks
for something else, say one reply more, an activity in another order, a timer
less, the workflow task fails with a nondeterminism error and the conversation
stops until the code is rolled back. Changing only the *content* of a command
(the text of a reply) is not detected by Temporal, and running conversations
silently see the new behaviour mid-way.

The histories in ``histories/`` were recorded with ``record_histories.py``: a full
conversation (AI answer, an ask with a retry, HTTP found / 404 / down after a
retry, closed), a hand-off (held message, agent accept / reply / resolve, a timer,
closed) and a conversation that continued as new twice (one file per run). The
flow revisions they ran on are in ``histories/revisions/``, loaded by hash as the
worker's compiled-flow cache does. The same, recorded again after a guarded
change, are in a folder named after it (``ai-context-in-workflow/``: AI calls carry
the turns the workflow chose; ``deliver-in-task/``: replies sent from a local
activity inside the workflow task; ``offline-ai-in-workflow/``: the echo chain
answered in workflow code, with no ``flowdesk.call_ai``; ``agent-transfer-event/``:
an agent's transfer is an interpreter event, with a fourth conversation,
``transfer``: a hand-off transferred to another queue, taken, answered and resolved
there). ``agent-transfer-update/`` holds that conversation as the code before the
change ran it: the update handler moved the hand-off itself.
``agent-claims/``: people on hand-offs (the ``agent`` update decides the claim; agents
are announced and logged), with a fifth conversation, ``people``: a queue position, a
note, a named take, labels, a snooze, a transfer to an agent, a reply, a resolve to a
``csat`` step, a reopen resumed by a second resolve, a rating.

When this test fails after your change
--------------------------------------
1. The change alters what running conversations do (the interpreter's commands
   for the same events, or the workflow's own activities and timers): guard it.
   Add a name to ``engine.runtime.patches.INTERPRETER_PATCHES`` and branch on
   ``ctx.has(name)`` in the interpreter (workflow code branches on
   ``workflow.patched(name)`` directly). ``workflow.patched`` is false while an
   old history replays, because the history holds no marker for that name, so the
   old path runs and the replay matches; a conversation that reaches the branch
   for the first time records the marker and takes the new path from then on.
   That is the only way to change behaviour without breaking the conversations
   that are running when the new workers are deployed. Keep the old histories
   (they must keep replaying) and record the new behaviour next to them:
   ``python -m tests.integration.record_histories --out tests/integration/histories/<change>``;
   every ``*.json`` below ``histories/`` is replayed with the ``revisions/`` beside it.
   Once no conversation older than the change can still be running, retire the
   guard (``workflow.deprecate_patch``, then remove it) and re-record.
2. The change may break old histories on purpose (nothing runs on the old code
   yet, e.g. before a first release): re-record with
   ``python -m tests.integration.record_histories`` and commit the new files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.flow.events import SendText
from engine.flow.interpret import advance
from engine.runtime import registry
from engine.runtime import workflow as conversation_workflow
from engine.runtime.revisions import CompiledFlows, FileRevisionStore
from engine.runtime.worker import PASSTHROUGH
from engine.runtime.workflow import ConversationWorkflow
from tests.integration.record_histories import HISTORIES

#: The Replayer runs workflows on the task queue ``replay-<build id>``, not on the
#: recorded one, and the workflow finds its compiled flows by task queue.
REPLAY_BUILD_ID = "flowdesk-replay"
REPLAY_TASK_QUEUE = f"replay-{REPLAY_BUILD_ID}"

HOW_TO_FIX = (
    "see the docstring of tests/integration/test_replay.py: guard the change with workflow.patched, or re-record"
)


def _histories() -> list[Path]:
    return sorted(HISTORIES.rglob("*.json"))


def _replayer() -> Replayer:
    # The very runner engine.runtime.worker.build_worker uses: the same sandbox, the same passthrough.
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    return Replayer(workflows=[ConversationWorkflow], workflow_runner=runner, build_id=REPLAY_BUILD_ID)


def _task_queue(history: dict[str, Any]) -> str:
    name: str = history["events"][0]["workflowExecutionStartedEventAttributes"]["taskQueue"]["name"]
    return name


@pytest.fixture(name="fx_recorded")
def fixture_recorded(request: pytest.FixtureRequest) -> Iterator[WorkflowHistory]:
    """One recorded history, with the flow revisions it ran on registered as a worker would."""
    path: Path = request.param
    text = path.read_text(encoding="utf-8")
    # Registered under the recorded queue, as its worker did; the Replayer's own queue
    # finds it through the registry's fallback to any set that holds the revision.
    queue = _task_queue(json.loads(text))
    registry.register(queue, CompiledFlows(FileRevisionStore(path.parent / "revisions")))
    try:
        yield WorkflowHistory.from_json(f"{path.parent.name}/{path.stem}", text)
    finally:
        registry.unregister(queue)


@pytest.mark.parametrize("fx_recorded", _histories(), ids=lambda p: p.stem, indirect=True)
async def test_a_recorded_conversation_replays_on_the_current_code(fx_recorded: WorkflowHistory) -> None:
    result = await _replayer().replay_workflow(fx_recorded, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{fx_recorded.workflow_id}: {result.replay_failure}\n{HOW_TO_FIX}"


def test_the_recorded_conversations_are_all_there() -> None:
    names = {p.stem for p in HISTORIES.glob("*.json")}
    assert names >= {"full", "handoff", "continue-as-new-run1", "continue-as-new-run2", "continue-as-new-run3"}
    for run in ("run1", "run2"):
        events = json.loads((HISTORIES / f"continue-as-new-{run}.json").read_text(encoding="utf-8"))["events"]
        assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    full = (HISTORIES / "full.json").read_text(encoding="utf-8")
    assert "flowdesk.call_http" in full and "EVENT_TYPE_ACTIVITY_TASK_FAILED" in full
    assert "EVENT_TYPE_TIMER_FIRED" in (HISTORIES / "handoff.json").read_text(encoding="utf-8")


def _patches(path: Path) -> set[str]:
    """The patch markers a recorded history holds."""
    found = set()
    for event in json.loads(path.read_text(encoding="utf-8"))["events"]:
        payloads = event.get("markerRecordedEventAttributes", {}).get("details", {}).get("patch-data", {})
        for payload in payloads.get("payloads", []):
            found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_a_transfer_is_recorded_from_before_and_after_it_became_an_interpreter_event() -> None:
    before = HISTORIES / "agent-transfer-update" / "transfer.json"
    after = HISTORIES / "agent-transfer-event" / "transfer.json"
    for path in (before, after):
        assert '"action":"transfer"' in _update_inputs(path), path
    assert "agent-transfer-event" not in _patches(before)
    assert "agent-transfer-event" in _patches(after)


def _update_inputs(path: Path) -> str:
    """Every update's argument in a recorded history, decoded, one per line."""
    inputs = []
    for event in json.loads(path.read_text(encoding="utf-8"))["events"]:
        accepted = event.get("workflowExecutionUpdateAcceptedEventAttributes")
        if accepted:
            for payload in accepted["acceptedRequest"]["input"]["args"]["payloads"]:
                inputs.append(base64.b64decode(payload["data"]).decode("utf-8"))
    return "\n".join(inputs)


@pytest.mark.parametrize("fx_recorded", [HISTORIES / "full.json"], ids=["full"], indirect=True)
async def test_an_unguarded_interpreter_change_is_caught(
    fx_recorded: WorkflowHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay has teeth: an interpreter that says everything twice does not pass."""

    def says_everything_twice(*args: Any, **kwargs: Any) -> Any:
        outcome = advance(*args, **kwargs)
        outcome.commands = [c for command in outcome.commands for c in [command] * (isinstance(command, SendText) + 1)]
        return outcome

    monkeypatch.setattr(conversation_workflow, "advance", says_everything_twice)
    result = await _replayer().replay_workflow(fx_recorded, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    # Extra replies are extra local-activity deliveries: the replay stops either on
    # a command the history lacks (nondeterminism) or on a recorded local-activity
    # result that no longer fits the call it is matched with.
    failure = str(result.replay_failure).lower()
    assert "nondetermin" in failure or "failed decoding arguments" in failure, failure[:500]
