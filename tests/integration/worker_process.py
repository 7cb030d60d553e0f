"""A conversation worker in a process of its own, for tests that kill it with ``kill -9``.

    python -m tests.integration.worker_process ADDRESS NAMESPACE TASK_QUEUE DATA_DIR FLOWS_DIR DELIVERIES \\
        [--slow-ai SECONDS] [--slow-delivery SECONDS]

It runs ``engine.runtime.worker.build_worker`` for the flows of ``FLOWS_DIR`` (revisions
and the message log under ``DATA_DIR``, as ``flowdesk worker`` keeps them), delivers
replies by appending JSON lines ``{"key", "text", "pid"}`` to ``DELIVERIES``, prints
``ready`` once it polls, and stops cleanly on SIGTERM.

``DELIVERIES`` is the channel: like a real one with idempotency keys, it remembers
every key it has sent (across processes, since it reads the file at start) and
does not send a key twice. A chain whose providers are all the import reference
``tests.integration.worker_process:slow_echo`` (:data:`SLOW_PROVIDER`, the form the
flow language takes for plugin providers) is answered by :class:`SlowAIActivities`:
an echo that takes ``--slow-ai`` seconds, long enough to kill the worker in the
middle of it. ``--slow-delivery`` keeps the channel's call open that long after
the message is out: a worker killed then has sent a reply whose delivery it has
not finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client

from engine.ai.gateway import AIGateway
from engine.channels.types import Capabilities, OutboundMessage, Receipt
from engine.flow.events import AIFailed, AIResult, CallAI
from engine.flow.model import CompiledFlow
from engine.runtime import worker as runtime_worker
from engine.runtime.activities import ConversationActivities
from engine.runtime.ports import JsonlMessageLog

#: the channel name test flows' conversations use
CHANNEL = "test"
#: ``use:`` of the slow provider in a flow's AI chain
SLOW_PROVIDER = "tests.integration.worker_process:slow_echo"


async def slow_echo(text: str, delay: float) -> str:
    """The slow provider: the customer's text back, after ``delay`` seconds."""
    await asyncio.sleep(delay)
    return text


class FileChannel:
    """Appends each message to a JSONL file; a key already in the file is not sent again."""

    name = CHANNEL
    capabilities = Capabilities()

    def __init__(self, path: Path, linger: float = 0.0) -> None:
        self.path = path
        self.linger = linger
        self.keys: set[str] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.keys.add(json.loads(line)["key"])

    async def send(self, message: OutboundMessage) -> Receipt:
        if message.key in self.keys:
            return Receipt("duplicate")
        line = json.dumps({"key": message.key, "text": message.text, "pid": os.getpid()}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.keys.add(message.key)
        await asyncio.sleep(self.linger)
        return Receipt("sent")


class SlowGateway:
    """The AI gateway, with chains of the slow provider answered by :func:`slow_echo` after ``delay`` seconds."""

    def __init__(self, gateway: AIGateway, delay: float) -> None:
        self.gateway = gateway
        self.delay = delay

    async def answer(
        self, call: CallAI, flow: CompiledFlow | None, at: str, *, conversation_id: str = ""
    ) -> AIResult | AIFailed:
        chain = flow.chains.get(call.chain) if flow is not None else None
        if chain is None or any(p.use != SLOW_PROVIDER for p in chain.providers):
            return await self.gateway.answer(call, flow, at, conversation_id=conversation_id)
        text = await slow_echo(call.text, self.delay)
        return AIResult(call.call_id, text, at, confidence=1.0, provider="slow_echo")


class SlowAIActivities(ConversationActivities):
    """The worker's activities, with the slow provider behind the real ``call_ai`` (which heartbeats)."""

    delay = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ai = SlowGateway(self.ai, self.delay)  # type: ignore[assignment]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.worker_process", description=__doc__)
    parser.add_argument("address", help="Temporal frontend, host:port")
    parser.add_argument("namespace")
    parser.add_argument("task_queue")
    parser.add_argument("data_dir", type=Path, help="revisions and message log")
    parser.add_argument("flows_dir", type=Path)
    parser.add_argument("deliveries", type=Path, help="JSONL file the channel appends replies to")
    parser.add_argument("--slow-ai", type=float, default=0.0, metavar="SECONDS", help="delay of `use: slow` chains")
    parser.add_argument(
        "--slow-delivery", type=float, default=0.0, metavar="SECONDS", help="time a send takes after it is out"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    client = await Client.connect(args.address, namespace=args.namespace)
    catalog = runtime_worker.default_catalog(args.data_dir, args.flows_dir)
    SlowAIActivities.delay = args.slow_ai
    # build_worker makes its activities from this name; swapping the class keeps
    # everything else (workflows, sandbox, the other activities) exactly as shipped.
    runtime_worker.ConversationActivities = SlowAIActivities  # type: ignore[attr-defined]
    worker = runtime_worker.build_worker(
        client,
        catalog,
        task_queue=args.task_queue,
        channels={CHANNEL: FileChannel(args.deliveries, args.slow_delivery)},
        message_log=JsonlMessageLog(args.data_dir / "messages"),
        secrets=lambda name: None,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def main(argv: list[str]) -> None:
    status = 0
    try:
        asyncio.run(serve(parse(argv)))
    except SystemExit as exc:  # --help, or bad arguments
        status = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:  # report, then leave without the SDK's exit-time abort
        print(f"worker failed: {exc!r}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
