"""``/ws/agent``: the agents' real-time stream (the console's inbox, transcripts, presence, typing).

Who: the session cookie (from a page of this site: the ``Origin`` must be ours, or any
site could open a socket with the agent's cookie), a short-lived ticket
(``?ticket=``, from ``POST /api/auth/ticket``), or a bearer token header (machines).
``engine.server.auth.authenticate`` decides; this route is marked public so that the
HTTP guard does not demand a header before it runs. Editors are refused (close code
4403); a missing or bad credential closes with 4401.

Frames from the server are JSON ``{"seq": int, "kind": str, "data": {...}}`` (kinds in
``engine.server.agent_events``), in this order on every connection:

1. ``hello``: ``data`` = who (``agent_id``, ``role``, ``display_name``), ``queues`` they
   see (None: every queue), ``since`` as understood, and ``seq`` = the cursor now.
2. ``snapshot``: ``data.presence`` = the presence of the people the viewer may see.
3. With ``?since=N``: every ``message`` with seq > N of conversations the viewer sees
   now, in order, each conversation's ``conversation`` row after its last message; or,
   when more than :data:`REPLAY_MAX` were missed, one ``reset`` frame (reload the inbox
   through the API, then carry on from its ``seq``).
4. Live events, then ``heartbeat`` frames when nothing happened for
   :data:`HEARTBEAT_S` seconds.

The client may send ``{"type": "ping"}`` (answered with ``pong``). A consumer too slow
to take its frames (:data:`~engine.server.agent_hub.QUEUE_SIZE` waiting) is closed
with 4429 rather than buffered without bound; it reconnects with its last seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import HTTPException, WebSocketDisconnect

from engine.metrics import AGENT_EVENTS, AGENT_SOCKETS, AGENT_SOCKETS_DROPPED
from engine.people.roles import Principal, parse_role
from engine.server import auth
from engine.server.agent_events import CONVERSATION, MESSAGE, Viewer, conversation_data, may_connect, message_data
from engine.server.agent_hub import AgentConnection, AgentHub
from engine.server.services import Services

log = logging.getLogger("flowdesk.agent_socket")

PATH = "/ws/agent"
#: Most logged events a reconnect replays; beyond, the console reloads (a ``reset`` frame).
REPLAY_MAX = 2000
#: A frame when nothing else was sent for this long: the console knows the server is there.
HEARTBEAT_S = 25.0
#: A send that takes longer means the client stopped reading: close.
SEND_TIMEOUT_S = 10.0
#: How often what a viewer may see is read again (queue members change; an account is disabled).
REFRESH_S = 30.0
_SEQ_MAX = (1 << 63) - 1

CLOSE_BAD_PARAMETER = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW = 4429


def _encode(frame: dict[str, Any]) -> str:
    return msgspec.json.encode(frame).decode()


def parse_since(value: str | None) -> int | None:
    """The client's cursor; None when it sent none; ValueError for anything that is not a seq."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > _SEQ_MAX:
        raise ValueError(f"`since` must be a seq the server sent, an integer from 0 to {_SEQ_MAX}; got {value[:30]!r}")
    return int(value)


async def _principal(socket: WebSocket[Any, Any, Any]) -> Principal:
    """Who opens the socket (raises the auth module's 401/403 problems)."""
    authenticate = getattr(auth, "authenticate", None)
    if authenticate is not None:
        principal: Principal = await authenticate(socket)
        return principal
    # Before sessions existed: a bearer token header only.
    scheme, _, token = socket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(status_code=401, detail="send `Authorization: Bearer <token>`")
    row = await asyncio.to_thread(socket.app.state.services.store.verify_token, token.strip())
    if row is None:
        raise HTTPException(status_code=401, detail="the API token is unknown or revoked")
    return Principal(kind="token", agent_id=f"token:{row.name}", role=parse_role(row.role), display_name=row.name)


