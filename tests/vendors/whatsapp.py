"""The WhatsApp Cloud API, both sides: Graph's ``/messages`` endpoint, and Meta calling our webhook.

Graph side: ``POST /{version}/{phone_number_id}/messages`` with ``Authorization:
Bearer <token>`` answers as graph.facebook.com does,
``{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``,
and records each message per recipient as the customer would see it (:class:`Sent`).
A wrong token is Graph's 190 ``OAuthException`` (401), another phone number id or
a body Graph would refuse is code 100 (400). Errors carry Graph's body
``{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}``.

Scripting (each call queues one answer, taken by the next request in order):
:meth:`WhatsAppEmulator.fail` (any status and Graph code), :meth:`throttle`
(130429 / 131056 / 80007, answered 400 as Graph does, or 429),
:meth:`server_error`, :meth:`reject`, :meth:`slow`; and
:meth:`close_window` makes free-form messages to one customer fail with 131047
as they do 24 h after the customer last wrote (templates still go through).
The base modes of :class:`~tests.vendors.base.VendorServer` (``then("rate_limited")``) work too.

Meta's side: :meth:`webhook_body` builds an event body (with :func:`text_message`,
:func:`button_reply`, :func:`list_reply`, :func:`image_message`, :func:`status`),
:meth:`post_webhook` POSTs it to a Flowdesk URL signed with the app secret, and
:meth:`handshake` performs the ``hub.challenge`` check; both return the answer and
how long it took (:class:`WebhookResult`).

It runs on a real socket in its own thread: unit tests, a real ``flowdesk serve``
and the benchmark can all use it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.vendors.base import Recorded, Reply, VendorServer

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"
ACCESS_TOKEN = "EAAJB-emulator-access-token"
APP_SECRET = "emulator-app-secret"
VERIFY_TOKEN = "emulator-verify-token"
CUSTOMER = "16505551234"

_PATH = re.compile(r"/(v\d+\.\d+)/([^/]+)/messages")
_ERRORS: dict[int, tuple[str, int]] = {
    # code: (Graph's message, HTTP status Graph answers it with)
    1: ("An unknown error occurred", 500),
    2: ("Service temporarily unavailable", 503),
    100: ("Invalid parameter", 400),
    190: ("Invalid OAuth access token - Cannot parse access token", 401),
    80007: ("Rate limit issues", 400),
    130429: ("Rate limit hit", 400),
    131000: ("Something went wrong", 500),
    131026: ("Message undeliverable", 400),
    131047: ("Re-engagement message", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", 400),
}
_wamids = itertools.count(1)


@dataclass(frozen=True)
class Sent:
    """One message Graph took, as the customer sees it."""

    wamid: str
    to: str
    type: str
    text: str = ""
    #: titles of the reply buttons or list rows, in order
    buttons: tuple[str, ...] = ()
    #: the ids of those buttons or rows (what a tap sends back)
    ids: tuple[str, ...] = ()
    template: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)

    def shown(self) -> str:
        """What the chat shows: the text (or template and its parameters), then one line per button."""
        if self.type == "template":
            params = [p.get("text", "") for c in self.template.get("components", []) for p in c.get("parameters", [])]
            head = f"[template {self.template.get('name')}] " + " | ".join(params)
        else:
            head = self.text
        return "\n".join([head, *self.buttons]) if self.buttons else head


@dataclass(frozen=True)
class Fault:
    """A scripted answer for one request."""

    status: int | None  # None: answer normally (after ``delay``)
    code: int | None = None
    message: str = ""
    delay: float = 0.0
    retry_after: str | None = None


@dataclass(frozen=True)
class WebhookResult:
    """What Flowdesk answered Meta, and how long it took."""

    status: int
    text: str
    seconds: float


class WhatsAppEmulator(VendorServer):
    """Graph's messages endpoint for one phone number, and Meta's webhook calls; see the module docstring."""

    name = "whatsapp"

    def __init__(
        self,
        *,
        phone_number_id: str = PHONE_NUMBER_ID,
        access_token: str = ACCESS_TOKEN,
        app_secret: str = APP_SECRET,
        verify_token: str = VERIFY_TOKEN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.app_secret = app_secret
        self.verify_token = verify_token
        self._changed = threading.Condition(self._lock)
        self.reset()

    def reset(self) -> None:
        """No messages, no scripted faults, every window open."""
        super().reset()
        with self._lock:
            self.messages: dict[str, list[Sent]] = {}
            self.faults: deque[Fault] = deque()
            self.closed_windows: set[str] = set()

    # -- scripting -----------------------------------------------------------------------

    def fail(
        self, status: int, code: int | None = None, message: str = "", *, retry_after: str | None = None, times: int = 1
    ) -> WhatsAppEmulator:
        """The next ``times`` requests get ``status`` with Graph's error ``code``."""
        with self._lock:
            self.faults.extend([Fault(status, code, message, retry_after=retry_after)] * times)
        return self

    def throttle(self, code: int = 130429, *, status: int | None = None, retry_after: str | None = None) -> None:
        """A rate-limit answer: Graph sends 130429, 131056 and 80007 as 400s, the edge 429."""
        self.fail(status or _ERRORS[code][1], code, retry_after=retry_after)

    def server_error(self, code: int = 131000) -> None:
        self.fail(_ERRORS[code][1], code)

    def reject(self, code: int = 131026, message: str = "") -> None:
        self.fail(_ERRORS.get(code, ("", 400))[1], code, message)

    def slow(self, seconds: float) -> None:
        """The next request is answered normally, after ``seconds``."""
        with self._lock:
            self.faults.append(Fault(None, delay=seconds))

    def close_window(self, recipient: str) -> None:
        """24 h since ``recipient`` last wrote: free-form messages to them fail with 131047."""
        with self._lock:
            self.closed_windows.add(recipient)

    def open_window(self, recipient: str) -> None:
        with self._lock:
            self.closed_windows.discard(recipient)

    # -- reading back ----------------------------------------------------------------------

    def sent_to(self, recipient: str) -> list[Sent]:
        with self._lock:
            return list(self.messages.get(recipient, []))

    @property
    def message_count(self) -> int:
        """Messages taken so far, for every recipient (a benchmark's throughput)."""
        with self._lock:
            return sum(len(sent) for sent in self.messages.values())

    def shown(self, recipient: str) -> list[str]:
        return [message.shown() for message in self.sent_to(recipient)]

    def wait_for(self, recipient: str, count: int, timeout: float = 10.0) -> list[Sent]:
        """Block until ``recipient`` has ``count`` messages; AssertionError names what came instead."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages.get(recipient, [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [m.shown() for m in self.messages.get(recipient, [])]
                    raise AssertionError(f"{recipient} got {len(got)} of {count} messages in {timeout}s: {got}")
                self._changed.wait(left)
            return list(self.messages[recipient])

    async def wait_for_async(self, recipient: str, count: int, timeout: float = 10.0) -> list[Sent]:
        """:meth:`wait_for` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, recipient, count, timeout)

    # -- Graph's side ----------------------------------------------------------------------

    def error_body(self, status: int, request: Recorded) -> Any:
        code = {401: 190, 429: 130429, 500: 1}.get(status, 100)
        return graph_error(code)

    def _respond(self, request: Recorded) -> Reply:
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
        if fault is None:
            return super()._respond(request)  # records it; base modes, then answer()
        with self._lock:
            self.requests.append(request)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is None:
            return self.answer(request, "")
        headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
        return Reply(fault.status, graph_error(fault.code or 100, fault.message), headers)

    def answer(self, request: Recorded, text: str) -> Reply:
        match = _PATH.fullmatch(request.path)
        if request.method != "POST" or match is None:
            return Reply(400, graph_error(100, f"Unknown path components: {request.path}"))
        if request.headers.get("authorization", "") != f"Bearer {self.access_token}":
            return Reply(401, graph_error(190))
        if match.group(2) != self.phone_number_id:
            message = f"Unsupported post request. Object with ID '{match.group(2)}' does not exist"
            return Reply(400, graph_error(100, message, subcode=33))
        try:
            sent = _parse(request.json, f"wamid.HBgL{_wamid_tail()}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Reply(400, graph_error(100, f"(#100) Invalid parameter: {exc}"))
        with self._changed:
            if sent.type != "template" and sent.to in self.closed_windows:
                return Reply(400, graph_error(131047, details="Message failed to send because more than 24 hours"))
            self.messages.setdefault(sent.to, []).append(sent)
            self._changed.notify_all()
        body = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": sent.to, "wa_id": sent.to.lstrip("+")}],
            "messages": [{"id": sent.wamid}],
        }
        return Reply(200, body)

    # -- Meta's side: calling the webhook --------------------------------------------------

    def signature(self, body: bytes, secret: str | None = None) -> str:
        """``X-Hub-Signature-256`` for ``body`` (with another ``secret``: a forgery)."""
        key = (self.app_secret if secret is None else secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def webhook_body(
        self,
        messages: Iterable[Mapping[str, Any]] = (),
        statuses: Iterable[Mapping[str, Any]] = (),
        *,
        names: Mapping[str, str] | None = None,
        phone_number_id: str | None = None,
    ) -> bytes:
        """An event body as Meta sends it; ``names`` gives the contacts' profile names by wa_id."""
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": phone_number_id or self.phone_number_id,
            },
        }
        messages, statuses = list(messages), list(statuses)
        if messages:
            senders = {m["from"] for m in messages}
            value["contacts"] = [{"profile": {"name": (names or {}).get(s, "")}, "wa_id": s} for s in sorted(senders)]
            value["messages"] = messages
        if statuses:
            value["statuses"] = statuses
        change = {"value": value, "field": "messages"}
        return json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [change]}]}
        ).encode()

    def post_webhook(
        self, url: str, body: bytes, *, signature: str | None = None, timeout: float = 30.0
    ) -> WebhookResult:
        """POST ``body`` to Flowdesk as Meta does (signed with the app secret unless ``signature`` is given)."""
        headers = {
            "content-type": "application/json",
            "user-agent": "facebookexternalua",
            "x-hub-signature-256": self.signature(body) if signature is None else signature,
        }
        started = time.perf_counter()
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
        return WebhookResult(response.status_code, response.text, time.perf_counter() - started)

    def handshake(
        self, url: str, *, token: str | None = None, challenge: str = "1158201444", timeout: float = 30.0
    ) -> WebhookResult:
        """Meta's check of a callback URL: GET ``hub.mode=subscribe`` with the verify token and a challenge."""
        params = {"hub.mode": "subscribe", "hub.verify_token": token or self.verify_token, "hub.challenge": challenge}
        started = time.perf_counter()
        response = httpx.get(url, params=params, timeout=timeout)
        return WebhookResult(response.status_code, response.text, time.perf_counter() - started)


