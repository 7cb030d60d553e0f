"""``/api/auth``: sign in and out, who am I, socket tickets, and setting up the first admin.

Sign-in answers the same 401 for an unknown address, a wrong password and a disabled
account, and takes as long for each (a dummy argon2 check for nobody), so neither the
answer nor its timing tells which addresses have accounts. Failed sign-ins are limited
per account and per address (:mod:`engine.server.login_limits`: counted in this
node's memory, so a cluster's nodes count separately). Passwords are never logged,
audited or returned; a failure is audited under the e-mail that was tried.

The first admin can be created through ``/api/auth/setup`` only while no user exists
and only by a request from this machine (127.0.0.1 or ::1 as the socket says, never a
forwarded header; a request that came through a proxy, which says so with
``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``, is not from this machine even
when the proxy runs on it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, Response, get, post
from litestar.params import KwargDefinition, RequestBody

from engine.people.passwords import PasswordRefused, dummy_verify
from engine.people.roles import SIGNED_IN, Principal
from engine.server.api_models import ApiModel, described
from engine.server.api_models_people import DisplayName, NewEmail, PasswordToSet
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import (
    TICKET_TTL_S,
    cleared_cookie,
    issue_ticket,
    principal_of,
    session_cookie,
    user_principal,
)
from engine.server.login_limits import LoginLimits, keys_for
from engine.server.problems import Problem, problem_responses
from engine.server.services import ServicesDep
from engine.store.users import UserEmailTaken, UserInvalid

LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
BAD_SIGN_IN = "wrong e-mail address or password"


def limits_of(app: Litestar) -> LoginLimits:
    """The failure counts of this app (one per node), kept in its state."""
    found = app.state.get("login_limits")
    if not isinstance(found, LoginLimits):
        found = app.state["login_limits"] = LoginLimits()
    return found


def address_of(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client is not None else ""


Email = Annotated[str, KwargDefinition(min_length=3, max_length=320, description="the account's e-mail address")]
Password = Annotated[str, KwargDefinition(min_length=1, max_length=1024)]


@dataclass
class LoginBody:
    """An e-mail address and its password."""

    email: Email
    password: Password


@dataclass
class SetupBody:
    """The first admin: e-mail address, name and password (at least 10 characters)."""

    email: NewEmail
    password: PasswordToSet
    display_name: DisplayName = ""


class Me(ApiModel):
    """Who is signed in: the user (or the API token), their role and language, and the page's CSRF token."""

    kind: Annotated[str, described("`user` (a signed-in person) or `token` (an API token)")]
    id: Annotated[int | None, described("the user's id; null for a token")]
    agent_id: Annotated[str, described("how conversations name them as an agent: the user id, or `token:<name>`")]
    email: str
    display_name: str
    initials: Annotated[str, described("one or two letters for an avatar")]
    role: Annotated[str, described("admin, supervisor, agent or editor")]
    language: Annotated[str, described("the console's language for them (en, zh)")]
    csrf_token: Annotated[
        str | None,
        described(
            "send it as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE signed in by cookie; null for a token"
        ),
    ]


class SignedOut(ApiModel):
    """Signed out: the session cookie is cleared."""

    session_ended: Annotated[bool, described("a session was ended (false for an API token: it has none)")]


class Ticket(ApiModel):
    """A ticket that opens one agent socket (`/ws/agent?ticket=...`) within a minute, once."""

    ticket: str
    expires_in: Annotated[int, described("seconds it stays valid")]


class SetupState(ApiModel):
    """Whether the first admin still has to be created, and whether this request may do it."""

    needed: Annotated[bool, described("no user exists yet")]
    allowed_here: Annotated[bool, described("the request comes from this machine, not through a proxy")]


