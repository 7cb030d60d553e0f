"""Every route of the app against every role, signed in by session and by token: 403 exactly where the route says.

The routes come from the app's own route table, so a route anyone adds later is in
this test without touching it. Each is called with a minimal body (``{}``); the test
only checks the guard's decision: 403 when the principal's role is not among the
route's declared roles (none declared: admins only), anything else otherwise, never
401 for a valid principal and never 500. Unsafe methods signed in by cookie carry the
session's CSRF token, so a 403 here is the role's, not the CSRF check's.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from litestar.routes import HTTPRoute
from temporalio.testing import WorkflowEnvironment

from engine.people.roles import ROLES, Role
from engine.server.auth import CSRF_HEADER, SESSION_COOKIE, is_public, roles_of
from tests.integration.server_support import RunningNode, running_node

PASSWORD = "a long enough password"


def _routes(node: RunningNode) -> list[tuple[str, str, bool, frozenset[Role]]]:
    """(method, path, public, roles) of every HTTP route the app has."""
    assert node.node.app is not None
    found: list[tuple[str, str, bool, frozenset[Role]]] = []
    for route in node.node.app.routes:
        if not isinstance(route, HTTPRoute):
            continue  # sockets authenticate themselves (/ws/agent with engine.server.auth.authenticate)
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append((str(method), route.path, is_public(handler, route.path), roles_of(handler)))
    return found


def _concrete(path: str) -> str:
    """A path with its parameters filled in: ``1`` for numbers, ``x`` for the rest."""
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: "1" if m.group(2) == "int" else "x", path)


class Caller:
    """A session or a token of one role; a session is made afresh for each request (sign-out ends one)."""

    def __init__(self, node: RunningNode, role: Role, *, session: bool) -> None:
        self.role = role
        self.what = f"a {role} {'session' if session else 'token'}"
        self.node = node
        store = node.services.store
        suffix = uuid.uuid4().hex[:6]
        self.user_id: int | None = None
        self.token = ""
        if session:
            self.user_id = store.create_user(f"{role}-{suffix}@example.com", PASSWORD, role=str(role)).id
        else:
            self.token = store.create_token(f"{role}-{suffix}", role=str(role))

    def headers(self, method: str) -> dict[str, str]:
        if self.user_id is None:
            return {"Authorization": f"Bearer {self.token}"}
        cookie, row = self.node.services.store.create_session(self.user_id, max_s=3600)
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            headers[CSRF_HEADER] = row.csrf_token
        return headers


async def test_every_route_admits_exactly_its_roles(fx_dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_node(fx_dev_env, tmp_path) as node:
        routes = _routes(node)
        guarded = [(m, p, roles) for m, p, public, roles in routes if not public]
        assert len(guarded) >= 12, routes
        assert any(Role.EDITOR in roles for _m, _p, roles in guarded)  # the flows API: roles are declared at all
        callers = [Caller(node, role, session=session) for role in ROLES for session in (True, False)]
        wrong: list[str] = []
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
            for method, path, roles in guarded:
                for caller in callers:
                    response = await client.request(method, _concrete(path), json={}, headers=caller.headers(method))
                    client.cookies.clear()  # a sign-in or sign-out answer sets one: each call says who it is
                    status = response.status_code
                    if status >= 500 or status == 401:
                        wrong.append(f"{method} {path} as {caller.what}: {status} {response.text[:200]}")
                    elif (status == 403 and _refused_for_role(response)) != (caller.role not in roles):
                        wrong.append(f"{method} {path} as {caller.what}: {status}, roles {sorted(roles)}")
            for method, path, public, _roles in routes:
                if public and not path.startswith(("/ui", "/schema", "/webhooks")):
                    response = await client.request(method, _concrete(path), json={})
                    assert response.status_code not in (401, 403, 500), f"{method} {path} is public: {response.text}"
        assert not wrong, "\n".join(wrong)


def _refused_for_role(response: httpx.Response) -> bool:
    """A 403 of the guard's role check (a handler may answer 403 for its own reasons, e.g. a wrong password)."""
    body: Any = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    return "needs the role" in str(body.get("detail", ""))
