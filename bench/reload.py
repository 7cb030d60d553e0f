"""Benchmark: reload under load - edit a web-chat flow every second while messages flow.

End to end: this script starts ``python -m engine serve`` as a subprocess (its
embedded Temporal dev server on SQLite, its worker, SQLite store and HTTP server,
all on free ports of 127.0.0.1; web-chat rate limit 1000 msg/s per visitor) with
one flow file, ``flows/bench.yaml``, whose reply carries a version marker and the
message's own text::

    listen (wait: message) -> reply (say: "v<N> {{ message.text }}") -> listen

It opens C sockets on ``/ws/chat`` (one visitor each, welcome and history read),
starts every conversation with a warm-up message, then drives an OPEN-LOOP load
twice on the same sockets, message ``i`` sent at ``t0 + i/R`` on socket ``i % C``
whether or not earlier ones were answered, each message's text a unique key:

- baseline: ``--seconds`` of messages, no edits (every reply says ``v1``).
- engine:   ``--seconds`` of messages while the flow file is rewritten every
            ``--edit-every`` seconds with the next marker (v2, v3, ...), alternating
            the two ways editors save: write in place (truncate + write), and write
            a temporary file beside it then ``os.replace`` it over the original.

Per edit, "live" is the time from the write to the first reply on any socket that
carries its marker or a newer one: live as a customer sees it (the file watcher's
debounce, the reload, the next message's round trip). Per message: "lost" has no
reply after a drain of up to ``--drain`` seconds at the end (``rejected`` counts
those answered with an ``error`` frame instead of an ``ack``), "duplicated" got
more than one reply, and latency runs from the planned send time to its first
reply (p50/p99). "stale" (informative) counts replies whose marker is older than
the newest edit made more than ``--stale-after`` (1.5) seconds before their
message was sent: a conversation that had a safe point but did not move.

    python bench/reload.py [--conversations 20] [--rate 20] [--seconds 20] [--edit-every 1.0] [--keep-log F] [--json]

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "reload", "params": {...}, "engine": {"live_p50_ms", "live_max_ms", "edits",
"sent", "lost", "duplicated", "stale", "p50_ms", "p99_ms", ...}, "baseline": {"sent",
"lost", "duplicated", "p50_ms", "p99_ms", ...}, "ratio": {"p50_ms", "p99_ms"}}``:
the ratio is what reloading costs in reply latency. Lines of the server's log that
report errors are printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402 - after the path is set
    chat_handshake,
    flowdesk_serve,
    json_line,
    machine,
    percentile,
    ratios,
    run_and_exit,
    ws_open,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

#: The flow under test; ``{version}`` is the marker every reply starts with.
FLOW = """\
flow: reload-bench
description: Answer every web-chat message with the flow's version marker and the message (bench/reload.py).
channels: [webchat]
steps:
  listen:
    wait: message
  reply:
    say: "v{version} {{{{ message.text }}}}"
    next: listen
"""

#: A reply: ``v<version> <key>`` where the key is the message's own text.
REPLY = re.compile(r"^v(\d+) (\S+)$")
#: Server settings over the bench's defaults: no visitor is ever rate-limited here.
SETTINGS: dict[str, Any] = {"channels": {"webchat": {"rate_per_second": 1000, "burst": 1000}}}


def flow_source(version: int) -> str:
    return FLOW.format(version=version)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# -- what was sent and what came back -------------------------------------------------------------------


@dataclass
class Sent:
    """One message: when it was planned and sent, its ack or error, and every reply (time, version)."""

    key: str
    planned: float
    started: float | None = None
    acked: float | None = None
    error: str | None = None
    replies: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Edit:
    """One rewrite of the flow file: the version it wrote, how, and when the write was done."""

    version: int
    method: str  # "in-place" or "replace"
    at: float
    live_at: float | None = None

    @property
    def live_ms(self) -> float | None:
        return ms(self.live_at - self.at) if self.live_at is not None else None


@dataclass
class Phase:
    """One side's messages, by key."""

    name: str
    messages: dict[str, Sent] = field(default_factory=dict)


