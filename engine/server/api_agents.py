"""``/api/agents``: who answers customers, their presence and load; setting presence.

Presence goes through :class:`engine.server.presence.Presence` (stored, published on
the agent hub, and a poke to the dispatcher when someone comes online).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.params import Parameter, RequestBody

from engine.people.queues import capacity_of, open_queue, queues_of
from engine.people.roles import AGENT_ROLES, SUPERVISORS, Principal
from engine.server.api_agent_actions import directory_of
from engine.server.api_models_people import AgentList, AgentView, PresenceBody, PresenceView
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.presence import Presence
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import Services, ServicesDep
from engine.store.people import PRESENCES


def presence_of(services: Services) -> Presence:
    if services.presence is not None:
        return services.presence
    # No node built one (a test's app): presence is still stored and published.
    dispatcher = services.dispatcher
    return Presence(
        services.store,
        services.agent_hub,
        grace_s=lambda: services.settings.people.presence_grace_s,
        on_online=dispatcher.poke if dispatcher is not None else lambda: None,
    )


async def _set(request: Request[Any, Any, Any], services: Services, user_id: int, presence: str) -> PresenceView:
    if presence not in PRESENCES:
        raise Problem(422, f"`presence` {presence!r} is not one of {', '.join(PRESENCES)}")
    principal: Principal = principal_of(request)
    if not await presence_of(services).set(user_id, presence, by=principal.agent_id):
        raise Problem(404, f"there is no user {user_id}")
    await audit(request, "agent.presence", target=str(user_id), detail={"presence": presence})
    return PresenceView(agent_id=str(user_id), presence=presence)


class AgentsController(Controller):
    path = "/api/agents"
    tags = ["agents"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="Agents, supervisors and admins with presence, load, capacity and queues",
        operation_id="listAgents",
        responses=problem_responses(403),
        opt={"roles": AGENT_ROLES},
    )
    async def list_agents(self, services: ServicesDep) -> AgentList:
        people = await asyncio.to_thread(services.store.list_people, [str(r) for r in AGENT_ROLES])
        loads = await asyncio.to_thread(services.store.agent_loads)
        described = await directory_of(services).described()
        default = services.settings.people.default_capacity
        return AgentList(
            agents=[
                AgentView(
                    id=str(user.id),
                    display_name=user.display_name,
                    role=user.role,
                    presence=user.presence,
                    presence_at=user.presence_at.isoformat() if user.presence_at else None,
                    load=loads.get(str(user.id), 0),
                    capacity=capacity_of(user.capacity, open_queue(""), default),
                    queues=sorted(queues_of(user.id, described)),
                )
                for user in people
                if user.id is not None
            ]
        )

    @put(
        "/me/presence",
        summary="Set my presence: online (gets conversations), away or offline",
        operation_id="setMyPresence",
        responses=problem_responses(403, 404, 413, 415, 422),
        opt={"roles": AGENT_ROLES},
    )
    async def set_my_presence(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[PresenceBody]
    ) -> PresenceView:
        principal = principal_of(request)
        if principal.user_id is None:
            raise Problem(
                403, "presence belongs to people; an API token has none (sign in, or PUT /api/agents/{id}/presence)"
            )
        return await _set(request, services, principal.user_id, data.presence)

    @put(
        "/{agent_id:int}/presence",
        summary="Set an agent's presence (supervisors)",
        operation_id="setAgentPresence",
        responses=problem_responses(403, 404, 413, 415, 422),
        opt={"roles": SUPERVISORS},
    )
    async def set_presence(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        agent_id: Annotated[int, Parameter(ge=1, le=MAX_SAFE_INTEGER)],
        data: RequestBody[PresenceBody],
    ) -> PresenceView:
        return await _set(request, services, agent_id, data.presence)
