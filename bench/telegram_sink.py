"""A Bot API endpoint for benchmarks, in its own process: answers every call, reports each ``sendMessage``.

``bench/webhooks.py`` runs it so that the replies' receiving side does not share
the load generator's interpreter (and its GIL): a thread-per-connection emulator
in the bench process made both the webhook answers and the replies look slower
than the server made them. It speaks just enough of the Bot API for the delivery
activity: ``POST /bot<token>/<method>`` with a JSON body, answered ``{"ok": true,
"result": {...}}`` over keep-alive HTTP/1.1. For each ``sendMessage`` it prints one
line, ``<time.monotonic()>\\t<text as JSON>``, flushed: the clock is the system's
monotonic clock, the same in every process of the host.

    python bench/telegram_sink.py TOKEN      # prints "port <n>" first
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

_ids = itertools.count(1)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request_line.split(" ")[1]
            status, answer = _answer(path, body, token)
            payload = json.dumps(answer).encode()
            head_line = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            writer.write(head_line.encode() + b"\r\n" + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def _answer(path: str, body: bytes, token: str) -> tuple[int, dict[str, object]]:
    prefix = f"/bot{token}/"
    if not path.startswith(prefix):
        return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    method = path[len(prefix) :]
    params = json.loads(body) if body else {}
    if method == "sendMessage":
        text = str(params.get("text") or "")
        sys.stdout.write(f"{time.monotonic()}\t{json.dumps(text)}\n")
        sys.stdout.flush()
        message = {"message_id": next(_ids), "chat": {"id": params.get("chat_id"), "type": "private"}, "text": text}
        return 200, {"ok": True, "result": message}
    return 200, {"ok": True, "result": True}


async def main(token: str) -> None:
    server = await asyncio.start_server(lambda r, w: serve(r, w, token), "127.0.0.1", 0)
    sys.stdout.write(f"port {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
