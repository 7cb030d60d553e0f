"""Benchmark: people answering hand-offs through ``flowdesk serve``, beside the web-chat round trip.

End to end, one serve process (embedded Temporal dev server, SQLite, its worker and
HTTP server on free ports of 127.0.0.1) with one flow: a visitor whose message
starts with ``agent`` is handed off to the queue ``bench``; any other message is
echoed (``ai: echo``). ``A`` agents (users made with ``flowdesk user create``, members
of the queue, capacity ``--capacity`` each) sign in, go online and keep an
``/ws/agent`` socket open.

- baseline: the web-chat round trip (bench/roundtrip_ws.py's load): message on a
            visitor socket -> echo reply frame on it, open loop at ``--rate``.
- engine:   the same rate of *agent replies*: ``POST /api/conversations/{id}/reply``
            by the agent holding the conversation -> the reply frame on the customer's
            socket. Before it, ``--conversations`` visitors ask for an agent at
            ``--handoff-rate``; each hand-off's time from the visitor's message to
            its assignment (the ``conversation`` event naming the agent on that
            agent's socket) is the ``assignment`` figure.

Latency runs from the planned send time (open loop). The target (issue 18): agent
reply -> customer p99 within 1.5x the web-chat round trip's p99 at the same rate;
by default 10 replies/s (50 agents answering every 5 s each).

    python bench/agents.py [--rate 10] [--conversations 50] [--agents 50] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402 - after the path is set
    ECHO_FLOW,
    chat_handshake,
    flowdesk_serve,
    json_line,
    latency_summary,
    load_average,
    machine,
    run_and_exit,
    ws_open,
)
from bench.roundtrip import Phase, add_load_arguments, check_load_arguments, load_params, print_sides  # noqa: E402
from bench.roundtrip_ws import ChatSockets, measure  # noqa: E402

QUEUE = "bench"
#: agents' replies per second by default (see main)
REPLY_RATE = 10.0
VISITOR = re.compile(r"agent please, visitor (\d+)")
PASSWORD = "bench-password-1234"

#: The echo flow with a way to a person: "agent ..." hands off, anything else is echoed.
AGENTS_FLOW = ECHO_FLOW.replace("flow: bench-echo", "flow: bench-agents").replace(
    "  answer:\n",
    "  route:\n"
    "    switch:\n"
    "      - if: \"message.text is matching('^agent')\"\n"
    "        goto: human\n"
    "    default: answer\n"
    "  human:\n"
    f"    handoff: {{queue: {QUEUE}, timeout: 10m}}\n"
    "    next: listen\n"
    "  answer:\n",
    1,
)


def _email(index: int) -> str:
    return f"agent{index}@bench.example"


def create_users(root: Path, count: int) -> None:
    """``flowdesk user create`` for each agent, before the server starts (same settings, same database)."""
    for index in range(count):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "engine",
                "user",
                "create",
                _email(index),
                "--role",
                "agent",
                "--name",
                f"Agent {index}",
                "--password-stdin",
                "--settings",
                str(root / "flowdesk.yaml"),
            ],
            input=PASSWORD.encode(),
            cwd=root,
            check=True,
            capture_output=True,
        )


class Agent:
    """One signed-in agent: a cookie session, its CSRF token, and an /ws/agent socket whose events it reads."""

    def __init__(self, http: httpx.AsyncClient, csrf: str, user_id: str) -> None:
        self.http = http
        self.csrf = csrf
        self.user_id = user_id
        #: conversation id -> when its assignment to this agent was seen
        self.assigned: dict[str, float] = {}
        #: conversation id -> the index of the visitor who asked in it (from the customer's message)
        self.visitors: dict[str, int] = {}
        self._reader: asyncio.Task[None] | None = None
        self.wake: Callable[[], None] = lambda: None

    @classmethod
    async def sign_in(cls, base: str, index: int) -> Agent:
        http = httpx.AsyncClient(base_url=base, timeout=30, trust_env=False)
        answer = await http.post("/api/auth/login", json={"email": _email(index), "password": PASSWORD})
        answer.raise_for_status()
        me = (await http.get("/api/auth/me")).json()
        agent = cls(http, str(me["csrf_token"]), str(me["agent_id"]))
        (await agent.post("/api/agents/me/presence", {"presence": "online"}, method="PUT")).raise_for_status()
        return agent

    async def post(self, path: str, body: dict[str, Any], *, method: str = "POST") -> httpx.Response:
        return await self.http.request(method, path, json=body, headers={"X-CSRF-Token": self.csrf})

    async def listen(self, ws_base: str) -> None:
        ticket = (await self.post("/api/auth/ticket", {})).json()["ticket"]
        socket = await ws_open(f"{ws_base}/ws/agent?ticket={ticket}")

        async def read() -> None:
            async for raw in socket:
                frame = json.loads(raw)
                data = frame.get("data") or {}
                if frame.get("kind") == "message" and (asked := VISITOR.search(str(data.get("text", "")))):
                    # The customer's hand-off message, as every member of the queue sees it: whose it is.
                    self.visitors.setdefault(str(data.get("conversation_id")), int(asked.group(1)))
                if frame.get("kind") == "conversation" and str(data.get("assigned_agent")) == self.user_id:
                    self.assigned.setdefault(str(data["id"]), time.monotonic())
                    self.wake()

        self._reader = asyncio.create_task(read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.http.aclose()


async def hand_off(visitors: ChatSockets, agents: list[Agent], rate: float) -> tuple[dict[str, Agent], list[float]]:
    """Each visitor asks for an agent (open loop at ``rate``): the agent holding each conversation, and the
    milliseconds from each visitor's message to the moment its agent's socket names them."""
    seen = asyncio.Event()
    for agent in agents:
        agent.wake = seen.set
    sent: dict[int, float] = {}
    t0 = time.monotonic() + 0.1
    for index in range(len(visitors.sockets)):
        delay = t0 + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[index] = t0 + index / rate
        frame = {"type": "message", "id": f"h{index}", "text": f"agent please, visitor {index}"}
        await visitors.sockets[index].send(json.dumps(frame))
    deadline = time.monotonic() + 60
    while sum(len(a.assigned) for a in agents) < len(visitors.sockets) and time.monotonic() < deadline:
        seen.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.wait(), 1)
    visitor_of = {c: i for agent in agents for c, i in agent.visitors.items()}
    by_conversation: dict[str, Agent] = {}
    waits: list[float] = []
    for agent in agents:
        for conversation, at in agent.assigned.items():
            by_conversation[conversation] = agent
            if conversation in visitor_of:
                waits.append((at - sent[visitor_of[conversation]]) * 1000)
    return by_conversation, waits


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flowdesk-agents-") as tmp:
        root = Path(tmp)
        settings = {
            "queues": {QUEUE: {"members": [_email(i) for i in range(args.agents)], "capacity": args.capacity}},
            "people": {"login_attempts": 1000},
        }
        async with flowdesk_serve(root, settings=settings, flow=AGENTS_FLOW) as server:
            await asyncio.to_thread(create_users, root, args.agents)
            ws_base = server.url.replace("http://", "ws://", 1)
            # The baseline: the web-chat round trip at the same rate.
            sockets = await asyncio.gather(*(ws_open(server.ws_url("/ws/chat")) for _ in range(args.conversations)))
            await asyncio.gather(*(chat_handshake(s) for s in sockets))
            chat = ChatSockets(list(sockets))
            try:
                phase = chat.phase = Phase("baseline")
                results["baseline"] = await measure(phase, chat.send, server, args)
            finally:
                chat.phase = None
                await chat.close()

            agents = await asyncio.gather(*(Agent.sign_in(server.url, i) for i in range(args.agents)))
            await asyncio.gather(*(a.listen(ws_base) for a in agents))
            sockets = await asyncio.gather(*(ws_open(server.ws_url("/ws/chat")) for _ in range(args.conversations)))
            await asyncio.gather(*(chat_handshake(s) for s in sockets))
            visitors = ChatSockets(list(sockets))
            try:
                held, waits = await hand_off(visitors, list(agents), args.handoff_rate)
                results["assignment"] = {**latency_summary(waits), "count": len(waits)} if waits else {"count": 0}
                conversations = sorted(held)
                if not conversations:
                    raise SystemExit("no hand-off was assigned: nothing to reply to")

                async def reply(index: int) -> None:
                    conversation = conversations[index % len(conversations)]
                    agent = held[conversation]
                    text = f"here is your answer tok-{index}"
                    answer = await agent.post(f"/api/conversations/{conversation}/reply", {"text": text})
                    if answer.status_code >= 300:
                        raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")

                send: Callable[[int], Awaitable[Any]] = reply
                phase = visitors.phase = Phase("engine")
                results["engine"] = await measure(phase, send, server, args)
            finally:
                visitors.phase = None
                await visitors.close()
                await asyncio.gather(*(a.close() for a in agents))
            problems = server.problems()
    return results, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "visitors (the baseline's sockets, then the hand-offs)")
    # Agents' replies at 10/s: 50 agents each answering every 5 s, a team flat out (people type);
    # --rate 50 shows where one serve process saturates.
    parser.set_defaults(rate=REPLY_RATE)
    parser.add_argument("--agents", type=int, default=50, help="agents online (default 50)")
    parser.add_argument("--capacity", type=int, default=5, help="conversations per agent at once (default 5)")
    parser.add_argument("--handoff-rate", type=float, default=10, help="hand-offs per second (default 10)")
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    logging.basicConfig(level=logging.ERROR)
    load = load_average()
    results, problems = asyncio.run(run(args))
    engine, baseline, assignment = results.get("engine", {}), results.get("baseline", {}), results.get("assignment", {})
    ratio = print_sides(
        engine,
        baseline,
        "agent reply -> customer socket",
        lambda r: f"{r['server_cpu_ms_per_msg']} ms in the serve process tree, {r['cpu_ms_per_msg']} ms here",
        baseline_is="web chat message -> echo reply",
    )
    if assignment.get("count"):
        print(
            f"assignment (visitor's message -> agent's socket names them): p50 {assignment['p50_ms']:.1f} "
            f"p99 {assignment['p99_ms']:.1f} ms over {assignment['count']} hand-offs"
        )
    print(f"target (at {args.rate:g}/s here): agent reply -> customer p99 within 1.5x the web-chat round trip's p99")
    for line in problems:
        print(f"server log: {line}")
    if args.json:
        params = {
            **load_params(args),
            "agents": args.agents,
            "capacity": args.capacity,
            "handoff_rate": args.handoff_rate,
            "server": "python -m engine serve, embedded Temporal dev server on SQLite",
            "baseline_is": "web-chat round trip (message -> echo reply frame), same server, same rate",
            "loadavg_1m_at_start": load,
            **machine(),
        }
        print(json_line("agents", params, engine, baseline, ratio, assignment=assignment))
    return 1 if any(not r.get("count") for r in (engine, baseline)) else 0


if __name__ == "__main__":
    run_and_exit(main)
