"""Who makes a request, and whether their role may reach the route: one guard for every route.

A request is made by an API token (``Authorization: Bearer``; the token's role), by a
signed-in browser (the ``flowdesk_session`` cookie: a server-side session of a user,
the user's role), or, on a socket, by a short-lived ticket (``?ticket=``). A handler
opts out with ``opt={"public": True}`` (webhooks, the widget and its socket, the demo
page, health, sign-in, the OpenAPI description). Everything else needs a principal,
and a principal whose role is in the route's ``opt["roles"]``; a route that does not
say is for admins only, so a new route is closed until someone opens it.

CSRF: a browser sends the cookie with any request to us, whoever's page made it, so an
unsafe request (POST, PUT, PATCH, DELETE) authenticated by the cookie must also carry
``X-CSRF-Token`` equal to its session's token, which only our pages can read (from
``GET /api/auth/me``). Bearer requests need none: no browser adds that header by
itself. A socket authenticated by the cookie must come from a page of our own origin
(its ``Origin`` header), for the same reason.

Socket tickets (``issue_ticket`` / ``redeem_ticket``) are for clients that cannot send
the cookie or a header on a socket: ``<kind>.<id>.<expiry>.<nonce>.<hmac>``, valid
60 seconds, once. The HMAC key is derived from what the database keeps about the
principal (the user's password hash, the token's hash), so any node of a cluster
checks a ticket another node issued without a shared key file, and a password change
or a revoked token voids its tickets at once. "Once" is per node (an in-memory set
of used nonces); across nodes a ticket could be replayed within its minute, by
whoever already holds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler

from engine.people.roles import ADMIN_ONLY, ROLES, Principal, Role, parse_role
from engine.server.problems import Problem

if TYPE_CHECKING:
    from engine.store import Store
    from engine.store.tables import UserAccount
    from engine.store.users import SignedIn

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="flowdesk"'}
SESSION_COOKIE = "flowdesk_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TICKET_TTL_S = 60.0

#: Routes Litestar adds itself: the OpenAPI description of the API (no data in it).
PUBLIC_PREFIXES = ("/schema",)


def is_public(handler: BaseRouteHandler, path: str) -> bool:
    """Whether the route at ``path`` (its full path, as the app mounts it) is open to all."""
    return bool(handler.opt.get("public")) or path.startswith(PUBLIC_PREFIXES)


def roles_of(handler: BaseRouteHandler) -> frozenset[Role]:
    """The roles a route admits: its ``opt["roles"]``, admins only when it says nothing."""
    roles = handler.opt.get("roles")
    return frozenset(roles) if roles is not None else ADMIN_ONLY


def user_principal(user: UserAccount) -> Principal:
    return Principal(
        kind="user",
        agent_id=str(user.id),
        role=parse_role(user.role),
        display_name=user.display_name,
        user_id=user.id,
        email=user.email,
        language=user.language,
    )


def token_principal(name: str, role: str) -> Principal:
    return Principal(kind="token", agent_id=f"token:{name}", role=parse_role(role), display_name=name)


def is_https(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """The browser talks https to us: directly, or to a proxy that says so (``X-Forwarded-Proto``)."""
    forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return connection.scope.get("scheme") in ("https", "wss") or forwarded == "https"


def session_cookie(connection: ASGIConnection[Any, Any, Any, Any], value: str, max_age: float) -> Cookie:
    """The session cookie: HttpOnly (no script reads it), SameSite=Lax, Secure over https, the whole site."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=max(int(max_age), 1),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(connection),
    )


def cleared_cookie(connection: ASGIConnection[Any, Any, Any, Any]) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="lax", secure=is_https(connection)
    )


