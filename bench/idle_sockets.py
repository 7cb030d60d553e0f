"""Benchmark: resident memory per idle web-chat connection of ``flowdesk serve``, against a bare Litestar socket.

- engine:   ``python -m engine serve`` (embedded Temporal, one web-chat echo flow) as
            a subprocess; N sockets on ``/ws/chat``, each a new visitor that has read
            its ``welcome`` and ``history`` frames, then left idle.
- baseline: a bare Litestar app with one WebSocket echo handler, run by this script
            (``--serve-bare``) as a subprocess under uvicorn with the options
            ``flowdesk serve`` uses (``engine.server.node.UVICORN_OPTIONS``: the
            legacy websockets protocol, the head-deadline h11 protocol, no
            per-message deflate, ...); N sockets on ``/ws``,
            each has had one text frame echoed, then left idle.

Each side: start the server, open and close a few sockets (first-use allocations
stay out of the figure), read the server's RSS (psutil, that process alone: not
the Temporal server the serve process starts), open N sockets concurrently in
batches, let the server settle, read the RSS again; ``kb_per_conn`` is the growth
over N. RSS is the median of a few reads. The sockets are closed and the RSS read
once more (what the server keeps after they are gone). Open-files limits are
raised to the hard limit here and, inherited, in the servers; the client sockets
offer permessage-deflate, as browsers do (``--compression none`` to not).

    python bench/idle_sockets.py [--connections 2000] [--batch 200] [--json]
    python bench/idle_sockets.py --connections 10000 --json     # the real measurement

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "idle_sockets", "params": {...}, "engine": {"kb_per_conn", ...}, "baseline": {...},
"ratio": {"kb_per_conn"}}``. Target: engine at most 1.3x the bare socket.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402 - after the path is set
    ServerProcess,
    chat_handshake,
    flowdesk_serve,
    free_port,
    json_line,
    load_average,
    machine,
    raise_open_files_limit,
    ratios,
    rss_kb,
    run_and_exit,
    server_process,
    ws_open,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

#: What a socket does once open before it idles: the engine's reads welcome and history, the bare one an echo.
Handshake = Callable[["ClientConnection"], Awaitable[Any]]

#: Sockets opened and closed before the first RSS read.
WARM = 50


# -- the baseline server -----------------------------------------------------------------------------------


def serve_bare(port: int) -> None:
    """The baseline: one WebSocket echo handler (and ``/readyz``) under uvicorn as ``flowdesk serve`` runs it."""
    import uvicorn  # noqa: PLC0415
    from litestar import Litestar, WebSocket, get, websocket  # noqa: PLC0415

    from engine.server.node import UVICORN_OPTIONS  # noqa: PLC0415

    @websocket("/ws")
    async def echo(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        while True:
            await socket.send_text(await socket.receive_text())

    @get("/readyz")
    async def ready() -> str:
        return "ok"

    app = Litestar(route_handlers=[echo, ready])
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)


async def bare_echo(socket: ClientConnection) -> None:
    await socket.send("hello")
    if await socket.recv() != "hello":
        raise RuntimeError("the bare echo socket did not echo")


# -- the measurement ---------------------------------------------------------------------------------------


async def open_sockets(url: str, n: int, handshake: Handshake, args: argparse.Namespace) -> list[ClientConnection]:
    """``n`` sockets to ``url``, ``args.batch`` at a time, each through ``handshake``."""
    compression = None if args.compression == "none" else "deflate"

    async def one() -> ClientConnection:
        socket = await ws_open(url, compression=compression)
        await handshake(socket)
        return socket

    sockets: list[ClientConnection] = []
    for start in range(0, n, args.batch):
        sockets += await asyncio.gather(*(one() for _ in range(min(args.batch, n - start))))
    return sockets


async def close_sockets(sockets: list[ClientConnection], batch: int) -> None:
    for start in range(0, len(sockets), batch):
        await asyncio.gather(*(s.close() for s in sockets[start : start + batch]), return_exceptions=True)


async def measure(
    name: str, server: ServerProcess, url: str, handshake: Handshake, args: argparse.Namespace
) -> dict[str, Any]:
    """The server's RSS before and after ``args.connections`` idle sockets, and after they closed."""
    n = args.connections
    await close_sockets(await open_sockets(url, WARM, handshake, args), args.batch)
    await asyncio.sleep(args.settle)
    before = await rss_kb(server.pid)
    started = time.monotonic()
    sockets = await open_sockets(url, n, handshake, args)
    open_s = time.monotonic() - started
    await asyncio.sleep(args.settle)
    after = await rss_kb(server.pid)
    dropped = sum(1 for s in sockets if s.close_code is not None)
    await close_sockets(sockets, args.batch)
    await asyncio.sleep(args.settle)
    closed = await rss_kb(server.pid)
    result = {
        "kb_per_conn": round((after - before) / n, 2),
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "rss_after_close_mb": round(closed / 1024, 1),
        "open_s": round(open_s, 2),
        "open_per_s": round(n / open_s, 1),
        "dropped": dropped,
    }
    print(
        f"{name:8s} {result['kb_per_conn']:7.2f} KB per connection   RSS {result['rss_before_mb']} -> "
        f"{result['rss_after_mb']} MB with {n} open, {result['rss_after_close_mb']} MB once closed   "
        f"(opened in {open_s:.1f} s, {dropped} dropped while idle)",
        flush=True,
    )
    return result


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[str]]:

    with tempfile.TemporaryDirectory(prefix="flowdesk-idle-") as tmp:
        root = Path(tmp)
        (root / "engine").mkdir()
        (root / "bare").mkdir()
        async with flowdesk_serve(root / "engine") as server:
            engine = await measure("engine", server, server.ws_url("/ws/chat"), chat_handshake, args)
            problems = server.problems()
        port = free_port()
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
        async with server_process(argv, cwd=root / "bare", port=port, ready_path="/readyz") as bare:
            baseline = await measure("baseline", bare, bare.ws_url("/ws"), bare_echo, args)
    return engine, baseline, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000, help="idle sockets per side (default 2000)")
    parser.add_argument("--batch", type=int, default=200, help="sockets opened concurrently (default 200)")
    parser.add_argument("--settle", type=float, default=2, help="seconds before each RSS read (default 2)")
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="client offer (default: deflate, as browsers)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.connections <= 0 or args.batch <= 0 or args.settle < 0:
        parser.error("--connections and --batch must be positive, --settle not negative")
    limit = raise_open_files_limit()
    if limit < args.connections + 100:
        parser.error(f"the open-files limit is {limit}: too few for {args.connections} sockets (raise `ulimit -Hn`)")

    logging.basicConfig(level=logging.ERROR)
    load = load_average()
    print(f"open-files limit: {limit}")
    engine, baseline, problems = asyncio.run(run(args))
    ratio = ratios(engine, baseline, ("kb_per_conn",))
    print(f"ratio engine/baseline: {ratio.get('kb_per_conn', float('nan')):.2f}x   (target: at most 1.3x)")
    for line in problems:
        print(f"server log: {line}")
    if args.json:
        params = {
            "connections": args.connections,
            "batch": args.batch,
            "settle_s": args.settle,
            "compression": args.compression,
            "rss": "psutil RSS of the server process alone, median of 5 reads",
            "server": "python -m engine serve (embedded Temporal, echo flow)",
            "baseline_server": "bare Litestar WebSocket echo under uvicorn, flowdesk's uvicorn options",
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("idle_sockets", params, engine, baseline, ratio))
    return 0


if __name__ == "__main__":
    run_and_exit(main)
