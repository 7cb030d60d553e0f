"""What a conversation's commands do to the world: AI and HTTP calls, timers, log entries.

Plain functions of workflow code (deterministic; the world is reached only through
activities), each given what it needs. A call's function returns the event the
interpreter gets back; the workflow queues it. Replies go out through the
:class:`engine.runtime.outbox.Outbox`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from engine.ai import offline_chain
    from engine.ai.gateway import DEFAULT_CHAIN_TIMEOUT_MS, chain_timeout_ms
    from engine.ai.offline import OFFLINE_PROVIDERS
    from engine.flow.events import (
        AIFailed,
        AIResult,
        CallAI,
        CallFailure,
        CallHttp,
        HttpFailed,
        HttpResult,
        event_from_dict,
        to_dict,
    )
    from engine.flow.model import Chain
    from engine.flow.state import ConversationState
    from engine.message_log import RecordInput
    from engine.runtime.activities import ConversationActivities
    from engine.runtime.failures import ACTIVITY_FAILURES, failure_text, timed_out
    from engine.runtime.observe import time_step
    from engine.runtime.patches import OFFLINE_AI_IN_WORKFLOW, RECORD_AI_FAILURES
    from engine.runtime.pinned import PinnedFlows
    from engine.runtime.types import AIInput, ConversationInput, HttpInput

#: The message log must not lose a message: retried until it works.
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))

DEFAULT_AI_TIMEOUT = timedelta(milliseconds=DEFAULT_CHAIN_TIMEOUT_MS)
#: Time an AI activity gets beyond its chain's timeout, to report what happened.
AI_ACTIVITY_GRACE = timedelta(seconds=10)
#: A chain's failure is a result; the activity itself fails only when its worker does.
AI_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
#: AI and HTTP activities heartbeat every second (activities.heartbeating): a call
#: whose worker died is retried elsewhere after this, not after its whole timeout.
CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=4)
DEFAULT_HTTP_TIMEOUT = timedelta(seconds=10)


def event_time(clock_offset_ms: int) -> str:
    """Event time: workflow time, moved by the conversation's clock offset (flow tests)."""
    now = workflow.now() + timedelta(milliseconds=clock_offset_ms) if clock_offset_ms else workflow.now()
    return now.isoformat()


async def timer_elapsed(seconds: float) -> bool:
    """Sleep on a workflow timer; False when the timer was cancelled first."""
    try:
        await workflow.sleep(seconds)
    except asyncio.CancelledError:
        return False
    return True


# -- the message log --------------------------------------------------------------------


@dataclass(frozen=True)
class LogScope:
    """Whose log entries the workflow writes: the conversation, and the revision it is on."""

    conversation_id: str
    channel: str
    flow: str
    revision: str

    @classmethod
    def of(cls, data: ConversationInput, state: ConversationState | None) -> LogScope:
        """The scope now: the run's input, and the flow the conversation has moved to, if any."""
        flow, revision = (state.flow, state.revision) if state else (data.flow, data.revision)
        return cls(data.conversation_id, data.channel, flow, revision)


def entry(
    scope: LogScope,
    message_id: str,
    direction: str,
    text: str,
    at: str,
    *,
    status: str,
    sender: str = "customer",
    channel: str | None = None,
    detail: str = "",
    meta: dict[str, Any] | None = None,
) -> RecordInput:
    """One log entry of the conversation in ``scope``."""
    return RecordInput(
        conversation_id=scope.conversation_id,
        direction=direction,
        text=text,
        channel=channel or scope.channel,
        message_id=message_id,
        at=at,
        status=status,
        sender=sender,
        flow=scope.flow,
        revision=scope.revision,
        detail=detail,
        meta=meta or {},
    )


async def record(item: RecordInput) -> None:
    """Write a log entry from the workflow (failures, hand-offs): a local activity."""
    await workflow.execute_local_activity_method(
        ConversationActivities.record, item, start_to_close_timeout=timedelta(seconds=10), retry_policy=RECORD_RETRY
    )


# -- AI -----------------------------------------------------------------------------------


async def call_ai(
    call: CallAI,
    *,
    flows: PinnedFlows,
    scope: LogScope,
    now: Callable[[], str],
    answered_here: set[str],
) -> AIResult | AIFailed:
    """An AI call's outcome: answered in workflow code when it can be, else by the AI activity.

    A chain that gave no answer is logged first. ``answered_here`` collects the
    calls answered in workflow code (the outbox's in-task rule needs them).
    """
    started = workflow.time()
    try:
        event = _answer_in_workflow(call, flows, now())
        if event is not None:
            answered_here.add(call.call_id)
        else:
            event = await _ai_activity(call, flows, scope.conversation_id, now)
        if isinstance(event, AIFailed) and workflow.patched(RECORD_AI_FAILURES):
            await record(_ai_failure_entry(scope, event))
        return event
    except ACTIVITY_FAILURES as exc:
        reason = CallFailure.TIMEOUT if timed_out(exc) else CallFailure.FAILED
        return AIFailed(call.call_id, reason, now(), failure_text(exc))
    finally:
        if not workflow.unsafe.is_replaying():
            kind = "classify" if call.purpose == "classify" else "ai"
            time_step(call.flow, kind, workflow.time() - started)


