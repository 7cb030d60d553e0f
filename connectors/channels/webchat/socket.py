"""``/ws/chat``: the visitor's socket and its frames.

Frames are JSON text (``../shared/CHANNELS.md``, web chat; the widget in
``ui/widget`` speaks them). A visitor's message is handed to the server
(:meth:`ChannelHost.accept`: logged, then queued in its conversation's workflow;
once that returns it is durable) and acknowledged with its ``seq``. Replies come
back through :meth:`WebChat.send <connectors.channels.webchat.channel.WebChat.send>`
on the node that holds the socket.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from connectors.channels.webchat.hub import Connection
from connectors.channels.webchat.visitors import identity_matches
from engine.channels.errors import ChannelError, NoFlowLive
from engine.channels.host import Contact, InboundText, LoggedMessage
from engine.metrics import REJECTED_FRAMES

if TYPE_CHECKING:
    from connectors.channels.webchat.channel import WebChat

log = logging.getLogger(__name__)

CHANNEL = "webchat"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A ``since`` cursor is a stored ``seq``: a non-negative 64-bit integer (the database's limit).
_SEQ_MAX = (1 << 63) - 1
#: Close code for a connection whose query parameters are wrong (4000-4999: the application's own).
CLOSE_BAD_PARAMETER = 4400
#: a customer still typing is told to the agents again after this long (their indicator times out)
TYPING_REPEAT_S = 3.0


class BadParameter(ChannelError):
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
        return cls(contact.id, contact.name, contact.locale, contact.tags)

    def contact(self) -> Contact:
        return Contact(self.id, self.name, self.locale, self.tags)


def message_frame(row: LoggedMessage) -> dict[str, Any]:
    """A logged message as the widget sees it."""
    return {
        "type": "message",
        "seq": row.seq,
        "id": row.message_id,
        "direction": row.direction,
        "sender": row.sender,
        "text": row.text,
        "choices": list(row.choices),
        "at": row.at,
    }


def _error(code: str, message: str, client_id: str | None = None) -> dict[str, Any]:
    REJECTED_FRAMES.labels(code).inc()
    frame = {"type": "error", "code": code, "message": message}
    if client_id:
        frame["id"] = client_id
    return frame


async def serve_socket(chat: WebChat, socket: WebSocket[Any, Any, Any]) -> None:
    """A visitor's chat connection: welcome, history, then messages both ways."""
    await socket.accept()
    try:
        since = _since(socket.query_params.get("since"))
    except BadParameter as exc:
        await socket.send_json(_error("bad_parameter", str(exc)))
        await socket.close(code=CLOSE_BAD_PARAMETER, reason="bad parameter: since")
        return
    contact, token = await _visitor(socket, chat)
    connection = Connection(socket, contact.id)
    chat.hub.add(connection)
    try:
        await connection.send({"type": "welcome", "visitor": token})
        await _send_history(connection, chat, since)
        session = ChatSession(chat, connection, contact)
        while True:
            raw = await socket.receive_text()
            await session.handle(raw)
    except WebSocketDisconnect:
        pass
    finally:
        chat.hub.remove(connection)


async def _visitor(socket: WebSocket[Any, Any, Any], chat: WebChat) -> tuple[Visitor, str]:
    """The contact behind this connection, and the token the widget should keep."""
    params = socket.query_params
    visitor = chat.tokens.verify(params.get("visitor"))
    if visitor is None:
        visitor, token = chat.tokens.issue()
    else:
        token = chat.tokens.token(visitor)
    name = (params.get("name") or "")[:100] or None
    locale = _locale(socket.headers.get("accept-language", ""))
    user, claimed = params.get("user"), params.get("hash")
    secret = chat.options.identity_secret
    if user and claimed and secret and len(user) <= 200 and identity_matches(secret, user, claimed):
        # A logged-in user of the host site: the same contact on every device.
        key = ("webchat-user", user)
    else:
        key = (CHANNEL, visitor)
    # Connecting writes nothing: a socket opened and never used must not leave rows behind.
    contact = await chat.host.find_contact(*key)
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


async def _send_history(connection: Connection, chat: WebChat, since: int) -> None:
    rows = await chat.host.history(connection.contact_id, after_seq=since)
    messages = [message_frame(r) for r in rows]
    for frame in messages:
        del frame["type"]
    await connection.send({"type": "history", "messages": messages})


