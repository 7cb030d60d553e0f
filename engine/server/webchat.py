"""The web-chat channel: ``/ws/chat`` sockets of this node and their frames.

Frames are JSON text (``../shared/CHANNELS.md``, web chat; the widget in
``ui/widget`` speaks them). The visitor's message is sent to its conversation's
workflow first — once the update returns it is durably queued — then stored for
the transcript (the workflow stores it too; the write is idempotent), then
acknowledged with its ``seq``. Replies come back through
:mod:`engine.server.delivery`, which runs on this node's own task queue because
only this node holds the socket.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from engine.message_log import RecordInput
from engine.metrics import MESSAGES_IN, REJECTED_FRAMES, UPDATE_LATENCY
from engine.runtime.client import ConversationEnded, NoFlowError
from engine.runtime.types import IN_TASK_META, InboundMessage
from engine.server.hub import Connection
from engine.server.services import Services
from engine.server.visitors import identity_matches
from engine.store import Contact, Message
from engine.store.conversations import HANDOFF

log = logging.getLogger(__name__)

CHANNEL = "webchat"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A ``since`` cursor is a stored ``seq``: a non-negative 64-bit integer (the database's limit).
_SEQ_MAX = (1 << 63) - 1
#: Close code for a connection whose query parameters are wrong (4000-4999: the application's own).
CLOSE_BAD_PARAMETER = 4400


class BadParameter(ValueError):
    """A query parameter of ``/ws/chat`` the server cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """The contact behind a socket, as small as possible: it lives as long as an idle socket."""

    id: str
    name: str | None
    locale: str | None
    tags: tuple[str, ...]
    #: (channel, external id) of a visitor who has not written yet: no contact exists for
    #: them, and ``id`` is a placeholder, until their first message creates it
    pending: tuple[str, str] | None = None

    @classmethod
    def of(cls, contact: Contact) -> Visitor:
        return cls(contact.id, contact.name, contact.locale, tuple(contact.tags or ()))

    def view(self) -> dict[str, Any]:
        """What the flow sees as ``contact``."""
        return {"id": self.id, "name": self.name, "locale": self.locale, "tags": list(self.tags)}


def message_frame(row: Message) -> dict[str, Any]:
    """A stored message as the widget sees it."""
    return {
        "type": "message",
        "seq": row.seq,
        "id": row.message_id,
        "direction": row.direction,
        "sender": row.sender,
        "text": row.text,
        "choices": list(row.choices or []),
        "at": row.at,
    }


def _error(code: str, message: str, client_id: str | None = None) -> dict[str, Any]:
    REJECTED_FRAMES.labels(code).inc()
    frame = {"type": "error", "code": code, "message": message}
    if client_id:
        frame["id"] = client_id
    return frame


@websocket("/ws/chat", opt={"public": True})
async def chat_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """A visitor's chat connection: welcome, history, then messages both ways."""
    services: Services = socket.app.state.services
    await socket.accept()
    try:
        since = _since(socket.query_params.get("since"))
    except BadParameter as exc:
        await socket.send_json(_error("bad_parameter", str(exc)))
        await socket.close(code=CLOSE_BAD_PARAMETER, reason="bad parameter: since")
        return
    contact, token = await _visitor(socket, services)
    connection = Connection(socket, contact.id)
    services.hub.add(connection)
    try:
        await connection.send({"type": "welcome", "visitor": token})
        await _send_history(connection, services, since)
        session = ChatSession(services, connection, contact)
        while True:
            raw = await socket.receive_text()
            await session.handle(raw)
    except WebSocketDisconnect:
        pass
    finally:
        services.hub.remove(connection)


async def _visitor(socket: WebSocket[Any, Any, Any], services: Services) -> tuple[Visitor, str]:
    """The contact behind this connection, and the token the widget should keep."""
    params = socket.query_params
    visitor = services.visitor_tokens.verify(params.get("visitor"))
    if visitor is None:
        visitor, token = services.visitor_tokens.issue()
    else:
        token = services.visitor_tokens.token(visitor)
    name = (params.get("name") or "")[:100] or None
    locale = _locale(socket.headers.get("accept-language", ""))
    user, claimed = params.get("user"), params.get("hash")
    secret = services.webchat.identity_secret
    if user and claimed and secret and len(user) <= 200 and identity_matches(secret, user, claimed):
        # A logged-in user of the host site: the same contact on every device.
        key = ("webchat-user", user)
    else:
        key = (CHANNEL, visitor)
    # Connecting writes nothing: a socket opened and never used must not leave rows behind.
    contact = await asyncio.to_thread(services.store.find_contact, *key)
    if contact is None:
        return Visitor(f"pending:{key[0]}:{key[1]}", name, locale, (), pending=key), token
    return Visitor.of(contact), token


def _locale(header: str) -> str | None:
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    return first[:20] or None


def _since(value: str | None) -> int:
    """The history cursor; a clear error for anything that is not a stored ``seq``."""
    if not value:
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > _SEQ_MAX:
        raise BadParameter(f"`since` must be a message seq, an integer from 0 to {_SEQ_MAX}; got {value[:30]!r}")
    return int(value)


async def _send_history(connection: Connection, services: Services, since: int) -> None:
    conversation = await asyncio.to_thread(services.store.latest_conversation, connection.contact_id)
    rows: list[Message] = []
    if conversation is not None:
        rows = await asyncio.to_thread(services.store.transcript, conversation.id, after_seq=since)
    messages = [message_frame(r) for r in rows if r.direction in ("in", "out")]
    for frame in messages:
        del frame["type"]
    await connection.send({"type": "history", "messages": messages})


