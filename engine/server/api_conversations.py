"""``/api/conversations``: find conversations, read transcripts, see and close them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, KwargDefinition, QueryParameter, RequestBody
from temporalio.service import RPCError

from engine.runtime.client import ConversationEnded
from engine.server.api_models_conversations import (
    ClosingConversation,
    ConversationList,
    ConversationState,
    ConversationView,
    FlowPosition,
    MessageView,
    Transcript,
)
from engine.server.api_request import ApiRequest
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import ServicesDep
from engine.store import Conversation, Message

#: The end statuses an operator can close a conversation with (docs/flows.md, `end`).
CLOSE_STATUSES = ("closed", "resolved", "unresolved", "abandoned", "completed")


@dataclass
class CloseBody:
    """How the conversation is closed: the end status it gets."""

    # The handler checks it and names the allowed ones; the schema lists them.
    status: Annotated[str, KwargDefinition(schema_extra={"enum": list(CLOSE_STATUSES)})] = "closed"


def conversation_view(row: Conversation, live: dict[str, str]) -> ConversationView:
    return ConversationView(
        id=row.id,
        status=row.status,
        end_status=row.end_status,
        channel=row.channel,
        contact_id=row.contact_id,
        flow=row.flow,
        revision=row.revision,
        outdated=bool(row.flow) and row.status != "ended" and live.get(row.flow, row.revision) != row.revision,
        assigned_agent=row.assigned_agent,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        ended_at=row.ended_at.isoformat() if row.ended_at else None,
    )


def message_view(row: Message) -> MessageView:
    assert row.seq is not None  # a stored message has one; only a new row has none yet
    return MessageView(
        seq=row.seq,
        id=row.message_id,
        direction=row.direction,
        sender=row.sender,
        channel=row.channel,
        text=row.text,
        choices=list(row.choices or []),
        status=row.status,
        detail=row.detail,
        meta=dict(row.meta or {}),
        flow=row.flow,
        revision=row.revision,
        at=row.at,
    )


class ConversationsController(Controller):
    path = "/api/conversations"
    tags = ["conversations"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="Conversations, newest activity first, filtered by status, channel, flow or outdated revision",
        operation_id="listConversations",
        responses=problem_responses(400),
    )
    async def list_conversations(  # noqa: PLR0917 - each query parameter is one argument to Litestar
        self,
        services: ServicesDep,
        status: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None,
        flow: FromQuery[str | None] = None,
        outdated: Annotated[bool, QueryParameter(description="only those not on their flow's live revision")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_SAFE_INTEGER)] = 0,
    ) -> ConversationList:
        live = services.catalog.live_map()
        rows = await asyncio.to_thread(
            services.store.list_conversations,
            status=status,
            channel=channel,
            flow=flow,
            outdated=live if outdated else None,
            limit=limit,
            offset=offset,
        )
        return ConversationList(conversations=[conversation_view(r, live) for r in rows], limit=limit, offset=offset)

    @get(
        "/{conversation_id:str}",
        summary="One conversation",
        operation_id="getConversation",
        responses=problem_responses(404),
    )
    async def get_conversation(self, services: ServicesDep, conversation_id: FromPath[str]) -> ConversationView:
        return conversation_view(await _find(services, conversation_id), services.catalog.live_map())

    @get(
        "/{conversation_id:str}/messages",
        summary="The transcript: every message in and out, with delivery status",
        operation_id="getTranscript",
        responses=problem_responses(400, 404),
    )
    async def transcript(
        self,
        services: ServicesDep,
        conversation_id: FromPath[str],
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_SAFE_INTEGER, description="only messages with a larger seq")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=2000)] = 500,
    ) -> Transcript:
        await _find(services, conversation_id)
        rows = await asyncio.to_thread(services.store.transcript, conversation_id, after_seq=after, limit=limit)
        return Transcript(conversation_id=conversation_id, messages=[message_view(r) for r in rows])

    @get(
        "/{conversation_id:str}/state",
        summary="Live state from the workflow: step, status, revision, variables",
        operation_id="getConversationState",
        responses=problem_responses(404, 503),
    )
    async def state(self, services: ServicesDep, conversation_id: FromPath[str]) -> ConversationState:
        await _find(services, conversation_id)
        try:
            view = await services.conversations.state(conversation_id)
        except RPCError as exc:
            raise Problem(503, f"the conversation's workflow cannot be asked right now: {exc.message}") from None
        if not view.state:
            # The workflow has not begun its flow yet (a query answered before its first task).
            raise Problem(503, "the conversation's workflow has not started its flow yet; ask again shortly")
        return ConversationState(
            conversation_id=view.conversation_id,
            state=msgspec.convert(view.state, FlowPosition),
            timers=dict(view.timers),
            in_flight=view.in_flight,
            idle=view.idle,
        )

    @post(
        "/{conversation_id:str}/close",
        status_code=202,
        summary="Close a conversation (its flow's goodbye is not run)",
        operation_id="closeConversation",
        responses=problem_responses(400, 404, 409, 413, 415, 422, 503),
    )
    async def close(
        self, services: ServicesDep, conversation_id: FromPath[str], data: RequestBody[CloseBody | None] = None
    ) -> ClosingConversation:
        status = (data or CloseBody()).status
        if status not in CLOSE_STATUSES:
            raise Problem(422, f"`status` {status!r} is not a close status; use one of {', '.join(CLOSE_STATUSES)}")
        row = await _find(services, conversation_id)
        if row.status == "ended":
            raise Problem(409, f"conversation {conversation_id} has already ended")
        try:
            await services.conversations.close(conversation_id, status)
        except ConversationEnded:
            raise Problem(409, f"conversation {conversation_id} has already ended") from None
        except RPCError as exc:
            raise Problem(503, f"the conversation could not be closed right now: {exc.message}") from None
        return ClosingConversation(conversation_id=conversation_id, closing=True)


async def _find(services: ServicesDep, conversation_id: str) -> Conversation:
    row = await asyncio.to_thread(services.store.get_conversation, conversation_id)
    if row is None:
        raise Problem(404, f"there is no conversation {conversation_id!r}")
    return row
