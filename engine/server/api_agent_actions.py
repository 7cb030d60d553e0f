"""What agents do to a conversation: take, reply, notes, transfer, resolve, reopen, snooze, labels, read, typing.

Each change is an ``agent`` update of the conversation's workflow (engine/server/
agent_calls.py), which decides claims: two agents taking one conversation at once
get one success and one 409 naming the holder. An agent's reply is delivered by the
workflow through the conversation's channel; a note is only logged, never sent.

Visibility: an agent acting on a conversation outside their queues that they do
not hold gets the same 404 as for one that does not exist (its existence is not
revealed); supervisors and admins see every queue, and act over another agent's
claim (their reply or transfer is forced through; a take is not: that is /assign).
Every action that changes the conversation is audited, with ids and choices, never
the text; marking read and typing are not (they change nothing anyone answers for).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from litestar import Controller, Request, post, put
from litestar.params import FromPath, RequestBody

from engine.people.roles import AGENT_ROLES, SUPERVISORS, Principal, sees_every_queue
from engine.runtime.types import AgentAction
from engine.server.agent_calls import act
from engine.server.api_models_people import (
    ActionDone,
    AssignBody,
    LabelsBody,
    ReadBody,
    ReadDone,
    ReopenBody,
    SnoozeBody,
    TextBody,
    TransferBody,
    TypingDone,
)
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.problems import Problem, problem_responses
from engine.server.queues import QueueDirectory
from engine.server.services import Services, ServicesDep
from engine.store import Conversation

#: What every action can answer besides its success.
ERRORS = problem_responses(400, 403, 404, 409, 413, 415, 422, 503)
AGENTS_OPT: dict[str, Any] = {"roles": AGENT_ROLES}
LABEL_MAX_CHARS = 50


def directory_of(services: Services) -> QueueDirectory:
    if services.queues is not None:
        return services.queues
    return QueueDirectory(services.store, lambda: services.settings_reloader.settings)


async def visible_conversation(services: Services, principal: Principal, conversation_id: str) -> Conversation:
    """The conversation if ``principal`` may see it; 404 alike for unknown and not theirs."""
    row = await asyncio.to_thread(services.store.get_conversation, conversation_id)
    if row is not None and not sees_every_queue(principal.role):
        visibility = await directory_of(services).visibility(principal)
        if not visibility.sees(row.queue, row.assigned_agent):
            row = None
    if row is None:
        raise Problem(404, f"there is no conversation {conversation_id!r}")
    return row


async def display_name_of(services: Services, agent_id: str) -> str:
    """A person's display name for an agent id (a user's id as text); the id itself otherwise."""
    if agent_id.isdigit():
        users = await asyncio.to_thread(services.store.list_people)
        for user in users:
            if str(user.id) == agent_id:
                return user.display_name
    return agent_id


async def _not_held_by_another(services: Services, principal: Principal, row: Conversation) -> None:
    """An agent may change only a conversation nobody else holds (supervisors reassign with /assign)."""
    holder = row.assigned_agent
    if holder and holder != principal.agent_id and not sees_every_queue(principal.role):
        name = await display_name_of(services, holder)
        raise Problem(409, f"conversation {row.id} is held by {name}", holder=holder)


def _action(principal: Principal, action: str, **fields: Any) -> AgentAction:
    """The workflow action of ``principal``; a supervisor's acts over another agent's claim (``force``),
    as the API already let it through, except a take: taking a held conversation is a reassign (/assign)."""
    if action != "accept" and sees_every_queue(principal.role):
        fields.setdefault("force", True)
    return AgentAction(action=action, agent=principal.agent_id, name=principal.display_name, **fields)


def _done(conversation_id: str, action: str) -> ActionDone:
    return ActionDone(conversation_id=conversation_id, action=action, accepted=True)


class AgentActionsController(Controller):
    path = "/api/conversations"
    tags = ["agents"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest
    opt = AGENTS_OPT

    @post(
        "/{conversation_id:str}/take",
        status_code=200,
        summary="Take a waiting conversation (one agent wins; the others get 409 naming the holder)",
        operation_id="takeConversation",
        responses=ERRORS,
    )
    async def take(
        self, request: Request[Any, Any, Any], services: ServicesDep, conversation_id: FromPath[str]
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        if row.assigned_agent and row.assigned_agent != principal.agent_id:
            name = await display_name_of(services, row.assigned_agent)
            raise Problem(409, f"conversation {conversation_id} is held by {name}", holder=row.assigned_agent)
        await act(services.conversations, conversation_id, _action(principal, "accept"))
        await audit(request, "conversation.take", conversation_id=conversation_id, detail={"queue": row.queue})
        return _done(conversation_id, "take")

    @post(
        "/{conversation_id:str}/reply",
        status_code=200,
        summary="Reply to the customer (sent through the conversation's channel, with the agent's name)",
        operation_id="replyToConversation",
        responses=ERRORS,
    )
    async def reply(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[TextBody],
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        await _not_held_by_another(services, principal, row)
        text = _text(data.text)
        await act(services.conversations, conversation_id, _action(principal, "reply", text=text))
        await audit(request, "conversation.reply", conversation_id=conversation_id, detail={"chars": len(text)})
        return _done(conversation_id, "reply")

    @post(
        "/{conversation_id:str}/notes",
        status_code=200,
        summary="Add a private note (colleagues see it; it never reaches the customer)",
        operation_id="addConversationNote",
        responses=ERRORS,
    )
    async def note(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[TextBody],
    ) -> ActionDone:
        principal = principal_of(request)
        await visible_conversation(services, principal, conversation_id)
        text = _text(data.text)
        await act(services.conversations, conversation_id, _action(principal, "note", text=text))
        await audit(request, "conversation.note", conversation_id=conversation_id, detail={"chars": len(text)})
        return _done(conversation_id, "note")

    @post(
        "/{conversation_id:str}/transfer",
        status_code=200,
        summary="Transfer to another agent or a queue, with an optional note for whoever gets it",
        operation_id="transferConversation",
        responses=ERRORS,
    )
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[TransferBody],
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        await _not_held_by_another(services, principal, row)
        agent, queue = (data.agent or "").strip(), (data.queue or "").strip()
        if bool(agent) == bool(queue):
            raise Problem(422, "say where to: `agent` (an agent id) or `queue` (a queue name), one of them")
        fields: dict[str, Any] = {"queue": queue}
        if agent:
            target = await _agent_user(services, agent)
            fields |= {"to_agent": agent, "to_name": target}
        note = (data.note or "").strip()
        if note:
            # Before the transfer, while the caller still holds it: whoever gets it reads why.
            await act(services.conversations, conversation_id, _action(principal, "note", text=note))
        await act(services.conversations, conversation_id, _action(principal, "transfer", **fields))
        detail = {"to_agent": agent} if agent else {"to_queue": queue}
        await audit(
            request, "conversation.transfer", conversation_id=conversation_id, detail=detail | {"note": bool(note)}
        )
        return _done(conversation_id, "transfer")

    @post(
        "/{conversation_id:str}/resolve",
        status_code=200,
        summary="Resolve: the flow goes on at the hand-off's next step",
        operation_id="resolveConversation",
        responses=ERRORS,
    )
    async def resolve(
        self, request: Request[Any, Any, Any], services: ServicesDep, conversation_id: FromPath[str]
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        await _not_held_by_another(services, principal, row)
        await act(services.conversations, conversation_id, _action(principal, "resolve"))
        await audit(request, "conversation.resolve", conversation_id=conversation_id, detail={"queue": row.queue})
        return _done(conversation_id, "resolve")

    @post(
        "/{conversation_id:str}/reopen",
        status_code=200,
        summary="Reopen a resolved conversation that has not ended: it waits in a queue again",
        operation_id="reopenConversation",
        responses=ERRORS,
    )
    async def reopen(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[ReopenBody | None] = None,
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        queue = ((data.queue if data else None) or "").strip()
        await act(services.conversations, conversation_id, _action(principal, "reopen", queue=queue))
        await audit(
            request, "conversation.reopen", conversation_id=conversation_id, detail={"queue": queue or row.queue}
        )
        return _done(conversation_id, "reopen")

    @post(
        "/{conversation_id:str}/snooze",
        status_code=200,
        summary="Snooze: hidden from the inbox until a time or until the customer writes (neither: unsnooze)",
        operation_id="snoozeConversation",
        responses=ERRORS,
    )
    async def snooze(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[SnoozeBody],
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        await _not_held_by_another(services, principal, row)
        until = ""
        if data.until:
            until = _aware_time(data.until).isoformat()
            if data.until_reply:
                raise Problem(422, "snooze `until` a time or `until_reply`, not both")
        await act(
            services.conversations,
            conversation_id,
            _action(principal, "snooze", until=until, until_reply=data.until_reply),
        )
        await audit(
            request,
            "conversation.snooze",
            conversation_id=conversation_id,
            detail={"until": until or None, "until_reply": data.until_reply},
        )
        return _done(conversation_id, "snooze")

    @put(
        "/{conversation_id:str}/labels",
        status_code=200,
        summary="Set the conversation's labels (the full set)",
        operation_id="setConversationLabels",
        responses=ERRORS,
    )
    async def labels(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[LabelsBody],
    ) -> ActionDone:
        return await _set_labels(request, services, conversation_id, data)

    @post(
        "/{conversation_id:str}/read",
        status_code=200,
        summary="Mark the conversation read up to a seq (per person: unread counts in the list follow it)",
        operation_id="markConversationRead",
        responses=ERRORS,
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[ReadBody],
    ) -> ReadDone:
        principal = principal_of(request)
        await visible_conversation(services, principal, conversation_id)
        if principal.user_id is None:
            raise Problem(403, "read marks belong to people; an API token has none (sign in as the agent)")
        store = services.store
        seq = await store.in_write_thread(store.mark_read, principal.user_id, conversation_id, data.seq)
        return ReadDone(conversation_id=conversation_id, seq=seq)

    @post(
        "/{conversation_id:str}/typing",
        status_code=200,
        summary="The agent is typing: shown to the customer where their channel can show it (web chat)",
        operation_id="agentTyping",
        responses=ERRORS,
    )
    async def typing(
        self, request: Request[Any, Any, Any], services: ServicesDep, conversation_id: FromPath[str]
    ) -> TypingDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        if row.status != "handoff" or (row.assigned_agent and row.assigned_agent != principal.agent_id):
            return TypingDone(conversation_id=conversation_id, shown=False)
        return TypingDone(conversation_id=conversation_id, shown=await _push_typing(services, row, principal))

    @post(
        "/{conversation_id:str}/assign",
        status_code=200,
        summary="Give the conversation to an agent, whoever holds it now (supervisors)",
        operation_id="assignConversation",
        responses=ERRORS,
        opt={"roles": SUPERVISORS},
    )
    async def assign(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        conversation_id: FromPath[str],
        data: RequestBody[AssignBody],
    ) -> ActionDone:
        principal = principal_of(request)
        row = await visible_conversation(services, principal, conversation_id)
        agent = data.agent.strip()
        name = await _agent_user(services, agent)
        action = AgentAction(action="assign", agent=agent, name=name, by=principal.agent_id, force=True)
        await act(services.conversations, conversation_id, action)
        await audit(
            request,
            "conversation.assign",
            conversation_id=conversation_id,
            target=agent,
            detail={"from": row.assigned_agent, "to": agent},
        )
        return _done(conversation_id, "assign")


async def _set_labels(
    request: Request[Any, Any, Any], services: Services, conversation_id: str, data: LabelsBody
) -> ActionDone:
    principal = principal_of(request)
    row = await visible_conversation(services, principal, conversation_id)
    await _not_held_by_another(services, principal, row)
    labels = _labels(data.labels)
    await act(services.conversations, conversation_id, _action(principal, "labels", labels=labels))
    await audit(request, "conversation.labels", conversation_id=conversation_id, detail={"labels": labels})
    return _done(conversation_id, "labels")


def _text(text: str) -> str:
    if not text.strip():
        raise Problem(422, "`text` is empty; write something")
    return text


def _labels(labels: list[str]) -> list[str]:
    cleaned: list[str] = []
    for label in labels:
        value = label.strip()
        if not value:
            raise Problem(422, "a label cannot be empty")
        if len(value) > LABEL_MAX_CHARS:
            raise Problem(422, f"label {value[:20]!r}... is longer than {LABEL_MAX_CHARS} characters")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _aware_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(422, f"`until` {value!r} is not an ISO 8601 time like 2026-05-01T09:00:00Z") from None
    if at.tzinfo is None:
        raise Problem(422, f"`until` {value!r} needs a time zone (Z or +02:00)")
    return at


async def _agent_user(services: Services, agent: str) -> str:
    """The display name of the person ``agent`` names (an agent, supervisor or admin); 422 if nobody."""
    people = await asyncio.to_thread(services.store.list_people, [str(r) for r in AGENT_ROLES])
    for user in people:
        if str(user.id) == agent:
            return user.display_name
    raise Problem(422, f"there is no agent {agent!r} (an agent id is a user's id; GET /api/agents lists them)")


async def _push_typing(services: Services, row: Conversation, principal: Principal) -> bool:
    """Tell the customer's sockets on this node (web chat) that the agent types; False where nothing can show it."""
    channel = services.channels.get(row.channel)
    hub = getattr(channel, "hub", None)
    push = getattr(hub, "push", None)
    if push is None:
        return False
    taken = await push(row.contact_id, {"type": "typing", "state": True, "by": "agent", "name": principal.display_name})
    return bool(taken)
