"""LiveDriver: one flow test played against a real conversation workflow.

Each acting turn goes the way the server's would: a customer's message is decided
by ``Conversations.conversation_for`` (flow, live revisions: the server's own
decision code) and sent as an update; an agent's action is
``Conversations.agent``; ``elapse`` moves the time-skipping server's clock. Then
the driver waits until the conversation is idle (the state query's ``idle``: nothing
queued, handled, running or being delivered) and no timer is left that should
have fired: never a fixed sleep.

The test server has no update-with-start, so the first message starts the
workflow and is then sent as a plain update. The conversation runs on the test's
calendar (Monday 2026-01-05 10:00 UTC, plus any time elapsed before the first
message) through ``ConversationInput.clock_offset_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from engine.errors import FlowdeskError
from engine.flow.events import Fault, TraceEntry
from engine.flow.model import CompiledFlow
from engine.flowtest.driver import TEST_AGENT, ConversationLook
from engine.livetest.mocks import CollectingChannel, MockBoard, TestMocks
from engine.runtime.client import Conversations
from engine.runtime.failures import Failure, is_failure
from engine.runtime.types import IN_TASK_META, AgentAction, InboundMessage, StateView, workflow_id
from engine.runtime.workflow import ConversationWorkflow

T = TypeVar("T")

#: Where every flow test's clock starts (the simulator's too).
TEST_START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
#: How long one turn may take to settle before the test fails saying so.
SETTLE_SECONDS = 30.0
#: Between two looks at a conversation that is still busy.
POLL_SECONDS = 0.005

#: Runs a coroutine on the runner's event loop and returns its result (blocking).
Call = Callable[[Awaitable[T]], T]
#: The agent actions of a test, as the agent update names them.
AGENT_ACTIONS = {"accept": "accept", "say": "reply", "resolve": "resolve"}


@dataclass
class LiveWorld:
    """What every driver of one live session shares: the server, the client side, the doubles."""

    env: WorkflowEnvironment
    conversations: Conversations
    channel: CollectingChannel
    board: MockBoard
    call: Call[Any]

    @property
    def client(self) -> Client:
        return self.conversations.client


class LiveDriver:
    """Plays one test's turns against a workflow (see the module docstring)."""

    def __init__(self, world: LiveWorld, flow: CompiledFlow, test: Mapping[str, Any], mocks: TestMocks) -> None:
        self.world = world
        self.flow = flow
        self.mocks = mocks
        self.conversation_id = f"flowtest-{uuid4()}"
        self.channel = str(test.get("channel") or "cli")
        self.contact = dict(test.get("contact") or {})
        self.vars = dict(test.get("vars") or {})
        self.clock = TEST_START  # the test's clock until the conversation starts
        self.started = False
        self.messages = 0
        self.view: StateView | None = None
        world.board.by_conversation[self.conversation_id] = mocks

    # -- the turns ------------------------------------------------------------------------

    def user(self, text: str) -> None:
        self.world.call(self._user(text))

    def elapse(self, milliseconds: int) -> None:
        if not self.started:
            self.clock += timedelta(milliseconds=milliseconds)
            return
        self.world.call(self._elapse(milliseconds))

    def agent(self, action: str, text: str = "") -> None:
        agent = AgentAction(AGENT_ACTIONS[action], TEST_AGENT, text)
        self.world.call(self._agent(agent))

    def bot_texts(self) -> list[str]:
        return self.world.channel.texts(self.conversation_id)

    def look(self) -> ConversationLook:
        if self.view is None or not self.view.state:
            return ConversationLook(
                flow=self.flow.name,
                vars={**copy.deepcopy(dict(self.flow.vars)), **self.vars},
                started=False,
            )
        state = self.view.state
        return ConversationLook(
            flow=str(state["flow"]),
            step=state.get("step"),
            status=str(state.get("status") or ""),
            waiting_for=state.get("waiting_for"),
            vars=state.get("vars") or {},
            started=True,
            ended=state.get("end_status") is not None,
            end_status=state.get("end_status"),
        )

    def trace(self) -> Sequence[TraceEntry]:
        return ()  # the steps run stay inside the workflow

    def faults(self) -> Sequence[Fault]:
        return ()  # logged by the worker, not returned

    def notes(self) -> Sequence[str]:
        return self.mocks.ai.notes

    def close(self) -> None:
        """End the workflow if it still runs (the server is shared with the next tests) and drop the mocks."""
        with contextlib.suppress(Exception):
            self.world.call(self._terminate())
        self.world.board.by_conversation.pop(self.conversation_id, None)

    # -- on the runner's loop -----------------------------------------------------------------

    async def _user(self, text: str) -> None:
        self.messages += 1
        message = InboundMessage(
            id=f"{self.conversation_id}-msg-{self.messages}",
            text=text,
            channel=self.channel,
            contact=self.contact,
            # As web chat on one node says: the worker holds the channel, replies go out in the task.
            meta={IN_TASK_META: True},
        )
        conversations = self.world.conversations
        conversation, message = conversations.conversation_for(self.conversation_id, message, flow_name=self.flow.name)
        handle = conversations.handle(self.conversation_id)
        if not self.started:
            now = await self.world.env.get_current_time()
            offset = round((self.clock - now).total_seconds() * 1000)
            conversation = replace(conversation, clock_offset_ms=offset, vars=self.vars)
            handle = await self.world.client.start_workflow(
                ConversationWorkflow.run,
                conversation,
                id=workflow_id(self.conversation_id),
                task_queue=conversations.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            self.started = True
        try:
            await handle.execute_update(ConversationWorkflow.message, message, id=message.id)
        except WorkflowUpdateFailedError as exc:
            if is_failure(exc.cause, Failure.CONVERSATION_ENDED):
                raise FlowdeskError("a message was sent after the conversation had ended") from None
            raise
        await self._settle()

    async def _elapse(self, milliseconds: int) -> None:
        await self.world.env.sleep(timedelta(milliseconds=milliseconds))
        await self._settle(await self.world.env.get_current_time())

    async def _agent(self, action: AgentAction) -> None:
        await self.world.conversations.agent(self.conversation_id, action)
        await self._settle()

    async def _settle(self, fired_by: datetime | None = None) -> None:
        """Wait until the conversation is idle and every timer due by ``fired_by`` has fired."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            view = await self._view()
            if view is None:
                return  # the workflow has finished: everything it sent has been delivered
            self.view = view
            due = fired_by is not None and any(datetime.fromisoformat(d) <= fired_by for d in view.timers.values())
            if view.idle and not due:
                return
            if time.monotonic() > deadline:
                raise FlowdeskError(
                    f"the conversation did not settle within {SETTLE_SECONDS:g} s "
                    f"(in flight: {view.in_flight}, timers: {sorted(view.timers.values())})"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def _view(self) -> StateView | None:
        """The state query's answer; None once the workflow has finished."""
        try:
            return await self.world.conversations.state(self.conversation_id)
        except RPCError:
            description = await self.world.conversations.handle(self.conversation_id).describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                raise
            return None

    async def _terminate(self) -> None:
        if not self.started:
            return
        handle = self.world.conversations.handle(self.conversation_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("flow test finished")