# -- event builders (one entry of ``messages`` or ``statuses``) ------------------------------------


def _event_id() -> str:
    return "wamid.HBgL" + secrets.token_hex(16).upper()


def _now() -> str:
    return str(int(time.time()))


def text_message(text: str, *, sender: str = CUSTOMER, message_id: str | None = None) -> dict[str, Any]:
    return {
        "from": sender,
        "id": message_id or _event_id(),
        "timestamp": _now(),
        "type": "text",
        "text": {"body": text},
    }


def button_reply(
    choice_id: str, title: str, *, sender: str = CUSTOMER, message_id: str | None = None
) -> dict[str, Any]:
    """A tap on a reply button: its id is what we sent, its title what the customer saw."""
    return _interactive("button_reply", {"id": choice_id, "title": title}, sender, message_id)


def list_reply(choice_id: str, title: str, *, sender: str = CUSTOMER, message_id: str | None = None) -> dict[str, Any]:
    return _interactive("list_reply", {"id": choice_id, "title": title, "description": ""}, sender, message_id)


def _interactive(kind: str, reply: dict[str, str], sender: str, message_id: str | None) -> dict[str, Any]:
    return {
        "context": {"from": DISPLAY_NUMBER, "id": _event_id()},
        "from": sender,
        "id": message_id or _event_id(),
        "timestamp": _now(),
        "type": "interactive",
        "interactive": {"type": kind, kind: reply},
    }


