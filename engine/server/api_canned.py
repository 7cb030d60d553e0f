"""``/api/canned``: canned responses, the team's and each agent's own, and rendering one for a conversation.

A canned response's text is a template written by staff, rendered in the flows'
sandbox (:mod:`engine.flow.expr`) with the conversation's contact, the conversation,
the agent and the flow's variables as *values*: a customer whose name is
``{{ 7*7 }}`` is greeted by that name, never by 49. A text that cannot render
(a syntax error, an unknown name, an unsafe attribute) is refused when saved, with
its line, so an agent never meets a broken one mid-conversation.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, delete, get, post, put
from litestar.params import KwargDefinition, PathParameter, QueryParameter, RequestBody

from engine.errors import ExpressionError
from engine.flow import expr, expr_static
from engine.people.roles import AGENT_ROLES, SUPERVISORS, Principal
from engine.server.api_agent_actions import directory_of
from engine.server.api_models_people import NOT_ONLY_SPACES
from engine.server.api_models_reports import CannedDeleted, CannedList, CannedView, RenderedCanned
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import Services, ServicesDep
from engine.store.canned import CannedShortcutTaken
from engine.store.tables import CannedResponse

#: What a canned response's template may name.
CANNED_SCOPE = frozenset({"contact", "conversation", "agent", "vars"})
SHORTCUT = re.compile(r"[\w.-]{1,40}")
MAX_TITLE = 200
MAX_TEXT = 10_000
#: How long rendering waits for the workflow's variables before rendering without them.
STATE_WAIT_S = 3.0
#: What a template is tried with when saved: every name present, every value empty.
_TRIAL_SCOPE: dict[str, Any] = {name: {} for name in CANNED_SCOPE}
_BODY_PROBLEMS = problem_responses(403, 404, 409, 413, 415, 422)

# Described for the document; checked by _checked, whose 422 says what is wrong (and, for a
# template that does not compile, where).
_SHORTCUT_PATTERN = r"^/?[\w.-]{1,40}$"
Shortcut = Annotated[
    str,
    KwargDefinition(
        pattern=_SHORTCUT_PATTERN, description="1 to 40 letters, digits, '_', '-' or '.'; a leading / is dropped"
    ),
]
Template = Annotated[
    str,
    KwargDefinition(
        min_length=1,
        max_length=MAX_TEXT,
        pattern=NOT_ONLY_SPACES,
        description="the text, a template: `{{ contact.name }}`, `{{ agent.name }}`, `{{ vars.x }}` ...",
    ),
]
Title = Annotated[str, KwargDefinition(max_length=MAX_TITLE)]


@dataclass
class CannedBody:
    """A canned response: `shared` for the team (supervisors and admins only), else the caller's own."""

    shortcut: Shortcut
    text: Template
    title: Title = ""
    shared: bool = False


@dataclass
class CannedChange:
    """New shortcut, title and text of a canned response (who owns it does not change)."""

    shortcut: Shortcut
    text: Template
    title: Title = ""


@dataclass
class RenderBody:
    """The conversation to fill the canned response's variables from."""

    conversation_id: str


def canned_view(row: CannedResponse) -> CannedView:
    assert row.id is not None  # a stored row has one
    return CannedView(
        id=row.id,
        shortcut=row.shortcut,
        title=row.title,
        text=row.text,
        shared=row.owner_id is None,
        owner_id=row.owner_id,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )


def template_problem(text: str) -> Problem | None:
    """Why ``text`` cannot be a canned response's template (with its line and column), or None."""
    error = expr_static.syntax_error(text, template=True)
    if error is not None:
        return _located(text, str(error), error.line, None)
    unknown = sorted(expr_static.referenced_names(text, template=True) - CANNED_SCOPE)
    if unknown:
        line, column = _find(text, unknown[0])
        names = ", ".join(sorted(CANNED_SCOPE))
        return _located(text, f"the template names {unknown[0]!r}; a canned response can use {names}", line, column)
    try:
        expr.render(text, _TRIAL_SCOPE)
    except ExpressionError as exc:
        return _located(text, str(exc), exc.line, None)
    return None


def _find(text: str, name: str) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the first ``name`` inside a ``{{ }}`` or ``{% %}`` of ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        for block in re.finditer(r"\{[{%].*?[}%]\}", line):
            found = re.search(rf"\b{re.escape(name)}\b", block.group())
            if found:
                return number, block.start() + found.start() + 1
    return None, None