def _live_people(connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    services = connection.app.state.services
    return services.settings_reloader.settings.people


async def _by_token(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> Principal:
    store = connection.app.state.services.store
    row = await asyncio.to_thread(store.verify_token, token.strip())
    if row is None:
        raise Problem(401, "the API token is unknown or revoked", headers=CHALLENGE)
    return token_principal(row.name, row.role)


async def _by_cookie(connection: ASGIConnection[Any, Any, Any, Any], cookie: str) -> SignedIn:
    store = connection.app.state.services.store
    idle_s = _live_people(connection).session_idle_s
    signed_in: SignedIn | None = await asyncio.to_thread(store.lookup_session, cookie, idle_s=idle_s)
    if signed_in is None:
        raise Problem(
            401,
            "your session has ended (signed out, expired, or the account was disabled): sign in again, "
            "or send an API token",
            headers=CHALLENGE,
        )
    return signed_in


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    origin = connection.headers.get("origin")
    if not origin:
        return True  # not a browser page: browsers always send Origin on a socket
    host = connection.headers.get("x-forwarded-host") or connection.headers.get("host") or ""
    return urlsplit(origin).netloc.lower() == host.split(",")[0].strip().lower()


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The request's principal (also put on ``connection.state``); 401/403 saying what is missing."""
    header = connection.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "send the API token as `Authorization: Bearer <token>`", headers=CHALLENGE)
        principal = await _by_token(connection, token)
    elif connection.scope["type"] == ScopeType.WEBSOCKET and connection.query_params.get("ticket"):
        store = connection.app.state.services.store
        found = await asyncio.to_thread(redeem_ticket, store, connection.query_params["ticket"])
        if found is None:
            raise Problem(401, "the socket ticket is unknown, used or expired: ask POST /api/auth/ticket for another")
        principal = found
    elif cookie := connection.cookies.get(SESSION_COOKIE):
        signed_in = await _by_cookie(connection, cookie)
        if connection.scope["type"] == ScopeType.WEBSOCKET:
            if not _same_origin(connection):
                raise Problem(403, "a socket signed in by cookie must be opened by a page of this site")
        elif str(connection.scope.get("method", "GET")).upper() in UNSAFE_METHODS:
            sent = connection.headers.get(CSRF_HEADER.lower(), "")
            if not sent or not hmac.compare_digest(sent, signed_in.session.csrf_token):
                raise Problem(
                    403,
                    f"this request is signed in by cookie, so it needs the `{CSRF_HEADER}` header with the "
                    "session's CSRF token (GET /api/auth/me gives it)",
                )
        connection.state.session = signed_in.session
        connection.state.session_cookie = cookie
        principal = user_principal(signed_in.user)
    else:
        raise Problem(
            401,
            "sign in, or send an API token: `Authorization: Bearer <token>` "
            "(create one with `flowdesk token create NAME`)",
            headers=CHALLENGE,
        )
    connection.state.principal = principal
    return principal


async def require_principal(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: a principal whose role the route admits (public routes: nobody needed)."""
    if is_public(handler, connection.scope["path"]):
        return
    principal = await authenticate(connection)
    allowed = roles_of(handler)
    if principal.role not in allowed:
        names = ", ".join(str(role) for role in ROLES if role in allowed)
        raise Problem(403, f"this needs the role {names}; you are signed in as {principal.role}")


#: The name app.py and older code know the guard by.
require_token = require_principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Who makes this request (set by the guard); 401 on a public route that nobody signed in to."""
    principal = connection.state.get("principal") if hasattr(connection.state, "get") else None
    if not isinstance(principal, Principal):
        raise Problem(401, "sign in or send an API token", headers=CHALLENGE)
    return principal


# ---- socket tickets -------------------------------------------------------------------------------

_used: dict[str, float] = {}
_used_lock = threading.Lock()


def _ticket_key(secret: str) -> bytes:
    return hashlib.sha256(b"flowdesk-socket-ticket\0" + secret.encode("utf-8")).digest()


def _sign(secret: str, payload: str) -> str:
    return hmac.new(_ticket_key(secret), payload.encode("ascii"), hashlib.sha256).hexdigest()


def issue_ticket(store: Store, principal: Principal, *, now: float | None = None) -> str:
    """A ticket that opens one socket as ``principal`` within :data:`TICKET_TTL_S` seconds (blocking: a DB read)."""
    expiry = int((now if now is not None else time.time()) + TICKET_TTL_S)
    nonce = secrets.token_urlsafe(16)
    if principal.user_id is not None:
        user = store.get_user(principal.user_id)
        if user is None:
            raise Problem(401, "this account no longer exists")
        kind, ident, secret = "u", principal.user_id, user.password_hash
    else:
        name = principal.agent_id.removeprefix("token:")
        row = next((t for t in store.list_tokens() if t.name == name and t.revoked_at is None), None)
        if row is None or row.id is None:
            raise Problem(401, "the API token is unknown or revoked", headers=CHALLENGE)
        kind, ident, secret = "t", row.id, row.token_hash
    payload = f"{kind}.{ident}.{expiry}.{nonce}"
    return f"{payload}.{_sign(secret, payload)}"


def redeem_ticket(store: Store, ticket: str, *, now: float | None = None) -> Principal | None:
    """The principal a ticket was issued to, once; None if it is malformed, forged, expired or used (blocking)."""
    parts = ticket.split(".")
    if len(parts) != 5 or len(ticket) > 300 or parts[0] not in ("u", "t") or not parts[1].isdigit():
        return None
    kind, ident, expiry_text, nonce, signature = parts
    moment = now if now is not None else time.time()
    if not expiry_text.isdigit() or int(expiry_text) < moment:
        return None
    principal: Principal
    if kind == "u":
        user = store.get_user(int(ident))
        if user is None or user.disabled_at is not None:
            return None
        secret, principal = user.password_hash, user_principal(user)
    else:
        token = store.get_token_row(int(ident))
        if token is None or token.revoked_at is not None:
            return None
        secret, principal = token.token_hash, token_principal(token.name, token.role)
    if not hmac.compare_digest(signature, _sign(secret, ".".join(parts[:4]))):
        return None
    with _used_lock:
        for old, until in list(_used.items()):
            if until < moment:
                del _used[old]
        if nonce in _used:
            return None
        _used[nonce] = float(expiry_text)
    return principal