def image_message(
    media_id: str = "1479537139650973", *, caption: str = "", sender: str = CUSTOMER, message_id: str | None = None
) -> dict[str, Any]:
    image: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": secrets.token_urlsafe(32), "id": media_id}
    if caption:
        image["caption"] = caption
    return {"from": sender, "id": message_id or _event_id(), "timestamp": _now(), "type": "image", "image": image}


def status(
    wamid: str, state: str, *, recipient: str = CUSTOMER, error_code: int | None = None, details: str = ""
) -> dict[str, Any]:
    """A delivery status of a message we sent; ``failed`` ones carry Graph's error."""
    event: dict[str, Any] = {"id": wamid, "status": state, "timestamp": _now(), "recipient_id": recipient}
    if error_code is not None:
        title = _ERRORS.get(error_code, ("Error", 400))[0]
        event["errors"] = [
            {"code": error_code, "title": title, "message": title, "error_data": {"details": details or title}}
        ]
    return event


# -- Graph's wire format -------------------------------------------------------------------------


def graph_error(code: int, message: str = "", *, subcode: int | None = None, details: str = "") -> dict[str, Any]:
    """Graph's error body for ``code``."""
    said = message or _ERRORS.get(code, ("An error occurred", 400))[0]
    error: dict[str, Any] = {
        "message": f"(#{code}) {said}" if code not in (1, 2, 190) else said,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if code >= 130000:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or said}
    return {"error": error}


