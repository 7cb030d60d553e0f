"""``/api/conversations``: find conversations, read transcripts, see and close them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, KwargDefinition, QueryParameter, RequestBody
from temporalio.service import RPCError

from engine.people.roles import AGENT_ROLES
from engine.runtime.client import ConversationEnded
from engine.server.api_agent_actions import directory_of, visible_conversation
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
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import ServicesDep
from engine.store import Conversation, Message
from engine.store.people import InboxFilter

#: The end statuses an operator can close a conversation with (docs/flows.md, `end`).
CLOSE_STATUSES = ("closed", "resolved", "unresolved", "abandoned", "completed")


@dataclass
class CloseBody:
    """How the conversation is closed: the end status it gets."""

    # The handler checks it and names the allowed ones; the schema lists them.
    status: Annotated[str, KwargDefinition(schema_extra={"enum": list(CLOSE_STATUSES)})] = "closed"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def conversation_view(row: Conversation, live: dict[str, str], unread: int = 0) -> ConversationView:
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
        ended_at=_iso(row.ended_at),
        queue=row.queue,
        waiting_since=_iso(row.waiting_since),
        labels=list(row.labels or []),
        snoozed_until=_iso(row.snoozed_until),
        snoozed_until_reply=bool(row.snoozed_until_reply),
        last_message=row.last_message or "",
        last_message_at=_iso(row.last_message_at),
        unread=unread,
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
    opt = {"roles": AGENT_ROLES}  # noqa: RUF012 - who reaches these routes (engine.people.roles)

    @get(
        "/",
        summary="Conversations, newest activity first: by status, channel, flow, queue, assignee, label, snooze",
        description="Agents see the conversations of their queues and those they hold; supervisors and admins all. "
        "Snoozed conversations are left out unless `snoozed=true` (then only they are listed).",
        operation_id="listConversations",
        responses=problem_responses(400, 403),
    )
    async def list_conversations(  # noqa: PLR0917 - each query parameter is one argument to Litestar
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        status: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None,
        flow: FromQuery[str | None] = None,
        outdated: Annotated[bool, QueryParameter(description="only those not on their flow's live revision")] = False,
        queue: Annotated[str | None, QueryParameter(description="only those of this queue")] = None,
        assignee: Annotated[
            str | None, QueryParameter(description="only those this agent holds: an agent id, or `me`")
        ] = None,
        unassigned: Annotated[bool, QueryParameter(description="only those waiting for an agent")] = False,
        label: Annotated[str | None, QueryParameter(description="only those with this label")] = None,
        snoozed: Annotated[bool, QueryParameter(description="only snoozed ones (otherwise they are left out)")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_SAFE_INTEGER)] = 0,
    ) -> ConversationList:
        principal = principal_of(request)
        live = services.catalog.live_map()
        if assignee is not None and assignee.strip().lower() == "me":
            assignee = principal.agent_id
        where = InboxFilter(
            status=status,
            channel=channel,
            flow=flow,
            outdated=live if outdated else None,
            queue=queue,
            assignee=assignee,
            unassigned=unassigned,
            label=label,
            snoozed=snoozed,
        )
        where = (await directory_of(services).visibility(principal)).narrow(where)
        rows = await asyncio.to_thread(services.store.inbox, where, limit=limit, offset=offset)
        unread: dict[str, int] = {}
        if principal.user_id is not None and rows:
            unread = await asyncio.to_thread(services.store.unread_counts, principal.user_id, [r.id for r in rows])
        return ConversationList(
            conversations=[conversation_view(r, live, unread.get(r.id, 0)) for r in rows], limit=limit, offset=offset
        )

    @get(
        "/{conversation_id:str}",
        summary="One conversation",
        operation_id="getConversation",
        responses=problem_responses(404),
    )
    async def get_conversation(
        self, request: Request[Any, Any, Any], services: ServicesDep, conversation_id: FromPath[str]
    ) -> ConversationView:
        row = await _find(services, conversation_id, request)
        unread: dict[str, int] = {}
        if (user_id := principal_of(request).user_id) is not None:
            unread = await asyncio.to_thread(services.store.unread_counts, user_id, [row.id])
        return conversation_view(row, services.catalog.live_map(), unread.get(row.id, 0))

    @get(
        "/{conversation_id:str}/messages",
        summary="The transcript: every message in and out, with delivery status",
        operation_id="getTranscript",
        responses=problem_responses(400, 404),
    )
    async def transcript(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_SAFE_INTEGER, description="only messages with a larger seq")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=2000)] = 500,
    ) -> Transcript:
        await _find(services, conversation_id, request)
        rows = await asyncio.to_thread(services.store.transcript, conversation_id, after_seq=after, limit=limit)
        return Transcript(conversation_id=conversation_id, messages=[message_view(r) for r in rows])

    @get(
        "/{conversation_id:str}/state",
        summary="Live state from the workflow: step, status, revision, variables",
        operation_id="getConversationState",
        responses=problem_responses(404, 503),
    )
    async def state(
        self, request: Request[Any, Any, Any], services: ServicesDep, conversation_id: FromPath[str]
    ) -> ConversationState:
        await _find(services, conversation_id, request)
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
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[CloseBody | None] = None,
    ) -> ClosingConversation:
        status = (data or CloseBody()).status
        if status not in CLOSE_STATUSES:
            raise Problem(422, f"`status` {status!r} is not a close status; use one of {', '.join(CLOSE_STATUSES)}")
        row = await _find(services, conversation_id, request)
        if row.status == "ended":
            raise Problem(409, f"conversation {conversation_id} has already ended")
        try:
            await services.conversations.close(conversation_id, status)
        except ConversationEnded:
            raise Problem(409, f"conversation {conversation_id} has already ended") from None
        except RPCError as exc:
            raise Problem(503, f"the conversation could not be closed right now: {exc.message}") from None
        await audit(request, "conversation.close", conversation_id=conversation_id, detail={"status": status})
        return ClosingConversation(conversation_id=conversation_id, closing=True)


async def _find(services: ServicesDep, conversation_id: str, request: Request[Any, Any, Any]) -> Conversation:
    """The conversation if the caller may see it (agents: their queues' and their own); 404 alike otherwise."""
    return await visible_conversation(services, principal_of(request), conversation_id)