class ChatSockets:
    """The bench's visitors, one socket each; a reader per socket stamps acks, errors and replies."""

    def __init__(self, sockets: list[ClientConnection]) -> None:
        self.sockets = sockets
        self.by_key: dict[str, Sent] = {}
        #: reply frames whose text is not ``v<N> <key>`` of a message sent, and frames of unexpected types
        self.unmatched: list[str] = []
        self.unexpected: Counter[str] = Counter()
        #: version marker -> first time a reply carried it
        self.first_seen: dict[int, float] = {}
        self.closed = 0
        self._readers = [asyncio.create_task(self._read(s)) for s in sockets]

    async def send(self, socket_index: int, sent: Sent) -> None:
        self.by_key[sent.key] = sent
        sent.started = time.monotonic()
        frame = {"type": "message", "id": sent.key, "text": sent.key}
        try:
            await self.sockets[socket_index % len(self.sockets)].send(json.dumps(frame))
        except Exception as exc:
            sent.error = f"send: {type(exc).__name__}: {exc}"

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                now = time.monotonic()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message" and frame.get("direction") == "out":
                    self._reply(str(frame.get("text")), now)
                elif kind == "ack" and (sent := self.by_key.get(str(frame.get("id")))) is not None:
                    sent.acked = sent.acked or now
                elif kind == "error" and (sent := self.by_key.get(str(frame.get("id")))) is not None:
                    sent.error = f"{frame.get('code')}: {frame.get('message')}"
                elif kind not in ("typing", "ack"):
                    self.unexpected[str(kind)] += 1
        except Exception as exc:  # a socket closed by the server: its messages show up as lost
            self.unexpected[f"closed: {type(exc).__name__}"] += 1
        finally:
            self.closed += 1

    def _reply(self, text: str, at: float) -> None:
        match = REPLY.match(text)
        sent = self.by_key.get(match.group(2)) if match else None
        if match is None or sent is None:
            self.unmatched.append(text)
            return
        version = int(match.group(1))
        sent.replies.append((at, version))
        self.first_seen.setdefault(version, at)

    def unanswered(self, phases: list[Phase]) -> int:
        return sum(1 for p in phases for m in p.messages.values() if not m.replies and m.error is None)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


# -- the load and the edits -----------------------------------------------------------------------------


async def drive(chat: ChatSockets, phase: Phase, *, rate: float, count: int, t0: float) -> None:
    """Send ``count`` messages, message ``i`` at ``t0 + i/rate`` on socket ``i % C`` (open loop)."""
    tasks: set[asyncio.Task[None]] = set()
    for index in range(count):
        planned = t0 + index / rate
        delay = planned - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = phase.messages[f"{phase.name[0]}{index}"] = Sent(f"{phase.name[0]}{index}", planned)
        task = asyncio.create_task(chat.send(index, sent))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks, return_exceptions=True)


async def drain(chat: ChatSockets, phases: list[Phase], seconds: float, grace: float = 0.5) -> None:
    """Wait until every message sent has a reply (or an error), then ``grace`` more for duplicates; at most
    ``seconds`` in all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and chat.unanswered(phases):
        await asyncio.sleep(0.02)
    await asyncio.sleep(max(0.0, min(grace, deadline - time.monotonic())))


def write_flow(path: Path, version: int, method: str) -> None:
    """Save the flow file as an editor would: in place (truncate + write), or a temporary file renamed over it."""
    source = flow_source(version)
    if method == "in-place":
        with path.open("w", encoding="utf-8") as handle:
            handle.write(source)
        return
    temporary = path.with_name(f".{path.name}.{version}.tmp")  # not *.yaml: the reloader never reads it
    temporary.write_text(source, encoding="utf-8")
    temporary.replace(path)  # os.replace


async def edit_loop(path: Path, edits: list[Edit], *, every: float, seconds: float, t0: float) -> None:
    """Rewrite the flow every ``every`` seconds from ``t0`` with v2, v3, ..., alternating the save method;
    the last edit leaves at least ``max(every, 1)`` seconds of messages after it."""
    k = 1
    while k * every <= seconds - max(every, 1.0):
        delay = t0 + k * every - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        method = "in-place" if k % 2 else "replace"
        write_flow(path, k + 1, method)
        edits.append(Edit(k + 1, method, time.monotonic()))
        k += 1


# -- the figures ----------------------------------------------------------------------------------------


def summarize(phase: Phase, edits: list[Edit], stale_after: float) -> dict[str, Any]:
    """Counts and latencies of one phase's messages (after the final drain)."""
    messages = list(phase.messages.values())
    latencies = [(m.replies[0][0] - m.planned) * 1000 for m in messages if m.replies]
    accepts = [(m.acked - m.planned) * 1000 for m in messages if m.acked is not None]
    stale = 0
    for m in messages:
        started = m.started if m.started is not None else m.planned
        due = max((e.version for e in edits if e.at <= started - stale_after), default=1)
        stale += sum(1 for _at, version in m.replies if version < due)
    out: dict[str, Any] = {
        "sent": len(messages),
        "replies": sum(len(m.replies) for m in messages),
        "lost": sum(1 for m in messages if not m.replies),
        "rejected": sum(1 for m in messages if m.error is not None and not m.replies),
        "unacked": sum(1 for m in messages if m.acked is None and m.error is None),
        "duplicated": sum(1 for m in messages if len(m.replies) > 1),
        "stale": stale,
        "p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "accept_p50_ms": round(percentile(accepts, 50), 2) if accepts else None,
    }
    return out