async def _refuse(socket: WebSocket[Any, Any, Any], code: int, message: str) -> None:
    """Accept only to say why not: a browser sees the close code and reason, not an HTTP status."""
    await socket.accept()
    with contextlib.suppress(Exception):
        await socket.send_text(_encode({"seq": 0, "kind": "error", "data": {"code": code, "message": message}}))
        await socket.close(code=code, reason=message[:120])


def _people(services: Services) -> Any:
    reloader = getattr(services, "settings_reloader", None)
    settings = getattr(reloader, "settings", None) or services.settings
    return settings.people


async def refresh_viewer(viewer: Viewer, services: Services) -> bool:
    """Read again what ``viewer`` may see; False if their account is gone or disabled."""
    principal = viewer.principal
    if viewer.sees_all and principal.user_id is None:
        return True
    queues = _people(services).queues.values()
    scope = await asyncio.to_thread(services.store.agent_scope, principal.user_id, principal.email, queues)
    viewer.queues, viewer.teammates = scope.queues, scope.teammates
    directory = getattr(services, "queues", None)
    if directory is not None:
        # What the REST API lets them see: their queues (settings winning over an admin queue of
        # the same name), and queues nobody described, which are everyone's.
        visibility = await directory.visibility(principal)
        viewer.queues = visibility.queues if visibility.queues is not None else scope.queues
        viewer.described = visibility.described
    return scope.active


