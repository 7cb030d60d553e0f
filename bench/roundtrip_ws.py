"""Benchmark: web-chat message in -> reply out over WebSocket, through ``flowdesk serve``, against raw Temporal.

End to end: this script starts ``python -m engine serve`` as a subprocess (its
embedded Temporal dev server on SQLite, its worker, SQLite store and HTTP server,
all on free ports of 127.0.0.1) with one web-chat flow, ``listen (wait: message)
-> answer (ai: echo) -> listen``, and a web-chat rate limit of 100 msg/s per
visitor. It opens C sockets on ``/ws/chat`` (one visitor each, welcome and
history read) and drives an OPEN-LOOP load: message ``i`` is sent at its planned
time ``t0 + i/R`` on socket ``i % C`` whether or not earlier ones were answered
(bench/roundtrip.py's driver). Latency runs from the *planned* send time to the
reply frame (``direction: out``, whose text is the message's own, with its unique
token) arriving on the socket; "accepted" is the ``ack`` frame.

- engine:   the web-chat protocol above (socket -> update-with-start of
            ConversationWorkflow -> echo AI -> delivery activity -> socket).
- baseline: bench/roundtrip.py's raw-Temporal entity workflow (one update-with-start
            per message, whose handler runs one local activity that stamps the
            time), its worker in this process, against the serve process's own
            embedded Temporal server, so both sides share one Temporal.

Baseline first, then the engine, each after its own warm-up at the same rate (the
warm-up's first message on each socket starts that visitor's conversation). CPU
per message: of this process (client sockets; the baseline's worker) and of the
serve process with its children (the Temporal server), from psutil.

    python bench/roundtrip_ws.py [--rate 50] [--conversations 50] [--seconds 10] [--warmup 2] [--json]

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "roundtrip_ws", "params": {...}, "engine": {"p50_ms", "p99_ms", "per_s", ...},
"baseline": {...}, "ratio": {"p50_ms", "p99_ms"}}``. Target at 50 msg/s: engine p99 at
most 2x the baseline's, engine p50 under 40 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import Worker

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402 - after the path is set
    FlowdeskServer,
    chat_handshake,
    cpu_seconds,
    flowdesk_serve,
    json_line,
    load_average,
    machine,
    run_and_exit,
    ws_open,
)
from bench.roundtrip import (  # noqa: E402
    TOKEN,
    EntityWorkflow,
    Phase,
    StampingActivity,
    add_load_arguments,
    baseline_sender,
    check_load_arguments,
    load_params,
    print_sides,
    run_phase,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.client import ClientConnection


class ChatSockets:
    """The bench's visitors, one socket each; a reader per socket stamps acks, errors and replies."""

    def __init__(self, sockets: list[ClientConnection]) -> None:
        self.sockets = sockets
        self.phase: Phase | None = None
        #: by socket: the acks its messages wait for, by client message id
        self._acks: list[dict[str, asyncio.Future[None]]] = [{} for _ in sockets]
        self.replies: Counter[int] = Counter()
        #: reply frames that carry no message token (the flow's "sorry"), frames of unexpected types
        self.untokened: list[str] = []
        self.unexpected: Counter[str] = Counter()
        pairs = zip(sockets, self._acks, strict=True)
        self._readers = [asyncio.create_task(self._read(socket, acks)) for socket, acks in pairs]

    async def send(self, index: int) -> None:
        """Send message ``index`` on socket ``index % C``; return on its ``ack``, raise on its ``error`` frame."""
        client_id, socket = f"m{index}", index % len(self.sockets)
        ack = self._acks[socket][client_id] = asyncio.get_running_loop().create_future()
        frame = {"type": "message", "id": client_id, "text": f"where is my order? tok-{index}"}
        try:
            await self.sockets[socket].send(json.dumps(frame))
            await ack
        finally:
            self._acks[socket].pop(client_id, None)

    async def _read(self, socket: ClientConnection, acks: dict[str, asyncio.Future[None]]) -> None:
        try:
            async for raw in socket:
                now = time.monotonic()
                frame = json.loads(raw)
                kind = frame.get("type")
                ack = acks.get(str(frame.get("id")))
                if kind == "ack" and ack is not None and not ack.done():
                    ack.set_result(None)
                elif kind == "error" and ack is not None and not ack.done():
                    ack.set_exception(RuntimeError(f"{frame.get('code')}: {frame.get('message')}"))
                elif kind == "message" and frame.get("direction") == "out":
                    self._reply(str(frame.get("text")), now)
                elif kind not in ("ack", "typing"):
                    self.unexpected[str(kind)] += 1
        finally:
            for ack in acks.values():
                if not ack.done():
                    ack.set_exception(ConnectionError("the socket closed"))

    def _reply(self, text: str, at: float) -> None:
        match = TOKEN.search(text)
        if match is None:
            self.untokened.append(text)
            return
        index = int(match.group(1))
        self.replies[index] += 1
        if self.phase is not None:
            self.phase.deliver(index, at)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def measure(
    phase: Phase, send: Callable[[int], Awaitable[Any]], server: FlowdeskServer, args: argparse.Namespace
) -> dict[str, Any]:
    """One side's report, its server CPU per message that of the serve process with its Temporal server."""
    own, children = cpu_seconds(server.pid)
    report = await run_phase(phase, send, args)
    own_after, children_after = cpu_seconds(server.pid)
    report["server_cpu_ms_per_msg"] = round((own_after - own + children_after - children) * 1000 / phase.total, 2)
    report["temporal_cpu_ms_per_msg"] = round((children_after - children) * 1000 / phase.total, 2)
    return report


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    run_id = uuid.uuid4().hex[:8]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flowdesk-roundtrip-ws-") as tmp:
        started = time.monotonic()
        async with flowdesk_serve(Path(tmp)) as server:
            print(f"flowdesk serve ready in {time.monotonic() - started:.1f} s at {server.url} (pid {server.pid})")
            client = await Client.connect(server.temporal_address)
            stamper = StampingActivity()
            baseline_queue = f"bench-base-{run_id}"
            worker = Worker(client, task_queue=baseline_queue, workflows=[EntityWorkflow], activities=[stamper.deliver])
            async with worker:
                phase = stamper.phase = Phase("baseline")
                send = baseline_sender(client, run_id, args.conversations, baseline_queue)
                results["baseline"] = await measure(phase, send, server, args)
                stamper.phase = None
            await asyncio.sleep(0.5)

            url = server.ws_url("/ws/chat")
            sockets = await asyncio.gather(*(ws_open(url) for _ in range(args.conversations)))
            await asyncio.gather(*(chat_handshake(s) for s in sockets))
            chat = ChatSockets(list(sockets))
            try:
                phase = chat.phase = Phase("engine")
                results["engine"] = engine = await measure(phase, chat.send, server, args)
                chat.phase = None
            finally:
                await chat.close()
            engine["duplicate_replies"] = sum(n - 1 for n in chat.replies.values())
            engine["replies_without_token"] = len(chat.untokened)
            if chat.untokened or chat.unexpected:
                print(f"  replies without a token: {chat.untokened[:3]}; other frames: {dict(chat.unexpected)}")
            await asyncio.sleep(0.5)  # let the server log what the closes did
            problems = server.problems()
    return results, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "sockets, one visitor each")
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    if args.warmup * args.rate < args.conversations:
        print("note: the warm-up sends fewer messages than there are sockets: some conversations start measured")

    logging.basicConfig(level=logging.ERROR)
    load = load_average()
    results, problems = asyncio.run(run(args))
    engine, baseline = results.get("engine", {}), results.get("baseline", {})
    ratio = print_sides(
        engine,
        baseline,
        "web chat -> flowdesk serve, echo AI",
        lambda r: (
            f"{r['server_cpu_ms_per_msg']} ms in the serve process tree ({r['temporal_cpu_ms_per_msg']} ms "
            f"of it Temporal), {r['cpu_ms_per_msg']} ms in this process"
        ),
    )
    print("target at 50 msg/s: engine p99 at most 2x the baseline's, engine p50 under 40 ms")
    for line in problems:
        print(f"server log: {line}")
    if args.json:
        params = {
            **load_params(args),
            "server": "python -m engine serve, embedded Temporal dev server on SQLite",
            "baseline_server": "the serve process's embedded Temporal; baseline worker in the bench process",
            "latency_to": "reply frame on the socket (engine), local activity (baseline)",
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("roundtrip_ws", params, engine, baseline, ratio))
    # Errors are figures, not a failure; a side without a single reply is.
    return 1 if any(not r.get("count") for r in results.values()) else 0


if __name__ == "__main__":
    run_and_exit(main)