def live_summary(edits: list[Edit], first_seen: dict[int, float]) -> dict[str, Any]:
    """Per edit, the first reply carrying its marker or a newer one; p50/max over edits, and by save method."""
    for edit in edits:
        seen = [at for version, at in first_seen.items() if version >= edit.version and at >= edit.at]
        edit.live_at = min(seen) if seen else None
    lives = [e.live_ms for e in edits if e.live_ms is not None]
    out: dict[str, Any] = {
        "live_p50_ms": round(percentile(lives, 50), 2) if lives else None,
        "live_max_ms": max(lives) if lives else None,
        "edits": len(edits),
        "never_live": sum(1 for e in edits if e.live_at is None),
    }
    for method in ("in-place", "replace"):
        some = [e.live_ms for e in edits if e.method == method and e.live_ms is not None]
        out[f"live_{method.replace('-', '')}_p50_ms"] = round(percentile(some, 50), 2) if some else None
    return out


# -- the run --------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Edit], list[str]]:
    results: dict[str, Any] = {}
    edits: list[Edit] = []
    with tempfile.TemporaryDirectory(prefix="flowdesk-reload-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        async with flowdesk_serve(root, settings=SETTINGS, flow=flow_source(1)) as server:
            print(f"flowdesk serve ready in {time.monotonic() - started:.1f} s at {server.url} (pid {server.pid})")
            flow_file = root / "flows" / "bench.yaml"
            url = server.ws_url("/ws/chat")
            sockets = list(await asyncio.gather(*(ws_open(url) for _ in range(args.conversations))))
            await asyncio.gather(*(chat_handshake(s) for s in sockets))
            chat = ChatSockets(sockets)
            try:
                # Warm-up: every conversation started (its workflow's first task), caches filled.
                warm = Phase("warmup")
                count = max(args.conversations, round(args.warmup * args.rate))
                print(f"warm-up: {count} messages at {args.rate:g} msg/s ...", flush=True)
                await drive(chat, warm, rate=args.rate, count=count, t0=time.monotonic() + 0.05)
                await drain(chat, [warm], args.drain)

                count = round(args.seconds * args.rate)
                base = Phase("baseline")
                print(f"baseline: {args.seconds:g} s at {args.rate:g} msg/s, no edits ...", flush=True)
                await drive(chat, base, rate=args.rate, count=count, t0=time.monotonic() + 0.05)
                await drain(chat, [base], args.drain)

                engine = Phase("engine")
                print(
                    f"engine: {args.seconds:g} s at {args.rate:g} msg/s, the flow rewritten every "
                    f"{args.edit_every:g} s ...",
                    flush=True,
                )
                t0 = time.monotonic() + 0.05
                await asyncio.gather(
                    drive(chat, engine, rate=args.rate, count=count, t0=t0),
                    edit_loop(flow_file, edits, every=args.edit_every, seconds=args.seconds, t0=t0),
                )
                await drain(chat, [warm, base, engine], args.drain, grace=1.0)
            finally:
                await chat.close()
            results["baseline"] = summarize(base, [], args.stale_after)
            results["engine"] = {
                **live_summary(edits, chat.first_seen),
                **summarize(engine, edits, args.stale_after),
            }
            results["warmup"] = summarize(warm, [], args.stale_after)
            if chat.unmatched or chat.unexpected:
                unmatched = f"{chat.unmatched[:3]} ({len(chat.unmatched)})"
                print(f"  unmatched replies: {unmatched}; other frames: {dict(chat.unexpected)}")
            await asyncio.sleep(0.5)  # let the server log what the closes did
            problems = server.problems(most=1000)
            if args.keep_log:
                shutil.copyfile(server.log, args.keep_log)
    return results, edits, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=20, help="sockets, one visitor each (default 20)")
    parser.add_argument("--rate", type=float, default=20, help="messages per second, open loop (default 20)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of messages per side (default 20)")
    parser.add_argument("--edit-every", type=float, default=1.0, help="seconds between edits (default 1.0)")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up seconds, at least a message a socket")
    parser.add_argument("--drain", type=float, default=5, help="most seconds to wait for the last replies (default 5)")
    parser.add_argument(
        "--stale-after", type=float, default=1.5, help="an edit older than this counts for `stale` (default 1.5)"
    )
    parser.add_argument("--keep-log", type=Path, help="copy the server's log to this file before it is removed")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.conversations <= 0 or args.seconds <= 0 or args.edit_every <= 0 or args.drain < 0:
        parser.error("--rate, --conversations, --seconds and --edit-every must be positive, --drain not negative")
    if args.seconds < args.edit_every + 1:
        print("note: --seconds leaves no room for an edit: the engine side makes none")

    logging.basicConfig(level=logging.ERROR)
    load = round(os.getloadavg()[0], 2)
    print(f"load average (1 min) before the run: {load} on {os.cpu_count()} CPUs")
    results, edits, problems = asyncio.run(run(args))
    engine, baseline, warm = results["engine"], results["baseline"], results["warmup"]

    for edit in edits:
        live = f"{edit.live_ms:8.1f} ms" if edit.live_ms is not None else "   never"
        print(f"  edit v{edit.version:<3d} {edit.method:8s} live after {live}")
    print(
        f"edits    {engine['edits']} ({engine['never_live']} never seen live): live p50 {engine['live_p50_ms']} ms, "
        f"max {engine['live_max_ms']} ms (in place p50 {engine['live_inplace_p50_ms']}, "
        f"replace p50 {engine['live_replace_p50_ms']})"
    )
    for name, r in (("engine", engine), ("baseline", baseline), ("warm-up", warm)):
        print(
            f"{name:8s} sent {r['sent']:5d}  replies {r['replies']:5d}  lost {r['lost']} (rejected {r['rejected']}, "
            f"unacked {r['unacked']})  duplicated {r['duplicated']}  stale {r['stale']}   "
            f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms"
        )
    ratio = ratios(engine, baseline, ("p50_ms", "p99_ms"))
    print(
        f"ratio with edits/without: p50 {ratio.get('p50_ms', float('nan')):.2f}x   "
        f"p99 {ratio.get('p99_ms', float('nan')):.2f}x"
    )
    print(f"server log: {len(problems)} error lines")
    for line in problems[:10]:
        print(f"server log: {line}")
    if args.json:
        params = {
            "conversations": args.conversations,
            "rate": args.rate,
            "seconds": args.seconds,
            "edit_every": args.edit_every,
            "warmup": args.warmup,
            "drain": args.drain,
            "stale_after": args.stale_after,
            "server": "python -m engine serve, embedded Temporal dev server on SQLite",
            "edits": "alternating write in place / temporary file + os.replace",
            "live": "edit written -> first reply carrying its marker (or newer)",
            "open_loop": True,
            "latency_from": "planned send time",
            "latency_to": "first reply frame on the socket",
            "server_log_errors": len(problems),
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("reload", params, engine, baseline, ratio))
    # Losses and duplicates are figures, not a failure; a side without a single reply is.
    return 1 if not engine["replies"] or not baseline["replies"] else 0


if __name__ == "__main__":
    run_and_exit(main)