class AgentSession:
    """One open socket: the frames it is sent, serialised (the sender and the pong share it)."""

    def __init__(self, socket: WebSocket[Any, Any, Any], services: Services, viewer: Viewer) -> None:
        self.socket = socket
        self.services = services
        self.viewer = viewer
        self.hub: AgentHub = services.agent_hub
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._lock:
            await asyncio.wait_for(self.socket.send_text(_encode(frame)), SEND_TIMEOUT_S)
        AGENT_EVENTS.labels(frame["kind"]).inc()

    async def run(self, since: int | None) -> None:
        connection, cursor = await self.hub.attach(self.viewer, since)
        AGENT_SOCKETS.inc()
        presence = getattr(self.services, "presence", None)
        user_id = self.viewer.principal.user_id
        try:
            if presence is not None and user_id is not None:
                await _maybe_await(presence.connected(user_id))
            await self._greet(since, cursor)
            if since is not None and since < cursor:
                await self._replay(connection, since, cursor)
            await self._pump(connection)
        except (WebSocketDisconnect, asyncio.CancelledError):
            pass
        except TimeoutError:
            AGENT_SOCKETS_DROPPED.labels("stalled").inc()
            await self._close(CLOSE_SLOW, "the client stopped reading")
        finally:
            self.hub.detach(connection)
            AGENT_SOCKETS.dec()
            if presence is not None and user_id is not None:
                try:
                    await _maybe_await(presence.disconnected(user_id))
                except Exception:
                    log.exception("presence could not be told that user %s disconnected", user_id)

    async def _greet(self, since: int | None, cursor: int) -> None:
        principal, viewer = self.viewer.principal, self.viewer
        await self.send(
            {
                "seq": cursor,
                "kind": "hello",
                "data": {
                    "agent_id": principal.agent_id,
                    "user_id": principal.user_id,
                    "role": str(principal.role),
                    "display_name": principal.display_name,
                    "queues": None if viewer.sees_all else sorted(viewer.queues),
                    "since": since,
                },
            }
        )
        who = None if viewer.sees_all else viewer.teammates
        presence = await asyncio.to_thread(self.services.store.presence_snapshot, who)
        await self.send({"seq": cursor, "kind": "snapshot", "data": {"presence": presence}})

    async def _replay(self, connection: AgentConnection, since: int, cursor: int) -> None:
        """What the client missed: logged events in (since, cursor] it may see, in order, once.

        The row at ``since`` itself is read too: the client may have got its ``message``
        frame and not the ``conversation`` frame after it (a conversation row is state:
        sending it again is harmless).
        """
        store, viewer = self.services.store, self.viewer
        queues = None if viewer.sees_all else viewer.queues
        agent = viewer.principal.agent_id
        rows = await asyncio.to_thread(
            store.feed_between,
            max(since - 1, 0),
            cursor,
            queues=queues,
            agent=agent,
            described=viewer.described,
            limit=REPLAY_MAX + 1,
        )
        if len(rows) > REPLAY_MAX:
            reason = f"more than {REPLAY_MAX} events were missed: reload the conversations, then carry on from seq"
            await self.send({"seq": cursor, "kind": "reset", "data": {"reason": reason}})
            return
        inbox = await asyncio.to_thread(store.inbox_rows, {row["conversation_id"] for row in rows})
        last = {row["conversation_id"]: row["seq"] for row in rows}
        for row in rows:
            conversation_id = row["conversation_id"]
            if row["seq"] > since:
                await self.send({"seq": row["seq"], "kind": MESSAGE, "data": message_data(row)})
            conversation = inbox.get(conversation_id)
            if conversation is not None and last[conversation_id] == row["seq"]:
                connection.shown(conversation_id)
                await self.send({"seq": row["seq"], "kind": CONVERSATION, "data": conversation_data(conversation)})

    async def _pump(self, connection: AgentConnection) -> None:
        """Live frames out, the client's frames in, the viewer refreshed: until one of them ends."""
        tasks = [
            asyncio.create_task(self._sender(connection)),
            asyncio.create_task(self._receiver()),
            asyncio.create_task(self._refresher()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a sender's timeout surfaces here
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                    await task

    async def _sender(self, connection: AgentConnection) -> None:
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):  # not wait_for: see Dispatcher._run
                    frame = await connection.queue.get()
            except TimeoutError:
                await self.send({"seq": self.hub.cursor, "kind": "heartbeat", "data": {}})
                continue
            if connection.overflowed:
                AGENT_SOCKETS_DROPPED.labels("slow").inc()
                await self._close(CLOSE_SLOW, "too many events waiting: reconnect with your last seq")
                return
            await self.send(frame)

    async def _receiver(self) -> None:
        while True:
            raw = await self.socket.receive_text()
            try:
                frame = msgspec.json.decode(raw)
            except (msgspec.DecodeError, RecursionError):
                frame = None
            if isinstance(frame, dict) and frame.get("type") == "ping":
                await self.send({"seq": self.hub.cursor, "kind": "pong", "data": {}})
            else:
                message = 'the server reads only {"type": "ping"} on this socket'
                await self.send({"seq": self.hub.cursor, "kind": "error", "data": {"code": 400, "message": message}})

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                active = await refresh_viewer(self.viewer, self.services)
            except Exception:
                log.warning("could not read again what %s may see; kept as it was", self.viewer.principal.actor)
                continue
            if not active:
                AGENT_SOCKETS_DROPPED.labels("disabled").inc()
                await self._close(CLOSE_UNAUTHENTICATED, "the account was disabled")
                return

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.socket.close(code=code, reason=reason)


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


async def serve_agent_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """Authenticate, check the role and the cursor, then stream (see the module docstring)."""
    services: Services = socket.app.state.services
    try:
        principal = await _principal(socket)
    except HTTPException as exc:
        code = CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_UNAUTHENTICATED
        await _refuse(socket, code, str(exc.detail))
        return
    if not may_connect(principal.role):
        await _refuse(
            socket,
            CLOSE_FORBIDDEN,
            f"the agents' stream is for agents, supervisors and admins; you are {principal.role}",
        )
        return
    try:
        since = parse_since(socket.query_params.get("since"))
    except ValueError as exc:
        await _refuse(socket, CLOSE_BAD_PARAMETER, str(exc))
        return
    viewer = Viewer(principal)
    if not await refresh_viewer(viewer, services):
        await _refuse(socket, CLOSE_UNAUTHENTICATED, "the account is disabled")
        return
    await socket.accept()
    await AgentSession(socket, services, viewer).run(since)


@websocket(PATH, opt={"public": True, "authenticates_itself": True}, name="agent-socket")
async def agent_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await serve_agent_socket(socket)


#: What the app registers.
ROUTES = [agent_socket]
