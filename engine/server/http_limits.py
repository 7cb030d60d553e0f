"""uvicorn's HTTP/1.1 protocol with a deadline on the request head.

uvicorn's h11 protocol arms no timer while a request head is incomplete: its
keep-alive timer is cancelled by the first byte received, so a client that sends
half a request line, or headers that never end, holds a connection (and its file
descriptor) forever. Here every connection must deliver a complete request head
(or WebSocket upgrade) within :data:`HEAD_TIMEOUT` of opening, or of the previous
response; otherwise it gets a 408 and is closed. Nothing changes once a head is
complete: a request body, a long response or an open WebSocket are not timed.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import h11
from uvicorn.config import UvicornDeprecationWarning
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a connection has to send a complete request head.
HEAD_TIMEOUT = 5.0


class HeadDeadlineH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request head is not complete in time."""

    head_timeout: float = HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A head is complete once h11 has left IDLE (a request is being read or
        # answered); a WebSocket upgrade cancels the timer in handle_websocket_upgrade.
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The connection now belongs to the WebSocket protocol: an open socket is not timed.
        self._cancel_head_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Keep-alive: the next request's head has its own deadline (the keep-alive
        # timer uvicorn arms here is cancelled by the first byte that arrives).
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        try:
            # A client that did send something learns why; h11 refuses if a response is under way.
            response = h11.Response(
                status_code=408,
                headers=[(b"content-length", b"0"), (b"connection", b"close")],
                reason=b"Request Timeout",
            )
            self.transport.write(self.conn.send(response) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass
        self.transport.close()


def websockets_protocol() -> type[asyncio.Protocol]:
    """uvicorn's ``websockets`` (legacy) WebSocket protocol, imported without its deprecation warning.

    The ``websockets-sansio`` protocol uvicorn recommends never answers an upgrade
    whose header lines exceed the websockets parser's 8 KB limit: the handshake
    error is swallowed and the connection is held open, unanswered. The legacy
    protocol answers such an upgrade with a 400 and closes it. Its module warns
    once, on import, that it is deprecated; that one warning is silenced here
    (and only for this import) because the choice is deliberate.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UvicornDeprecationWarning, message="The `websockets` implementation")
        # ... and the websockets library's own note on importing its legacy module, which that protocol uses.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="websockets.legacy is deprecated")
        from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol  # noqa: PLC0415

    return WebSocketProtocol
