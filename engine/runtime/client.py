"""Talking to conversations from outside the workflow: send, act, close, look.

Every inbound message is an update-with-start: the conversation's workflow is
started if it is not running, and the update id is the channel's own message id,
so a redelivered webhook is accepted once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine.errors import FlowdeskError
from engine.flow.model import FlowJumpAction
from engine.flow.routing import choose_flow
from engine.runtime.failures import Failure, is_failure
from engine.runtime.revisions import FlowCatalog
from engine.runtime.types import (
    TASK_QUEUE,
    Accepted,
    ActionAccepted,
    AgentAction,
    CloseRequest,
    ConversationInput,
    InboundMessage,
    StateView,
    agent_action_problem,
    workflow_id,
)
from engine.runtime.workflow import ConversationWorkflow

#: Attempts at sending one message while the server says too many are in flight.
UPDATE_ATTEMPTS = 8
#: Messages this process has in flight to one conversation at a time. The server
#: refuses updates beyond its own limit (10 per workflow by default), and while it
#: refuses them it drops the workflow task in progress, which then runs again.
UPDATES_IN_FLIGHT = 4
#: Refusals of an update that say "not now" rather than "no".
RETRIED_RPC = frozenset({RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE})


class NoFlowError(FlowdeskError):
    """No live flow serves this channel (or every flow's `when` said no)."""


class ConversationEnded(FlowdeskError):
    """The conversation's workflow has finished: a new message needs a new conversation."""


class ConversationTaken(FlowdeskError):
    """An agent action lost the claim: ``holder`` (an agent id) holds the conversation."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(f"agent {holder} holds the conversation")


class AgentActionRefused(FlowdeskError):
    """The conversation cannot take this agent action now (not handed off, not resolved, ...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AgentActionInvalid(AgentActionRefused):
    """The action's fields are wrong (no text, no queue, an unknown action, a bad time)."""


class Conversations:
    """The runtime's client side, used by the server and by tests and benchmarks."""

    def __init__(
        self,
        client: Client,
        catalog: FlowCatalog,
        *,
        task_queue: str = TASK_QUEUE,
    ) -> None:
        self.client = client
        #: its live settings revision is what conversations start on and `when` guards read
        self.catalog = catalog
        self.task_queue = task_queue
        self._in_flight = KeyedLimit(UPDATES_IN_FLIGHT)

    def handle(self, conversation_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id(conversation_id))

    async def send(self, conversation_id: str, message: InboundMessage) -> Accepted:
        """Queue a customer's message durably; starts the conversation if needed."""
        conversation, message = self.conversation_for(conversation_id, message)
        async with self._in_flight.hold(conversation_id):
            return await self._update(conversation_id, conversation, message)

    def conversation_for(
        self, conversation_id: str, message: InboundMessage, *, flow_name: str | None = None
    ) -> tuple[ConversationInput, InboundMessage]:
        """What sending ``message`` starts (if need be) and sends: the decision, apart from the transport.

        The flow is chosen by channel, or is ``flow_name``'s live revision (a flow test
        runs one flow); the message gets the live revisions it may need. ``flowdesk test
        --live`` makes the same decision and sends it the way its test server can.
        """
        if flow_name is None:
            flow = choose_flow(
                self.catalog.flows(),
                channel=message.channel,
                contact=message.contact,
                message={"text": message.text, "channel": message.channel},
                settings=self.catalog.live_settings.flow_settings,
                now=datetime.now(UTC),
            )
        else:
            flow = self.catalog.live(flow_name)
        if flow is None:
            if flow_name is not None:
                raise NoFlowError(f"flow {flow_name!r} is not live")
            raise NoFlowError(f"no live flow takes conversations from channel {message.channel!r}")
        settings = self.catalog.live_settings.revision
        if not message.settings and settings:
            message = replace(message, settings=settings)
        if not message.live:
            # The flows a conversation of this flow can be in next; one that moved elsewhere
            # (goto_flow, call) finds the rest through the prepare activity.
            jumps = {s.action.flow for s in flow.steps.values() if isinstance(s.action, FlowJumpAction)}
            message = replace(message, live=self.catalog.live_revisions({flow.name, *jumps}))
        conversation = ConversationInput(
            conversation_id=conversation_id,
            flow=flow.name,
            revision=flow.revision,
            channel=message.channel,
            contact=dict(message.contact),
            settings=message.settings,
        )
        return conversation, message

    async def _update(self, conversation_id: str, conversation: ConversationInput, message: InboundMessage) -> Accepted:
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                # A start operation can be used once: a new one per attempt.
                start = WithStartWorkflowOperation(
                    ConversationWorkflow.run,
                    conversation,
                    id=workflow_id(conversation_id),
                    task_queue=self.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    # A finished conversation is not started again under its old id.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
                accepted: Accepted = await self.client.execute_update_with_start_workflow(
                    ConversationWorkflow.message, message, start_workflow_operation=start, id=message.id
                )
                return accepted
            except WorkflowAlreadyStartedError:
                await _settle(start)
                raise ConversationEnded(f"conversation {conversation_id} has ended") from None
            except WorkflowUpdateFailedError as exc:
                if is_failure(exc.cause, Failure.CONVERSATION_ENDED):
                    raise ConversationEnded(f"conversation {conversation_id} has ended") from None
                raise
            except RPCError as exc:
                # A burst on one conversation can exceed the server's limit of updates
                # in flight per workflow, and a workflow task the server drops meanwhile
                # aborts the updates it carried ("workflow update was aborted"). Neither
                # was accepted; the same update id is sent again (a redelivery is a no-op).
                if exc.status not in RETRIED_RPC or attempt == UPDATE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def agent(self, conversation_id: str, action: AgentAction) -> ActionAccepted:
        """An agent's action on a conversation, decided by its workflow.

        Raises :class:`ConversationTaken` when another agent holds it (of two agents taking
        it at once, exactly one gets this), :class:`AgentActionInvalid` for wrong fields,
        :class:`AgentActionRefused` when the conversation cannot take the action now, and
        :class:`ConversationEnded` when it has ended (or its workflow is gone).
        """
        problem = agent_action_problem(action)
        if problem:
            raise AgentActionInvalid(problem)
        try:
            accepted: ActionAccepted = await self.handle(conversation_id).execute_update(
                ConversationWorkflow.agent, action
            )
        except WorkflowUpdateFailedError as exc:
            raise agent_refusal(conversation_id, exc.cause) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ConversationEnded(f"conversation {conversation_id} has ended") from None
            raise
        return accepted

    async def close(self, conversation_id: str, status: str = "closed") -> ActionAccepted:
        """Close the conversation with ``status``; a refused close raises WorkflowUpdateFailedError."""
        handle = self.handle(conversation_id)
        accepted: ActionAccepted = await handle.execute_update(ConversationWorkflow.close, CloseRequest(status))
        return accepted

    async def state(self, conversation_id: str) -> StateView:
        view: StateView = await self.handle(conversation_id).query(ConversationWorkflow.query_state)
        return view


def agent_refusal(conversation_id: str, cause: BaseException | None) -> FlowdeskError:
    """The error a refused ``agent`` update means, from the workflow's ApplicationError type."""
    if is_failure(cause, Failure.CONVERSATION_ENDED):
        return ConversationEnded(f"conversation {conversation_id} has ended")
    message = str(getattr(cause, "message", "") or cause or "the action was refused")
    if is_failure(cause, Failure.CONVERSATION_TAKEN):
        details = getattr(cause, "details", ()) or ()
        return ConversationTaken(str(details[0]) if details else "")
    if is_failure(cause, Failure.AGENT_ACTION_INVALID) or (
        isinstance(cause, ApplicationError) and cause.type == "ValueError"
    ):
        return AgentActionInvalid(message)
    return AgentActionRefused(message)


class KeyedLimit:
    """At most ``limit`` holders per key at a time; a key's gate exists only while it is used."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._gates: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        gate, users = self._gates.get(key) or (asyncio.Semaphore(self.limit), 0)
        self._gates[key] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._gates[key]
            if users == 1:
                del self._gates[key]
            else:
                self._gates[key] = (gate, users - 1)

    def __len__(self) -> int:
        return len(self._gates)


async def _settle(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Collect the start operation's own outcome, so asyncio does not log it as never retrieved."""
    with contextlib.suppress(Exception):
        await start.workflow_handle()
