"""A scripted local HTTP server: the common part of every vendor emulator.

An emulator subclasses :class:`VendorServer` and says how its vendor answers
(:meth:`VendorServer.answer`) and how it words an error
(:meth:`VendorServer.error_body`). A test picks the behaviour with ``mode`` (or
a queue of modes, one per request) and reads back every request it received,
headers and body, from ``requests``:

- ``ok``: the vendor's success answer with ``reply_text``;
- ``unauthorized``: 401 with the vendor's error body (which echoes the key it got,
  as some vendors do, so that tests can check it never leaks further);
- ``rate_limited``: 429 with ``Retry-After: <retry_after>``;
- ``server_error``: 500;
- ``timeout``: answers only after ``delay`` seconds;
- ``malformed``: 200 with a body that is not JSON;
- ``empty``: the success format with an empty answer.

It runs on a real socket in its own thread, so it serves any client on any loop.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "unauthorized", "rate_limited", "server_error", "timeout", "malformed", "empty")


@dataclass
class Recorded:
    """One request as the emulator received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


class LocalServer:
    """An HTTP server on a free port of 127.0.0.1, served from a daemon thread (so any loop can call it).

    A subclass says how requests are handled (:meth:`handler`); ``with`` starts and stops it.
    """

    name = "local"
    _server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None, f"the {self.name} emulator is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-emulator", daemon=True
        )
        serve.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_answer(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
    """Send one JSON answer; a client that gave up waiting (a timeout test) is not an error."""
    try:
        handler.send_response(status)
        for key, value in {"content-type": "application/json", **headers}.items():
            handler.send_header(key, value)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass


class VendorServer(LocalServer):
    """Base emulator; see the module docstring."""

    name = "vendor"

    def __init__(self, *, reply_text: str = "Hello from the emulator.", delay: float = 5.0) -> None:
        self.mode = "ok"
        self.modes: deque[str] = deque()
        self.reply_text = reply_text
        self.delay = delay
        self.retry_after = 1
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    # -- what a vendor emulator defines --------------------------------------------

    def answer(self, request: Recorded, text: str) -> Reply:
        """The vendor's success answer carrying ``text`` (may be empty)."""
        raise NotImplementedError

    def error_body(self, status: int, request: Recorded) -> Any:
        """The vendor's error body for ``status``."""
        return {"error": {"message": f"HTTP {status}", "code": status}}

    # -- scripting -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget the requests and the scripting, for a server shared by several tests.

        Emulators with more state of their own extend it (``super().reset()`` first).
        """
        with self._lock:
            self.requests.clear()
        self.mode, self.retry_after = "ok", 1
        self.modes.clear()

    def then(self, *modes: str) -> VendorServer:
        """Answer the next requests with ``modes`` in order, then with ``mode`` again."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}")
            self.modes.append(mode)
        return self

    def handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = emulator._respond(request)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                write_answer(self, reply.status, reply.headers, payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler

    # -- dispatch ------------------------------------------------------------------

    def _next_mode(self) -> str:
        with self._lock:
            return self.modes.popleft() if self.modes else self.mode

    def _respond(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        mode = self._next_mode()
        if mode == "timeout":
            time.sleep(self.delay)
            return self.answer(request, self.reply_text)
        if mode == "unauthorized":
            return Reply(401, self.error_body(401, request))
        if mode == "rate_limited":
            return Reply(429, self.error_body(429, request), {"retry-after": str(self.retry_after)})
        if mode == "server_error":
            return Reply(500, self.error_body(500, request))
        if mode == "malformed":
            return Reply(200, b'{"choices": [{"message": ')
        if mode == "empty":
            return self.answer(request, "")
        return self.answer(request, self.reply_text)

    def presented_key(self, request: Recorded) -> str:
        """The credential a request carried (for error bodies that echo it)."""
        auth = request.headers.get("authorization", "")
        return auth.removeprefix("Bearer ").strip() or request.headers.get("x-api-key", "")