def _wamid_tail() -> str:
    return base64.b64encode(f"{next(_wamids):012d}{secrets.token_hex(8)}".encode()).decode().rstrip("=")


def _parse(body: Any, wamid: str) -> Sent:
    """A messages request as Graph reads it; ValueError (and friends) for what Graph refuses."""
    if body.get("messaging_product") != "whatsapp":
        raise ValueError("messaging_product must be whatsapp")
    to, kind = str(body["to"]), body["type"]
    if kind == "text":
        text = body["text"]["body"]
        if not text or len(text) > 4096:
            raise ValueError("text.body must have 1 to 4096 characters")
        return Sent(wamid, to, kind, text=text, body=body)
    if kind == "interactive":
        return _parse_interactive(body, to, wamid)
    if kind == "template":
        template = body["template"]
        if not template["name"] or not template["language"]["code"]:
            raise ValueError("template.name and template.language.code are required")
        return Sent(wamid, to, kind, template=template, body=body)
    if kind in ("image", "document", "audio", "video", "sticker"):
        media = body[kind]
        if not (media.get("link") or media.get("id")):
            raise ValueError(f"{kind} needs a link or an id")
        return Sent(wamid, to, kind, text=media.get("caption") or media.get("link") or media["id"], body=body)
    raise ValueError(f"unsupported message type {kind}")


def _parse_interactive(body: Any, to: str, wamid: str) -> Sent:
    interactive = body["interactive"]
    text = interactive["body"]["text"]
    if not text or len(text) > 1024:
        raise ValueError("interactive.body.text must have 1 to 1024 characters")
    if interactive["type"] == "button":
        replies = [b["reply"] for b in interactive["action"]["buttons"]]
        if not 1 <= len(replies) <= 3 or any(len(r["title"]) > 20 or len(r["id"]) > 256 for r in replies):
            raise ValueError("1 to 3 buttons, titles up to 20 characters, ids up to 256")
    elif interactive["type"] == "list":
        action = interactive["action"]
        replies = [row for section in action["sections"] for row in section["rows"]]
        if not 1 <= len(replies) <= 10 or any(len(r["title"]) > 24 or len(r["id"]) > 200 for r in replies):
            raise ValueError("1 to 10 rows, titles up to 24 characters, ids up to 200")
        if not action["button"] or len(action["button"]) > 20:
            raise ValueError("action.button must have 1 to 20 characters")
    else:
        raise ValueError(f"unsupported interactive type {interactive['type']}")
    if len({r["id"] for r in replies}) != len(replies):
        raise ValueError("button and row ids must be unique")
    titles, ids = tuple(r["title"] for r in replies), tuple(r["id"] for r in replies)
    return Sent(wamid, to, "interactive", text=text, buttons=titles, ids=ids, body=body)
