"""The revisions a conversation runs on, and how it follows new live ones at safe points.

A conversation is pinned to content-addressed revisions: of its flow (and of the
flows it can jump to) and of the public settings. Workflow code loads them by hash
from the worker's cache, which is deterministic, and moves to a new live revision
only while the conversation waits for the customer. Workflow code throughout.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from engine.flow.events import MessageReceived
    from engine.flow.interpret import adopt_revision
    from engine.flow.model import CompiledFlow, FlowJumpAction
    from engine.flow.public_settings import PublicSettings
    from engine.flow.state import ConversationState
    from engine.runtime import registry
    from engine.runtime.patches import SETTINGS_REVISION, SKIP_IDLE_PREPARE
    from engine.runtime.run_state import RunState


class PinnedFlows:
    """FlowResolver for workflow code: pinned revisions from the worker's compiled cache."""

    def __init__(self, live: dict[str, str]) -> None:
        #: flow id -> live revision; the run's own dict (RunState.live), updated in place
        self.live = live

    def get(self, name: str, revision: str | None = None) -> CompiledFlow | None:
        revision = revision or self.live.get(name)
        if revision is None:
            return None
        # Content-addressed and immutable: reading it is deterministic, so the
        # sandbox may let this one read through.
        with workflow.unsafe.sandbox_unrestricted():
            return registry.load(workflow.info().task_queue, name, revision)


class Revisions:
    """The flow and settings revisions of one run's conversation (kept in its RunState)."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        self.flows = PinnedFlows(run.live)
        self._settings: PublicSettings | None = None

    def flow(self, name: str, revision: str) -> CompiledFlow:
        flow = self.flows.get(name, revision)
        if flow is None:  # pragma: no cover - get() raises rather than return None for a revision
            raise ApplicationError(f"flow {name} revision {revision} is not available", non_retryable=True)
        return flow

    def settings(self) -> PublicSettings:
        """The conversation's settings revision, loaded by id (content-addressed: deterministic)."""
        revision = self.run.settings
        if self._settings is None or self._settings.revision != revision:
            with workflow.unsafe.sandbox_unrestricted():
                self._settings = registry.load_settings(workflow.info().task_queue, revision)
        return self._settings

    def of_interest(self, state: ConversationState) -> list[str]:
        """The flows whose live revision the conversation needs: its own, its callers', its jumps'."""
        names = {state.flow, *(frame.flow for frame in state.stack)}
        current = self.flows.get(state.flow, state.revision)
        if current is not None:
            names |= {s.action.flow for s in current.steps.values() if isinstance(s.action, FlowJumpAction)}
        return sorted(names)

    def live_from_sender(self, event: MessageReceived, state: ConversationState) -> dict[str, str] | None:
        """The live revisions of the flows of interest, when the prepare activity can be skipped.

        That is when the server logged the message, the conversation's flow has no
        inbound pipeline, and the message came with the live revisions the server
        saw (revisions are content-addressed: any worker loads them by hash).
        """
        if not event.live or not event.message.get("meta", {}).get("logged"):
            return None
        current = self.flows.get(state.flow, state.revision)
        if current is None or current.inbound:
            return None
        names = self.of_interest(state)
        if any(name not in event.live for name in names):
            return None
        if not workflow.patched(SKIP_IDLE_PREPARE):
            return None
        return {name: event.live[name] for name in names}

    def follow_live(self, live: dict[str, str]) -> None:
        """Pin the flows' live revisions; move the conversation when its own flow has a new one."""
        state = self.run.state
        assert state is not None
        self.flows.live.update(live)
        revision = live.get(state.flow)
        if revision is not None and revision != state.revision:
            moved = adopt_revision(state, self.flow(state.flow, revision))
            if moved is not None:
                workflow.logger.info("conversation moved to revision %s of %s", revision[:12], state.flow)
                self.run.state = moved

    def follow_settings(self, revision: str) -> None:
        """Move to the live settings revision at a safe point: where a new flow revision is adopted.

        That is while the conversation waits for the customer's message (or has not
        started): no turn is half done under the old settings.
        """
        state = self.run.state
        assert state is not None
        if not revision or revision == self.run.settings:
            return
        pending = state.pending
        if state.ended or (pending is not None and pending.wait != "message"):
            return
        if not workflow.patched(SETTINGS_REVISION):
            return
        workflow.logger.info("conversation moved to settings revision %s", revision[:12])
        self.run.settings, self._settings = revision, None