class ChatSession:
    """Frames of one connection; the conversation id is remembered between messages."""

    __slots__ = ("connection", "contact", "conversation_id", "services")

    def __init__(self, services: Services, connection: Connection, contact: Visitor) -> None:
        self.services = services
        self.connection = connection
        self.contact = contact
        self.conversation_id: str | None = None

    async def handle(self, raw: str) -> None:
        try:
            frame = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nesting too deep to decode
            await self.connection.send(_error("bad_frame", "frames are JSON objects with a `type`"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            await self._message(frame)
        elif kind in ("typing", "read"):
            return  # accepted; agents' view of typing and read receipts is not built yet
        else:
            await self.connection.send(_error("bad_frame", "unknown frame type; send `message`, `typing` or `read`"))

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("id"), frame.get("text")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            await self.connection.send(_error("bad_frame", "a message needs an `id` of 1-64 letters, digits, - or _"))
            return
        if not isinstance(text, str) or not text.strip():
            await self.connection.send(_error("bad_frame", "a message needs a non-empty `text`", client_id))
            return
        limit = self.services.webchat.max_chars
        if len(text) > limit:
            await self.connection.send(
                _error("too_large", f"messages are limited to {limit} characters; this one has {len(text)}", client_id)
            )
            return
        if not self.services.hub.allow(self.contact.id):
            await self.connection.send(
                _error("rate_limited", "you are sending messages too fast; wait a moment and try again", client_id)
            )
            return
        try:
            if self.contact.pending is not None:
                await self._create_contact()
            row = await self._deliver_inbound(client_id, text)
        except NoFlowError:
            await self.connection.send(_error("unavailable", "no chat flow is live right now", client_id))
            return
        except Exception:
            log.exception("web-chat message %s could not be queued", client_id)
            await self.connection.send(
                _error("unavailable", "the message could not be sent; retry in a moment", client_id)
            )
            return
        await self.connection.send({"type": "ack", "id": client_id, "seq": row.seq})
        await self.services.hub.push(self.contact.id, message_frame(row), skip=self.connection)

    async def _create_contact(self) -> None:
        """The visitor's first message: their contact and identity are stored now."""
        pending = self.contact
        assert pending.pending is not None
        store = self.services.store
        contact = await asyncio.to_thread(
            store.resolve_contact, *pending.pending, name=pending.name, locale=pending.locale
        )
        self.contact = Visitor.of(contact)
        # Every tab of this visitor on this node now receives the contact's replies.
        self.services.hub.rekey(pending.id, contact.id)

    async def _deliver_inbound(self, client_id: str, text: str) -> Message:
        """Log the message, then queue it in its conversation (a new one if the last has ended).

        Logged first, so the transcript has it before any reply to it (and the
        workflow does not log it again); a failed hand-over marks the row failed, and
        the widget's retry of the same message sets it right.
        """
        store = self.services.store
        # Scoped to the visitor: another visitor's ids can never collide with these.
        message_id = f"{self.contact.id}:{client_id}"
        now = datetime.now(UTC).isoformat()
        conversation_id = await self._conversation()
        entry = RecordInput(conversation_id, "in", text, CHANNEL, message_id, now, status="received")
        row = await store.in_write_thread(store.record_message, entry)
        # Typing means "a reply is being produced": not while the conversation waits in an
        # agent's queue (the agent's own typing comes through the same frame). Before the
        # update: the reply may reach the socket before the update's answer does.
        if not await self._with_agents(conversation_id):
            await self.services.hub.push(self.contact.id, {"type": "typing", "state": True})
        for _ in range(2):
            if row.conversation_id != conversation_id or row.status != "received":
                # Logged in a conversation that has ended since, or failed before: now it is here.
                settled = await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, "received")
                row = settled or row
            message = InboundMessage(
                id=message_id,
                text=text,
                channel=CHANNEL,
                at=now,
                contact=self.contact.view(),
                meta=self._meta(),
            )
            started = time.perf_counter()
            try:
                accepted = await self.services.conversations.send(conversation_id, message)
            except ConversationEnded:
                await asyncio.to_thread(store.end_conversation, conversation_id)
                self.conversation_id = None
                conversation_id = await self._conversation()
                continue
            except Exception as exc:
                detail = f"not handed to the conversation: {type(exc).__name__}"
                await store.in_write_thread(store.settle_inbound, row.seq, conversation_id, "failed", detail)
                raise
            UPDATE_LATENCY.labels(CHANNEL).observe(time.perf_counter() - started)
            # No second read to turn typing off when this message queued the conversation: a
            # hand-off always says something now (the flow's text or messages.handoff), and
            # the widget hides typing when a reply arrives. The read cost ~6 ms of CPU a message.
            if not accepted.duplicate:
                MESSAGES_IN.labels(CHANNEL).inc()
            return row
        raise RuntimeError("the conversation ended twice while a message was sent")

    async def _with_agents(self, conversation_id: str) -> bool:
        """Whether the conversation is handed off (queued for or taken by an agent), per the log."""
        conversation = await asyncio.to_thread(self.services.store.get_conversation, conversation_id)
        return conversation is not None and conversation.status == HANDOFF

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"logged": True}  # this server logged the message: the workflow does not
        if self.services.node_queue:
            meta["reply_queue"] = self.services.node_queue  # a cluster: replies come back to this node
        else:
            meta[IN_TASK_META] = True  # a single node: its conversation worker holds the sockets
        return meta

    async def _conversation(self) -> str:
        if self.conversation_id is None:
            store = self.services.store
            conversation, _created = await asyncio.to_thread(store.open_conversation, self.contact.id, CHANNEL)
            self.conversation_id = conversation.id
        return self.conversation_id