def _chain(call: CallAI, flows: PinnedFlows) -> Chain | None:
    flow = flows.get(call.flow, call.revision)
    return flow.chains.get(call.chain) if flow is not None else None


def _answer_in_workflow(call: CallAI, flows: PinnedFlows, at: str) -> AIResult | AIFailed | None:
    """A pure offline chain's outcome, made here with no activity (engine.ai.offline_chain)."""
    flow = flows.get(call.flow, call.revision)
    chain = flow.chains.get(call.chain) if flow is not None else None
    if flow is None or chain is None or not offline_chain.is_pure(chain, flow, call.purpose):
        return None
    # Asked only for a pure chain, so a history without the marker replays through
    # the activity that answered it then.
    if not workflow.patched(OFFLINE_AI_IN_WORKFLOW):
        return None
    return offline_chain.answer(call, chain, flow, at, count=not workflow.unsafe.is_replaying())


async def _ai_activity(
    call: CallAI, flows: PinnedFlows, conversation_id: str, now: Callable[[], str]
) -> AIResult | AIFailed:
    """The chain's outcome from the AI activity (engine.ai.gateway)."""
    chain = _chain(call, flows)
    # The chain keeps its own time and retries each provider as the flow says; this
    # bounds one run of it and retries it only when a worker was lost mid-chain.
    chain_timeout = DEFAULT_AI_TIMEOUT if chain is None else timedelta(milliseconds=chain_timeout_ms(chain, call))
    timeout = chain_timeout + AI_ACTIVITY_GRACE
    data = AIInput(call=to_dict(call), conversation_id=conversation_id)
    if chain is not None and all(p.use in OFFLINE_PROVIDERS for p in chain.providers):
        # Offline providers (echo, faq) answer from memory in microseconds: a
        # local activity spares two round trips through the server.
        result = await workflow.execute_local_activity_method(
            ConversationActivities.call_ai, data, start_to_close_timeout=timeout, retry_policy=AI_ACTIVITY_RETRY
        )
    else:
        result = await workflow.execute_activity_method(
            ConversationActivities.call_ai,
            data,
            start_to_close_timeout=timeout,
            heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
            retry_policy=AI_ACTIVITY_RETRY,
        )
    # The activity returns an AIResult or AIFailed as a mapping (to_dict).
    return cast(AIResult | AIFailed, event_from_dict({**result, "call_id": call.call_id, "at": now()}))


def _ai_failure_entry(scope: LogScope, event: AIFailed) -> RecordInput:
    """A chain that gave no answer, with every attempt (the answers' are on their messages)."""
    return entry(
        scope,
        event.call_id,
        "event",
        "",
        event.at,
        status="ai_failed",
        sender="system",
        detail=f"{event.reason}: {event.detail}"[:1000],
        meta={"ai": {"attempts": list(event.attempts)}},
    )


# -- HTTP ---------------------------------------------------------------------------------


async def call_http(
    call: CallHttp, *, conversation_id: str, flow: str, now: Callable[[], str]
) -> HttpResult | HttpFailed:
    """An HTTP call's outcome from the HTTP activity; no response is an ``HttpFailed``."""
    timeout = timedelta(milliseconds=call.timeout_ms) if call.timeout_ms else DEFAULT_HTTP_TIMEOUT
    attempts = (call.retries or 0) + 1
    started = workflow.time()
    try:
        result = await workflow.execute_activity_method(
            ConversationActivities.call_http,
            HttpInput(call=to_dict(call), conversation_id=conversation_id),
            # the activity applies the request timeout; this bounds one attempt
            start_to_close_timeout=timeout + timedelta(seconds=5),
            heartbeat_timeout=CALL_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=attempts),
        )
        return HttpResult(call.call_id, int(result["status"]), result.get("body"), now())
    except ACTIVITY_FAILURES as exc:
        reason = CallFailure.TIMEOUT if timed_out(exc) else CallFailure.ERROR
        return HttpFailed(call.call_id, reason, now(), failure_text(exc))
    finally:
        if not workflow.unsafe.is_replaying():
            time_step(flow, "http", workflow.time() - started)
