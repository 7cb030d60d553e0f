"""The Telegram Bot API on a local socket, and Telegram's side of the webhook.

:class:`TelegramEmulator` answers ``POST /bot<token>/<method>`` in the Bot API's
wire format (``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code",
"description", "parameters"}``), checks the token in the path (401 otherwise),
keeps each chat's messages as the customer would see them, and takes faults to
inject into the next calls (429 with ``retry_after``, 500, "chat not found", a
slow answer). It runs in its own thread, so unit tests, a real ``flowdesk serve``
and a benchmark can all use it; :meth:`TelegramEmulator.wait_for` blocks until a
chat has received N messages.

:class:`TelegramUpdates` plays Telegram calling the bot's webhook: it builds
updates with growing ``update_id`` s and POSTs them with the secret-token header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.vendors.base import LocalServer, write_answer

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "flowdesk_webhook-secret_0123456789"
BOT = {"id": 123456789, "is_bot": True, "first_name": "Flowdesk Support", "username": "flowdesk_support_bot"}
#: The Bot API's limits the emulator enforces, so a connector that breaks them fails its tests.
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64


@dataclass
class Call:
    """One Bot API call as received."""

    method: str
    token: str
    params: dict[str, Any]
    at: float


@dataclass
class SentMessage:
    """A message the bot sent, as the customer sees it."""

    message_id: int
    chat_id: str
    kind: str  # text | photo | document
    text: str = ""
    #: the labels of the inline buttons, in order
    buttons: list[str] = field(default_factory=list)
    #: the callback_data of each button, in the same order
    button_data: list[str] = field(default_factory=list)
    media: str = ""
    date: int = 0
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    """What the next matching call gets instead of the normal answer."""

    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    #: seconds to wait before answering (then answer normally when status is 200)
    delay: float = 0.0
    #: only calls of this method take the fault ("" : any)
    method: str = ""
    #: matching calls to let through before this one fails (a failure half-way through a reply)
    after: int = 0


class TelegramEmulator(LocalServer):
    """See the module docstring. ``with TelegramEmulator() as telegram: ... telegram.api_base``."""

    name = "telegram"

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.chats: dict[str, list[SentMessage]] = defaultdict(list)
        self.answered_callbacks: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self.faults: deque[Fault] = deque()
        self._ids = itertools.count(1000)
        self._changed = threading.Condition()

    # -- running ---------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What the connector's ``api_base`` setting should be."""
        return self.url

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def reset(self) -> None:
        """Forget calls, chats and faults (for an emulator shared by several tests)."""
        with self._changed:
            self.calls.clear()
            self.chats.clear()
            self.answered_callbacks.clear()
            self.webhook.clear()
            self.faults.clear()

    # -- scripting and reading back ----------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        description: str = "",
        *,
        retry_after: int | None = None,
        method: str = "",
        after: int = 0,
    ) -> None:
        """The next call (of ``method``, after ``after`` that succeed) fails with ``status`` in Telegram's format."""
        words = {429: "Too Many Requests: retry after", 400: "Bad Request: chat not found", 403: "Forbidden"}
        said = description or words.get(status, "Internal Server Error")
        if status == 429 and not description:
            said = f"{said} {retry_after or 1}"
        with self._changed:
            self.faults.append(Fault(status, said, retry_after, method=method, after=after))

    def slow_next(self, seconds: float, *, method: str = "") -> None:
        """The next call (of ``method``) is answered normally, ``seconds`` late."""
        with self._changed:
            self.faults.append(Fault(200, "", delay=seconds, method=method))

    def messages(self, chat_id: str | int) -> list[SentMessage]:
        with self._changed:
            return list(self.chats.get(str(chat_id), []))

    def texts(self, chat_id: str | int) -> list[str]:
        """What the customer sees: each message's text (or media) with its button labels on lines below."""
        return ["\n".join([m.text or m.media, *m.buttons]) for m in self.messages(chat_id)]

    def calls_of(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, chat_id: str | int, count: int, timeout: float = 10.0) -> list[SentMessage]:
        """Block until ``chat_id`` has received ``count`` messages; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.chats.get(str(chat_id), [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.text for m in self.chats.get(str(chat_id), [])]
                    raise AssertionError(f"chat {chat_id} received {len(got)} of {count} messages in {timeout}s: {got}")
                self._changed.wait(left)
            return list(self.chats[str(chat_id)])

    async def wait_for_async(self, chat_id: str | int, count: int, timeout: float = 10.0) -> list[SentMessage]:
        """:meth:`wait_for` without blocking the event loop (a node in the same process must keep serving)."""
        return await asyncio.to_thread(self.wait_for, chat_id, count, timeout)

    # -- the API ---------------------------------------------------------------------------

    def handle(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and body of one call to ``path``."""
        _, _, rest = path.partition("/bot")
        token, _, method = rest.partition("/")
        with self._changed:
            self.calls.append(Call(method, token, params, time.time()))
            self._changed.notify_all()
        if token != self.token:
            return 401, _error(401, "Unauthorized")
        fault = self._take_fault(method)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status != 200:
                extra = {"retry_after": fault.retry_after} if fault.retry_after is not None else {}
                return fault.status, _error(fault.status, fault.description, **extra)
        answer = getattr(self, f"_{method}", None)
        if answer is None:
            return 404, _error(404, "Not Found")
        status, result = answer(params)
        return status, ({"ok": True, "result": result} if status == 200 else result)

    def _take_fault(self, method: str) -> Fault | None:
        with self._changed:
            for fault in self.faults:
                if fault.method not in ("", method):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                self.faults.remove(fault)
                return fault
        return None

    def _getMe(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, BOT

    def _setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        url = str(params.get("url") or "")
        if url and not url.startswith(("https://", "http://")):
            return 400, _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        with self._changed:
            self.webhook = {
                "url": url,
                "secret_token": params.get("secret_token"),
                "allowed_updates": _listed(params.get("allowed_updates")),
            }
        return 200, True

    def _getWebhookInfo(self, params: dict[str, Any]) -> tuple[int, Any]:
        with self._changed:
            hook = dict(self.webhook)
        info = {"url": hook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
        if hook.get("allowed_updates"):
            info["allowed_updates"] = hook["allowed_updates"]
        return 200, info

    def _answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not params.get("callback_query_id"):
            return 400, _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        with self._changed:
            self.answered_callbacks.append(params)
        return 200, True

    def _sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        text = str(params.get("text") or "")
        if not text.strip():
            return 400, _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            return 400, _error(400, "Bad Request: message is too long")
        return self._deliver(params, "text", text=text)

    def _sendPhoto(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not params.get("photo"):
            return 400, _error(400, "Bad Request: there is no photo in the request")
        return self._deliver(params, "photo", media=str(params["photo"]), text=str(params.get("caption") or ""))

    def _sendDocument(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not params.get("document"):
            return 400, _error(400, "Bad Request: there is no document in the request")
        return self._deliver(params, "document", media=str(params["document"]), text=str(params.get("caption") or ""))

    def _deliver(self, params: dict[str, Any], kind: str, *, text: str = "", media: str = "") -> tuple[int, Any]:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            return 400, _error(400, "Bad Request: chat_id is empty")
        markup = params.get("reply_markup")
        markup = json.loads(markup) if isinstance(markup, str) else markup
        rows = (markup or {}).get("inline_keyboard", []) if isinstance(markup, dict) else []
        buttons = [b for row in rows for b in row]
        if any(len(str(b.get("callback_data", "")).encode()) > MAX_CALLBACK_DATA for b in buttons):
            return 400, _error(400, "Bad Request: BUTTON_DATA_INVALID")
        with self._changed:
            message_id = next(self._ids)
            result: dict[str, Any] = {
                "message_id": message_id,
                "from": BOT,
                "chat": {"id": _int_or_str(chat_id), "type": "private"},
                "date": int(time.time()),
            }
            result |= {"text": text} if kind == "text" else {kind: media} | ({"caption": text} if text else {})
            if rows:
                result["reply_markup"] = {"inline_keyboard": rows}
            sent = SentMessage(
                message_id=message_id,
                chat_id=chat_id,
                kind=kind,
                text=text,
                buttons=[str(b.get("text", "")) for b in buttons],
                button_data=[str(b.get("callback_data", "")) for b in buttons],
                media=media,
                date=result["date"],
                raw=result,
            )
            self.chats[chat_id].append(sent)
            self._changed.notify_all()
        return 200, result


def _handler(emulator: TelegramEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query))
            try:
                params |= _body_params(body, self.headers.get("content-type") or "")
            except ValueError:
                status, answer = 400, _error(400, "Bad Request: can't parse JSON object")
            else:
                status, answer = emulator.handle(parts.path, params)
            write_answer(self, status, {}, json.dumps(answer).encode())

        do_GET = do_POST = _handle

    return Handler


def _body_params(body: bytes, content_type: str) -> dict[str, Any]:
    """The Bot API takes JSON, form-encoded or query parameters alike."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    return dict(parse_qsl(body.decode()))


def _error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _int_or_str(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


# -- Telegram's side of the webhook ----------------------------------------------------------------


@dataclass
class Posted:
    """What the bot's webhook answered one update."""

    status: int
    seconds: float
    update: dict[str, Any]


class TelegramUpdates:
    """Updates as Telegram sends them, with a growing ``update_id``, and a way to POST them."""

    def __init__(self, secret: str = SECRET, *, first_update_id: int = 100_000) -> None:
        self.secret = secret
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)

    def user(
        self, chat_id: int, first_name: str = "Ana", last_name: str = "Lima", language: str = "en"
    ) -> dict[str, Any]:
        return {
            "id": chat_id,
            "is_bot": False,
            "first_name": first_name,
            "last_name": last_name,
            "language_code": language,
        }

    def _message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "from": self.user(chat_id),
            "chat": {"id": chat_id, "first_name": "Ana", "last_name": "Lima", "type": "private"},
            "date": int(time.time()),
            **content,
        }

    def text(self, chat_id: int, text: str) -> dict[str, Any]:
        """A customer's text message."""
        return {"update_id": next(self._update_ids), "message": self._message(chat_id, text=text)}

    def photo(self, chat_id: int, caption: str = "", file_id: str = "AgACAgIAAxkBAAIBQ2") -> dict[str, Any]:
        """A photo in three sizes, the largest last (as Telegram lists them)."""
        sizes = [
            {"file_id": f"{file_id}-s", "file_unique_id": "s", "file_size": 1200, "width": 90, "height": 67},
            {"file_id": f"{file_id}-m", "file_unique_id": "m", "file_size": 15000, "width": 320, "height": 240},
            {"file_id": file_id, "file_unique_id": "x", "file_size": 80000, "width": 1280, "height": 960},
        ]
        content: dict[str, Any] = {"photo": sizes} | ({"caption": caption} if caption else {})
        return {"update_id": next(self._update_ids), "message": self._message(chat_id, **content)}

    def press(self, sent: SentMessage, label: str) -> dict[str, Any]:
        """The customer taps the button ``label`` under a message the bot sent (from the emulator)."""
        data = sent.button_data[sent.buttons.index(label)]
        chat_id = int(sent.chat_id)
        query = {
            "id": f"{chat_id}{next(self._message_ids)}",
            "from": self.user(chat_id),
            "message": sent.raw,
            "chat_instance": "-8231760417562",
            "data": data,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    def post(self, url: str, update: dict[str, Any], *, secret: str | None = None, timeout: float = 30.0) -> Posted:
        """POST ``update`` to a webhook URL as Telegram does; the answer's status and how long it took."""
        headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": secret or self.secret}
        started = time.perf_counter()
        response = httpx.post(url, content=json.dumps(update).encode(), headers=headers, timeout=timeout)
        return Posted(response.status_code, time.perf_counter() - started, update)

    async def post_async(self, url: str, update: dict[str, Any], *, secret: str | None = None) -> Posted:
        """:meth:`post` from a thread, for tests whose node runs on the test's event loop."""
        return await asyncio.to_thread(self.post, url, update, secret=secret)