def initials(name: str) -> str:
    words = [w for w in name.replace("@", " ").replace(".", " ").split() if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def me_of(principal: Principal, csrf_token: str | None) -> Me:
    return Me(
        kind=principal.kind,
        id=principal.user_id,
        agent_id=principal.agent_id,
        email=principal.email,
        display_name=principal.display_name,
        initials=initials(principal.display_name),
        role=str(principal.role),
        language=principal.language,
        csrf_token=csrf_token,
    )


def is_local(request: Request[Any, Any, Any]) -> bool:
    """From this machine by the socket's peer, and not relayed by a proxy (which says so in a header)."""
    return address_of(request) in LOCAL_ADDRESSES and not any(h in request.headers for h in PROXY_HEADERS)


async def _sign_in(request: Request[Any, Any, Any], services: ServicesDep, user: Any) -> Response[Me]:
    people = services.settings_reloader.settings.people
    cookie, row = await services.store.in_write_thread(
        services.store.create_session,
        user.id,
        max_s=people.session_max_s,
        address=address_of(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    principal = user_principal(user)
    request.state.principal = principal
    await audit(request, "auth.login", target=user.email)
    return Response(me_of(principal, row.csrf_token), cookies=[session_cookie(request, cookie, people.session_max_s)])


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest

    @post(
        "/login",
        opt={"public": True},
        summary="Sign in with e-mail and password: sets the session cookie",
        operation_id="login",
        status_code=200,
        responses=problem_responses(413, 415, 429),
    )
    async def login(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[LoginBody]
    ) -> Response[Me]:
        people = services.settings_reloader.settings.people
        limits = limits_of(request.app)
        account, address = keys_for(data.email, address_of(request))
        wait = limits.retry_after((account, address), attempts=people.login_attempts, window_s=people.login_window_s)
        if wait is not None:
            raise Problem(429, f"too many failed sign-ins: try again in {wait} s", headers={"Retry-After": str(wait)})
        store = services.store
        user = await asyncio.to_thread(store.get_user_by_email, data.email)
        if user is None:
            await asyncio.to_thread(dummy_verify, data.password)
            good = False
        else:
            good = await asyncio.to_thread(store.check_password, user, data.password)
        if not good or user is None or user.disabled_at is not None:
            limits.failed((account, address))
            await store.in_write_thread(
                store.audit,
                actor="anonymous",
                actor_role="",
                action="auth.login_failed",
                target=data.email.strip().lower()[:320],
                address=address_of(request),
            )
            raise Problem(401, BAD_SIGN_IN)
        limits.succeeded(account)
        return await _sign_in(request, services, user)

    @post(
        "/logout",
        opt={"roles": SIGNED_IN},
        summary="Sign out: ends this browser's session",
        operation_id="logout",
        status_code=200,
        responses=problem_responses(403),
    )
    async def logout(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[SignedOut]:
        cookie = request.state.get("session_cookie")
        await audit(request, "auth.logout")
        if cookie:
            await services.store.in_write_thread(services.store.delete_session, cookie)
        return Response(SignedOut(session_ended=bool(cookie)), cookies=[cleared_cookie(request)])

    @get(
        "/me",
        opt={"roles": SIGNED_IN},
        summary="Who is signed in, their role and language, and the CSRF token for the page",
        operation_id="getMe",
        responses=problem_responses(403),
    )
    async def me(self, request: Request[Any, Any, Any]) -> Me:
        session = request.state.get("session")
        return me_of(principal_of(request), session.csrf_token if session is not None else None)

    @post(
        "/ticket",
        opt={"roles": SIGNED_IN},
        summary="A one-time ticket for the agent socket (for clients that cannot send the cookie on it)",
        operation_id="createSocketTicket",
        status_code=200,
        responses=problem_responses(403),
    )
    async def ticket(self, request: Request[Any, Any, Any], services: ServicesDep) -> Ticket:
        principal = principal_of(request)
        value = await asyncio.to_thread(issue_ticket, services.store, principal)
        return Ticket(ticket=value, expires_in=int(TICKET_TTL_S))

    @get(
        "/setup",
        opt={"public": True},
        summary="Whether the first admin still has to be created, and whether this request may",
        operation_id="getSetup",
        responses=problem_responses(),
    )
    async def setup_state(self, request: Request[Any, Any, Any], services: ServicesDep) -> SetupState:
        count = await asyncio.to_thread(services.store.count_users)
        return SetupState(needed=count == 0, allowed_here=is_local(request))

    @post(
        "/setup",
        opt={"public": True},
        summary="Create the first admin (only while no user exists, only from this machine) and sign in",
        operation_id="setupFirstAdmin",
        status_code=201,
        responses=problem_responses(403, 409, 413, 415, 422),
    )
    async def setup(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[SetupBody]
    ) -> Response[Me]:
        if not is_local(request):
            raise Problem(
                403,
                "the first admin can only be created from the server itself (http://127.0.0.1), not through a "
                "proxy; or run `flowdesk user create EMAIL --role admin --password-stdin`",
            )
        store = services.store
        try:
            user = await asyncio.to_thread(
                store.create_first_admin, data.email, data.password, display_name=data.display_name
            )
        except (PasswordRefused, UserInvalid) as exc:
            raise Problem(422, str(exc)) from None
        except UserEmailTaken:
            user = None
        if user is None:
            raise Problem(409, "Flowdesk has users already: sign in, or ask an admin for an account")
        request.state.principal = user_principal(user)
        await audit(request, "user.create", target=user.email, detail={"role": "admin", "first_admin": True})
        response = await _sign_in(request, services, user)
        response.status_code = 201
        return response
