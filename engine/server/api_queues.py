"""``/api/queues``: the queues people work in, how each stands; admins describe queues here too.

Queues of ``flowdesk.yaml`` are listed beside the admins' and are read-only here
(409 saying to edit the settings): one place decides each queue.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, RequestBody

from engine.people.queues import members_of, open_queue
from engine.people.roles import ADMIN_ONLY, AGENT_ROLES, sees_every_queue
from engine.people.settings import FALL_THROUGH, WAIT, QueueSpec
from engine.server.api_agent_actions import directory_of
from engine.server.api_models_people import (
    QUEUE_NAME_PATTERN,
    NewQueueBody,
    QueueBody,
    QueueDeleted,
    QueueList,
    QueueView,
)
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.problems import Problem, problem_responses
from engine.server.services import Services, ServicesDep
from engine.store.people import PRESENCES, QueueStats
from engine.store.tables import AgentQueue

QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)


def _view(spec: QueueSpec, stats: QueueStats, members: tuple[int, ...], online: set[int]) -> QueueView:
    return QueueView(
        name=spec.name,
        display_name=spec.title,
        description=spec.description,
        source=spec.source,
        members=list(members),
        capacity=spec.capacity,
        hours=spec.hours,
        when_nobody=spec.when_nobody,
        waiting=stats.waiting,
        oldest_waiting_since=stats.oldest.isoformat() if stats.oldest else None,
        members_online=sum(1 for m in members if m in online),
    )


async def _queue_view(services: Services, name: str) -> QueueView:
    spec = await directory_of(services).spec(name)
    stats = await asyncio.to_thread(services.store.queue_stats)
    people = await asyncio.to_thread(services.store.list_people, [str(r) for r in AGENT_ROLES])
    online = {u.id for u in people if u.id is not None and u.presence == PRESENCES[0]}
    members = members_of(spec, [u.id for u in people if u.id is not None])
    return _view(spec, stats.get(name, QueueStats()), members, online)


def _row(name: str, data: QueueBody | NewQueueBody, services: Services) -> AgentQueue:
    if data.when_nobody not in (WAIT, FALL_THROUGH):
        raise Problem(422, f"`when_nobody` {data.when_nobody!r} is not wait or fall_through")
    if data.hours:
        calendars = services.settings.get("business_hours", default={}) or {}
        if data.hours not in calendars:
            raise Problem(422, f"there is no business_hours calendar {data.hours!r} in the settings")
    return AgentQueue(
        name=name,
        display_name=data.display_name.strip(),
        description=data.description.strip(),
        members=sorted(set(data.members)),
        capacity=data.capacity,
        hours=data.hours or None,
        when_nobody=data.when_nobody,
    )


async def _check_members(services: Services, members: list[int]) -> None:
    people = await asyncio.to_thread(services.store.list_people, [str(r) for r in AGENT_ROLES])
    known = {u.id for u in people}
    unknown = sorted(set(members) - known)
    if unknown:
        raise Problem(422, f"members {unknown} are not agents, supervisors or admins (user ids; GET /api/agents)")


async def _refuse_settings_queue(services: Services, name: str) -> None:
    if name in services.settings_reloader.settings.people.queues:
        raise Problem(
            409, f"queue {name!r} is described in flowdesk.yaml: change it there (settings queues are read-only here)"
        )


class QueuesController(Controller):
    path = "/api/queues"
    tags = ["queues"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="Queues with their waiting count, oldest wait and members online (agents: their queues)",
        operation_id="listQueues",
        responses=problem_responses(403),
        opt={"roles": AGENT_ROLES},
    )
    async def list_queues(self, request: Request[Any, Any, Any], services: ServicesDep) -> QueueList:
        principal = principal_of(request)
        directory = directory_of(services)
        described = await directory.described()
        stats = await asyncio.to_thread(services.store.queue_stats)
        # Queues conversations wait in that nobody described: open, listed so nobody misses them.
        specs = dict(described) | {n: open_queue(n) for n in stats if n not in described}
        people = await asyncio.to_thread(services.store.list_people, [str(r) for r in AGENT_ROLES])
        agent_ids = [u.id for u in people if u.id is not None]
        online = {u.id for u in people if u.id is not None and u.presence == PRESENCES[0]}
        views = []
        for name in sorted(specs):
            members = members_of(specs[name], agent_ids)
            if not sees_every_queue(principal.role) and principal.user_id not in members:
                continue
            views.append(_view(specs[name], stats.get(name, QueueStats()), members, online))
        return QueueList(queues=views)

    @post(
        "/",
        status_code=201,
        summary="Describe a queue (admins)",
        operation_id="createQueue",
        responses=problem_responses(403, 409, 413, 415, 422),
        opt={"roles": ADMIN_ONLY},
    )
    async def create_queue(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[NewQueueBody]
    ) -> QueueView:
        name = data.name.strip()
        if not QUEUE_NAME.fullmatch(name):
            raise Problem(422, f"queue name {name!r}: use letters, digits, '_', '-' or '.', up to 64 characters")
        await _refuse_settings_queue(services, name)
        await _check_members(services, data.members)
        row = _row(name, data, services)
        if await services.store.in_write_thread(services.store.save_admin_queue, row, create=True) is None:
            raise Problem(409, f"queue {name!r} exists; change it with PUT /api/queues/{name}")
        await audit(
            request, "queue.create", target=name, detail={"members": row.members, "when_nobody": row.when_nobody}
        )
        return await _queue_view(services, name)

    @put(
        "/{name:str}",
        summary="Change an admin-described queue (settings queues are read-only: 409)",
        operation_id="updateQueue",
        responses=problem_responses(403, 404, 409, 413, 415, 422),
        opt={"roles": ADMIN_ONLY},
    )
    async def update_queue(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str], data: RequestBody[QueueBody]
    ) -> QueueView:
        await _refuse_settings_queue(services, name)
        await _check_members(services, data.members)
        row = _row(name, data, services)
        if await services.store.in_write_thread(services.store.save_admin_queue, row, create=False) is None:
            raise Problem(404, f"there is no admin queue {name!r}; create it with POST /api/queues")
        await audit(
            request, "queue.update", target=name, detail={"members": row.members, "when_nobody": row.when_nobody}
        )
        return await _queue_view(services, name)

    @delete(
        "/{name:str}",
        status_code=200,
        summary="Delete an admin-described queue (settings queues are read-only: 409)",
        operation_id="deleteQueue",
        responses=problem_responses(403, 404, 409),
        opt={"roles": ADMIN_ONLY},
    )
    async def delete_queue(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: FromPath[str]
    ) -> QueueDeleted:
        await _refuse_settings_queue(services, name)
        if not await services.store.in_write_thread(services.store.delete_admin_queue, name):
            raise Problem(404, f"there is no admin queue {name!r}")
        await audit(request, "queue.delete", target=name)
        return QueueDeleted(name=name, deleted=True)
