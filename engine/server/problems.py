"""RFC 9457 problem details for every error the server returns.

Handlers raise :class:`Problem` (or Litestar's HTTP exceptions, or fail in
validation); the client always gets ``application/problem+json`` with a
``detail`` that says what was wrong and, where it helps, how to fix it. A domain
error (:class:`~engine.errors.FlowdeskError`) that means the request was at fault
is answered with its status from :data:`DOMAIN_STATUSES`, the one table of them.
Any other exception is logged with its traceback and answered with a 500 that
names no internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from engine.channels.errors import PayloadInvalid, SignatureInvalid
from engine.errors import ExpressionError, FlowdeskError, FlowError
from engine.flow.knowledge import KnowledgeUnusable
from engine.people.passwords import PasswordRefused
from engine.runtime.client import AgentActionInvalid, AgentActionRefused, ConversationEnded, ConversationTaken
from engine.store.canned import CannedShortcutTaken
from engine.store.tokens import TokenNameTaken
from engine.store.users import UserEmailTaken, UserInvalid

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
#: Bound of every integer parameter of the API: within what the database stores (64 bits)
#: and exact as a JSON number in any client (a double), so a schema's bound means what it says.
MAX_SAFE_INTEGER = 2**53 - 1
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}

#: The status each domain error is answered with when it reaches the client; the most
#: specific class listed wins (``TokenNameTaken`` over its ``ConfigError``). Only errors
#: that say the request was wrong are here: the rest (``ConfigError``, ``DatabaseError``,
#: ``ProviderError``, ...) are the server's own trouble, logged and answered 500 naming
#: no internals, because their messages name files, variables and hosts.
DOMAIN_STATUSES: dict[type[FlowdeskError], int] = {
    FlowError: 422,
    ExpressionError: 422,
    KnowledgeUnusable: 422,
    ConversationEnded: 409,
    ConversationTaken: 409,
    AgentActionRefused: 409,
    AgentActionInvalid: 422,
    TokenNameTaken: 409,
    UserEmailTaken: 409,
    CannedShortcutTaken: 409,
    UserInvalid: 422,
    PasswordRefused: 422,
    SignatureInvalid: 401,
    PayloadInvalid: 400,
}


@dataclass
class ProblemDetails:
    """An error response (RFC 9457), as the OpenAPI document describes it."""

    type: str
    title: str
    status: int
    detail: str
    #: what failed validation, one entry per parameter or body field (400)
    errors: list[dict[str, Any]] | None = None
    #: the flow's diagnostics (422 on a save)
    diagnostics: list[dict[str, Any]] | None = None
    #: each dependency and what it answered (503 from /readyz)
    checks: dict[str, str] | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI ``responses`` for the problem statuses an operation can answer (400 and 401 always)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails, media_type=MEDIA_TYPE, description=TITLES[status], generate_examples=False
        )
        for status in sorted({400, 401, *statuses})
    }


class Problem(HTTPException):
    """An error with a status, a detail for people and optional extra members."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail=detail, status_code=status, headers=headers)
        self.members = extra


def domain_status(exc: BaseException) -> int | None:
    """The status :data:`DOMAIN_STATUSES` gives ``exc``'s class (or its nearest listed base), else None."""
    for cls in type(exc).__mro__:
        status = DOMAIN_STATUSES.get(cls)
        if status is not None:
            return status
    return None


def domain_problem(exc: FlowdeskError) -> Problem | None:
    """``exc`` as the :class:`Problem` the client gets, or None when it is not the request's fault.

    The detail is the error's own message; a :class:`FlowError` also carries its diagnostics.
    """
    status = domain_status(exc)
    if status is None:
        return None
    if isinstance(exc, FlowError):
        return Problem(status, str(exc), diagnostics=[d.to_dict() for d in exc.diagnostics])
    return Problem(status, str(exc))


def problem_response(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Response[Any]:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, Problem):
        return problem_response(exc.status_code, exc.detail, headers=exc.headers, **exc.members)
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        where = "; ".join(
            f"{e.get('key') or e.get('source') or 'body'}: {e.get('message')}" for e in errors if isinstance(e, dict)
        )
        return problem_response(400, f"invalid request: {where or exc.detail}", errors=errors)
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every exception that is not an HTTP one: a domain error with a status, else a logged 500."""
    problem = domain_problem(exc) if isinstance(exc, FlowdeskError) else None
    if problem is not None:
        return handle_http_exception(request, problem)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "the server failed to handle this request; the error is in its log")