def _located(text: str, message: str, line: int | None, column: int | None) -> Problem:
    where = f" (line {line}{f', column {column}' if column else ''})" if line else ""
    diagnostic = {"message": message, "line": line, "column": column}
    return Problem(422, f"the canned response's text cannot be used{where}: {message}", diagnostics=[diagnostic])


def _checked(shortcut: str, title: str, text: str) -> str:
    """The shortcut as stored (without a leading ``/``); 422 naming what is wrong."""
    shortcut = shortcut.removeprefix("/")  # as the schema's pattern says: no spaces around it either
    if not SHORTCUT.fullmatch(shortcut):
        raise Problem(422, "`shortcut` must be 1 to 40 letters, digits, '_', '-' or '.' (no spaces)")
    if len(title) > MAX_TITLE:
        raise Problem(422, f"`title` is longer than {MAX_TITLE} characters")
    if not text.strip():
        raise Problem(422, "`text` is empty")
    if len(text) > MAX_TEXT:
        raise Problem(422, f"`text` is longer than {MAX_TEXT} characters")
    problem = template_problem(text)
    if problem is not None:
        raise problem
    return shortcut


async def _visible(services: Services, principal: Principal, canned_id: int) -> CannedResponse:
    """The response if the caller may use it (shared, or their own); 404 otherwise, saying nothing of others'."""
    row = await asyncio.to_thread(services.store.get_canned, canned_id)
    if row is None or (row.owner_id is not None and row.owner_id != principal.user_id):
        raise Problem(404, f"there is no canned response {canned_id}")
    return row


def _may_edit(principal: Principal, row: CannedResponse) -> None:
    if row.owner_id is None and principal.role not in SUPERVISORS:
        raise Problem(403, "shared canned responses are edited by supervisors and admins")


