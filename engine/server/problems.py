"""RFC 9457 problem details for every error the server returns.

Handlers raise :class:`Problem` (or Litestar's HTTP exceptions, or fail in
validation); the client always gets ``application/problem+json`` with a
``detail`` that says what was wrong and, where it helps, how to fix it. An
unexpected exception is logged with its traceback and answered with a 500 that
names no internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

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
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "the server failed to handle this request; the error is in its log")