class ChatSession:
    """Frames of one connection; the conversation id is remembered between messages."""

    __slots__ = ("chat", "connection", "contact", "conversation_id", "typing_state", "typing_told")

    def __init__(self, chat: WebChat, connection: Connection, contact: Visitor) -> None:
        self.chat = chat
        self.connection = connection
        self.contact = contact
        self.conversation_id: str | None = None
        #: the customer's typing state as the agents were last told, and when (monotonic seconds)
        self.typing_state = False
        self.typing_told = 0.0

    async def handle(self, raw: str) -> None:
        try:
            frame = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nesting too deep to decode
            await self.connection.send(_error("bad_frame", "frames are JSON objects with a `type`"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            await self._message(frame)
        elif kind == "typing":
            self._typing(frame.get("state"))
        elif kind == "read":
            return  # accepted; agents' view of read receipts is not built yet
        else:
            await self.connection.send(_error("bad_frame", "unknown frame type; send `message`, `typing` or `read`"))

    def _typing(self, state: object) -> None:
        """Tell the agents a customer types: on a change, or again after a while (a widget repeats it)."""
        if self.conversation_id is None or not isinstance(state, bool):
            return  # nobody to tell before the first message; a malformed state says nothing
        now = time.monotonic()
        if state == self.typing_state and now - self.typing_told < TYPING_REPEAT_S:
            return  # a burst of key presses is one event for the agents, not one per key
        self.typing_state, self.typing_told = state, now
        self.chat.host.customer_typing(self.conversation_id, state)

    async def _message(self, frame: dict[str, Any]) -> None:
        client_id, text = frame.get("id"), frame.get("text")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            await self.connection.send(_error("bad_frame", "a message needs an `id` of 1-64 letters, digits, - or _"))
            return
        if not isinstance(text, str) or not text.strip():
            await self.connection.send(_error("bad_frame", "a message needs a non-empty `text`", client_id))
            return
        limit = self.chat.options.message_max_chars
        if len(text) > limit:
            await self.connection.send(
                _error("too_large", f"messages are limited to {limit} characters; this one has {len(text)}", client_id)
            )
            return
        if not self.chat.hub.allow(self.contact.id):
            await self.connection.send(
                _error("rate_limited", "you are sending messages too fast; wait a moment and try again", client_id)
            )
            return
        try:
            if self.contact.pending is not None:
                await self._create_contact()
            row = await self._hand_over(client_id, text)
        except NoFlowLive:
            await self.connection.send(_error("unavailable", "no chat flow is live right now", client_id))
            return
        except Exception:
            log.exception("web-chat message %s could not be queued", client_id)
            await self.connection.send(
                _error("unavailable", "the message could not be sent; retry in a moment", client_id)
            )
            return
        await self.connection.send({"type": "ack", "id": client_id, "seq": row.seq})
        await self.chat.hub.push(self.contact.id, message_frame(row), skip=self.connection)

    async def _create_contact(self) -> None:
        """The visitor's first message: their contact and identity are stored now."""
        pending = self.contact
        assert pending.pending is not None
        contact = await self.chat.host.resolve_contact(*pending.pending, name=pending.name, locale=pending.locale)
        self.contact = Visitor.of(contact)
        # Every tab of this visitor on this node now receives the contact's replies.
        self.chat.hub.rekey(pending.id, contact.id)

    async def _hand_over(self, client_id: str, text: str) -> LoggedMessage:
        """The message, logged and queued in its conversation (the host opens one if needed)."""
        contact_id = self.contact.id
        message = InboundText(
            channel=CHANNEL,
            # Scoped to the visitor: another visitor's ids can never collide with these.
            message_id=f"{contact_id}:{client_id}",
            text=text,
            contact=self.contact.contact(),
            at=datetime.now(UTC).isoformat(),
            held_by_node=True,
        )

        async def typing() -> None:
            # Before the hand-over: the reply may reach the socket before its answer does.
            await self.chat.hub.push(contact_id, {"type": "typing", "state": True})

        accepted = await self.chat.host.accept(message, conversation_id=self.conversation_id, typing=typing)
        self.conversation_id = accepted.conversation_id
        return accepted.message