class CannedController(Controller):
    path = "/api/canned"
    tags = ["canned responses"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @get(
        "/",
        summary="Canned responses the caller can use (shared and own), matching `q` for the `/` picker",
        operation_id="listCanned",
        opt={"roles": AGENT_ROLES},
        responses=problem_responses(403),
    )
    async def list_canned(
        self,
        request: ApiRequest,
        services: ServicesDep,
        q: Annotated[str, QueryParameter(max_length=100, description="part of a shortcut, title or text")] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> CannedList:
        principal = principal_of(request)
        rows = await asyncio.to_thread(services.store.list_canned, owner_id=principal.user_id, query=q, limit=limit)
        return CannedList(canned=[canned_view(r) for r in rows])

    @post(
        "/",
        summary="Save a new canned response (a shared one needs a supervisor or admin)",
        operation_id="createCanned",
        opt={"roles": AGENT_ROLES},
        responses=_BODY_PROBLEMS,
    )
    async def create_canned(
        self, request: ApiRequest, services: ServicesDep, data: RequestBody[CannedBody]
    ) -> CannedView:
        principal = principal_of(request)
        shortcut = _checked(data.shortcut, data.title, data.text)
        if data.shared and principal.role not in SUPERVISORS:
            raise Problem(403, "shared canned responses are made by supervisors and admins; leave `shared` false")
        if not data.shared and principal.user_id is None:
            raise Problem(422, "an API token has no canned responses of its own: send `shared: true`")
        owner = None if data.shared else principal.user_id
        try:
            row = await services.store.in_write_thread(
                services.store.create_canned, owner_id=owner, shortcut=shortcut, title=data.title, text=data.text
            )
        except CannedShortcutTaken as exc:
            raise Problem(409, str(exc)) from None
        await audit(request, "canned.create", target=shortcut, detail={"id": row.id, "shared": owner is None})
        return canned_view(row)

    @put(
        "/{canned_id:int}",
        summary="Change a canned response (shared ones: supervisors and admins)",
        operation_id="updateCanned",
        opt={"roles": AGENT_ROLES},
        responses=_BODY_PROBLEMS,
    )
    async def update_canned(
        self,
        request: ApiRequest,
        services: ServicesDep,
        canned_id: Annotated[int, PathParameter(ge=1, le=MAX_SAFE_INTEGER)],
        data: RequestBody[CannedChange],
    ) -> CannedView:
        principal = principal_of(request)
        _may_edit(principal, await _visible(services, principal, canned_id))
        shortcut = _checked(data.shortcut, data.title, data.text)
        try:
            row = await services.store.in_write_thread(
                services.store.update_canned, canned_id, shortcut=shortcut, title=data.title, text=data.text
            )
        except CannedShortcutTaken as exc:
            raise Problem(409, str(exc)) from None
        if row is None:
            raise Problem(404, f"there is no canned response {canned_id}")
        await audit(request, "canned.update", target=shortcut, detail={"id": canned_id, "shared": row.owner_id is None})
        return canned_view(row)

    @delete(
        "/{canned_id:int}",
        status_code=200,
        summary="Delete a canned response (shared ones: supervisors and admins)",
        operation_id="deleteCanned",
        opt={"roles": AGENT_ROLES},
        responses=problem_responses(403, 404),
    )
    async def delete_canned(
        self,
        request: ApiRequest,
        services: ServicesDep,
        canned_id: Annotated[int, PathParameter(ge=1, le=MAX_SAFE_INTEGER)],
    ) -> CannedDeleted:
        principal = principal_of(request)
        row = await _visible(services, principal, canned_id)
        _may_edit(principal, row)
        deleted = await services.store.in_write_thread(services.store.delete_canned, canned_id)
        if not deleted:
            raise Problem(404, f"there is no canned response {canned_id}")
        await audit(
            request, "canned.delete", target=row.shortcut, detail={"id": canned_id, "shared": row.owner_id is None}
        )
        return CannedDeleted(id=canned_id, deleted=True)

    @post(
        "/{canned_id:int}/render",
        status_code=200,
        summary="A canned response's text with the conversation's contact, conversation, agent and variables filled in",
        operation_id="renderCanned",
        opt={"roles": AGENT_ROLES},
        responses=problem_responses(403, 404, 413, 415, 422),
    )
    async def render_canned(
        self,
        request: ApiRequest,
        services: ServicesDep,
        canned_id: Annotated[int, PathParameter(ge=1, le=MAX_SAFE_INTEGER)],
        data: RequestBody[RenderBody],
    ) -> RenderedCanned:
        principal = principal_of(request)
        row = await _visible(services, principal, canned_id)
        scope = await _scope(services, principal, data.conversation_id)
        try:
            text = expr.render(row.text, scope)
        except ExpressionError as exc:
            raise Problem(422, f"canned response {canned_id} cannot be rendered: {exc}") from None
        return RenderedCanned(id=canned_id, conversation_id=data.conversation_id, text=text)


async def _scope(services: Services, principal: Principal, conversation_id: str) -> dict[str, Any]:
    """What a canned response is rendered with: the conversation's data as values, never as template source."""
    conversation = await asyncio.to_thread(services.store.get_conversation, conversation_id)
    missing = Problem(404, f"there is no conversation {conversation_id!r}")
    if conversation is None:
        raise missing
    directory = directory_of(services)
    if not (await directory.visibility(principal)).sees(conversation.queue, conversation.assigned_agent):
        raise missing  # another team's conversation: as if it were not there
    contact = await asyncio.to_thread(services.store.get_contact, conversation.contact_id)
    flow_vars: dict[str, Any] = {}
    flow_contact: dict[str, Any] = {}
    try:
        view = await asyncio.wait_for(services.conversations.state(conversation_id), STATE_WAIT_S)
        flow_vars = dict(view.state.get("vars") or {})
        flow_contact = dict(view.state.get("contact") or {})
    except Exception:  # an ended or unreachable workflow: render with what the store knows
        flow_vars = {}
    stored_contact = {
        "id": conversation.contact_id,
        "name": contact.name if contact else None,
        "locale": contact.locale if contact else None,
        "email": contact.email if contact else None,
        "phone": contact.phone if contact else None,
    }
    return {
        "contact": {**flow_contact, **{k: v for k, v in stored_contact.items() if v is not None}},
        "conversation": {
            "id": conversation.id,
            "channel": conversation.channel,
            "queue": conversation.queue,
            "status": conversation.status,
            "labels": list(conversation.labels or []),
            "flow": conversation.flow,
        },
        "agent": {"id": principal.agent_id, "name": principal.display_name, "email": principal.email},
        "vars": flow_vars,
    }
