"""A system connected to Flowdesk's API channel, on a local port: both of its sides.

:class:`ApiReceiver` is the system's callback endpoint. It checks each request's
signature the way a user's system would (its own HMAC code, not Flowdesk's), answers
401 to a bad one, records replies per contact, and drops a repeated
``message.id`` (acknowledged again with 200 and counted, as the docs ask a receiver
to do). Tests script failures with :meth:`ApiReceiver.inject`: the next requests
are answered 500, 429 with ``Retry-After``, 400, or only after a delay.

:func:`post_inbound` is the system's sending side: it signs a message and POSTs it
to a Flowdesk webhook URL (sync httpx), returning the status and how long it took.

The receiver runs on a real socket in its own thread, so any client on any event
loop can call it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.vendors.base import LocalServer, write_answer

#: The receiver's replay window, as the docs tell receivers to check it.
WINDOW_SECONDS = 300


def _expected_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """What a user's system computes: written here, independent of connectors.channels.api."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Fault:
    """One scripted answer: a status (with ``Retry-After`` for a 429), or a delay before a normal answer."""

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0


def fail(status: int, retry_after: str | None = None) -> Fault:
    return Fault(status=status, retry_after=retry_after)


def slow(seconds: float) -> Fault:
    """Process the reply, but answer only after ``seconds`` (the sender may give up first)."""
    return Fault(delay=seconds)


@dataclass
class Callback:
    """One request the receiver got, verified or not."""

    headers: dict[str, str]
    body: bytes
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _State:
    by_contact: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    repeats: Counter[str] = field(default_factory=Counter)
    requests: list[Callback] = field(default_factory=list)
    refused: int = 0


class ApiReceiver(LocalServer):
    """A user's callback endpoint; see the module docstring. ``with ApiReceiver(secret) as r:``."""

    name = "api-receiver"

    def __init__(self, secret: str, *, path: str = "/flowdesk/replies", answer_ids: bool = False) -> None:
        self.secret = secret.encode()
        self.path = path
        #: answer ``{"id": "rcv-<n>"}``: the receiver's own id of each reply
        self.answer_ids = answer_ids
        self._faults: deque[Fault] = deque()
        self._state = _State()
        self._changed = threading.Condition()

    # -- scripting and reading back --------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Answer the next requests with ``faults``, one each, in order; then normally again."""
        with self._changed:
            self._faults.extend(faults)

    def messages(self, contact_id: str) -> list[dict[str, Any]]:
        """The replies accepted for a contact (``message`` objects), in arrival order, repeats dropped."""
        with self._changed:
            return list(self._state.by_contact.get(contact_id, []))

    def texts(self, contact_id: str) -> list[str]:
        """What the contact is shown: each reply's text, its choices on the lines below."""
        return ["\n".join([m["text"], *m["choices"]]) for m in self.messages(contact_id)]

    def wait_for(self, contact_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``count`` replies for the contact arrived; AssertionError after ``timeout``."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._state.by_contact.get(contact_id, [])) >= count, timeout)
            got = list(self._state.by_contact.get(contact_id, []))
        assert arrived, f"{contact_id}: {len(got)} of {count} replies arrived within {timeout} s: {got}"
        return got

    @property
    def repeats(self) -> Counter[str]:
        """How often each key came again after it was accepted."""
        with self._changed:
            return Counter(self._state.repeats)

    @property
    def refused(self) -> int:
        """Requests answered 401: signature missing, wrong or out of the window."""
        with self._changed:
            return self._state.refused

    @property
    def requests(self) -> list[Callback]:
        with self._changed:
            return list(self._state.requests)

    @property
    def url(self) -> str:
        """The callback URL to configure (``callback_url``)."""
        return super().url + self.path

    # -- serving ---------------------------------------------------------------------------

    def verified(self, headers: Mapping[str, str], body: bytes) -> bool:
        stamp, claimed = headers.get("x-flowdesk-timestamp", ""), headers.get("x-flowdesk-signature", "")
        if not (stamp.isascii() and stamp.isdigit()) or abs(time.time() - int(stamp)) > WINDOW_SECONDS:
            return False
        return hmac.compare_digest(_expected_signature(self.secret, stamp, body), claimed)

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request (runs on the server's thread)."""
        ok = self.verified(headers, body)
        with self._changed:
            self._state.requests.append(Callback(headers, body, ok))
            if not ok:
                self._state.refused += 1
                return 401, {}, b'{"error": "bad signature"}'
            fault = self._faults.popleft() if self._faults else Fault()
        if fault.status != 200:
            extra = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, extra, json.dumps({"error": f"injected {fault.status}"}).encode()
        answer = self._accept(json.loads(body))
        time.sleep(fault.delay)  # processed already: a sender that gave up will send a repeat
        return 200, {}, json.dumps(answer).encode()

    def _accept(self, data: dict[str, Any]) -> dict[str, Any]:
        message, contact = data["message"], data["contact"]["id"]
        with self._changed:
            if message["id"] in self._state.keys:
                self._state.repeats[message["id"]] += 1
            else:
                self._state.keys.add(message["id"])
                self._state.by_contact.setdefault(contact, []).append(message)
                self._changed.notify_all()
            number = len(self._state.keys)
        return {"id": f"rcv-{number}"} if self.answer_ids else {}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, headers, payload = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
                write_answer(self, status, headers, payload)

        return Handler


# -- the sending side --------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """What Flowdesk answered an inbound message, and how long it took."""

    status: int
    body: str
    seconds: float


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers a system sends with ``body`` (signed now unless ``timestamp`` is given)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": "application/json",
        "x-flowdesk-timestamp": stamp,
        "x-flowdesk-signature": _expected_signature(secret.encode(), stamp, body),
    }


def inbound_body(contact_id: str, message_id: str, text: str, **message: Any) -> bytes:
    """A message as a system sends it; ``message`` adds fields such as ``choice``."""
    return json.dumps({"contact": {"id": contact_id}, "message": {"id": message_id, "text": text, **message}}).encode()


def post_inbound(url: str, secret: str, body: bytes, *, timestamp: int | None = None, timeout: float = 30.0) -> Posted:
    """Sign ``body`` and POST it to a Flowdesk webhook URL (``/webhooks/api/<account>``)."""
    started = time.perf_counter()
    response = httpx.post(url, content=body, headers=signed_headers(secret, body, timestamp=timestamp), timeout=timeout)
    return Posted(response.status_code, response.text, time.perf_counter() - started)
