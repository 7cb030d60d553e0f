"""Bearer API tokens: every route needs one unless its handler is marked public.

A handler opts out with ``opt={"public": True}`` (webhooks, the widget and its
socket, the demo page, health, the OpenAPI description). Everything else is
checked here, so a new route is protected unless someone decides otherwise.
Tokens are made with ``flowdesk token create`` and stored hashed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engine.people.roles import Principal, parse_role
from engine.server.problems import Problem

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="flowdesk"'}


#: Routes Litestar adds itself: the OpenAPI description of the API (no data in it).
PUBLIC_PREFIXES = ("/schema",)


def is_public(handler: BaseRouteHandler, path: str) -> bool:
    """Whether the route at ``path`` (its full path, as the app mounts it) is open to all."""
    return bool(handler.opt.get("public")) or path.startswith(PUBLIC_PREFIXES)


async def require_token(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: a valid, unrevoked bearer token, or 401."""
    if is_public(handler, connection.scope["path"]):
        return
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "this endpoint needs an API token: send `Authorization: Bearer <token>` "
            "(create one with `flowdesk token create NAME`)",
            headers=CHALLENGE,
        )
    store = connection.app.state.services.store
    row = await asyncio.to_thread(store.verify_token, token.strip())
    if row is None:
        raise Problem(401, "the API token is unknown or revoked", headers=CHALLENGE)
    connection.state.principal = Principal(
        kind="token", agent_id=f"token:{row.name}", role=parse_role(row.role), display_name=row.name
    )


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Who makes this request (set by the guard); 401 on a public route that nobody signed in to."""
    principal = connection.state.get("principal") if hasattr(connection.state, "get") else None
    if not isinstance(principal, Principal):
        raise Problem(401, "sign in or send an API token", headers=CHALLENGE)
    return principal
