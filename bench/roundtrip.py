"""Benchmark: message in -> reply out through ConversationWorkflow, against raw Temporal.

At the runtime level (no HTTP server): one process runs an embedded Temporal dev
server (``temporal server start-dev`` on a temporary SQLite file, as ``flowdesk
serve`` does), a client and two workers, and drives an OPEN-LOOP load: message
``i`` is sent at its planned time ``t0 + i/R`` whether or not earlier ones were
answered (one asyncio task per send), spread round-robin over C conversations.
Latency is measured from the *planned* send time, so a stalled sender or worker
shows up in the figures instead of slowing the load down (no coordinated omission).

- engine:   what a channel endpoint of ``flowdesk serve`` does with a message: log it
            in the SQLite store, then ``Conversations.send`` (update-with-start of
            ``ConversationWorkflow``, marked logged and, as web chat on a single
            node marks it, with replies delivered by this worker) running the flow
            ``listen (wait: message) -> answer (ai: echo) -> listen``
            with the real worker (``build_worker``: unsandboxed as in production,
            activities, revisions and message log in the same store); latency =
            the in-process channel receiving the echoed reply - planned
            send time (the log write is inside it). The reply text carries the message's
            unique token, which maps each delivery back to its message.
- baseline: a minimal raw-Temporal entity workflow on its own task queue, one per
            conversation, each message one update-with-start whose handler runs one
            local activity that "delivers" by taking the time; latency = that
            local activity - planned send time.

Both run in the same process against the same server, one after the other
(baseline first), each after its own warm-up at the same rate (which starts the
conversations' workflows and fills the worker caches). Prints p50/p90/p99/max,
count, errors and throughput of each and the ratio engine/baseline.

    python bench/roundtrip.py [--rate 50] [--conversations 50] [--seconds 10] [--warmup 2] [--json]

With ``--json`` the last line is one JSON object (DESIGN.md section 6):
``{"bench": "roundtrip", "params": {...}, "engine": {"p50_ms", "p99_ms", "per_s", ...},
"baseline": {...}, "ratio": {"p50_ms", "p99_ms"}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

# The workflow sandbox re-imports this module for the baseline workflow: touch no files there.
if not workflow.unsafe.in_sandbox():
    REPO = Path(__file__).resolve().parents[1]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

with workflow.unsafe.imports_passed_through():
    from bench._common import (
        ECHO_FLOW,
        json_line,
        latency_summary,
        load_average,
        machine,
        percentile,
        ratios,
        run_and_exit,
    )

CHANNEL = "bench"
#: other processes' load when the run began: the figures are only as quiet as the machine
LOAD_AT_START: float | None = None
TOKEN = re.compile(r"\btok-(\d+)\b")


# -- what both sides share: the open-loop driver ---------------------------------------------------------


@dataclass
class Phase:
    """One side's run: planned send times, sends that failed, and deliveries by message index."""

    name: str
    planned: dict[int, float] = field(default_factory=dict)
    accepted: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    delivered: dict[int, float] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    measure_from: int = 0
    total: int = 0
    #: CPU seconds over the whole phase: this process (client + workers), the Temporal server
    cpu_process: float = 0.0
    cpu_server: float = 0.0

    def deliver(self, index: int, at: float) -> None:
        self.delivered.setdefault(index, at)  # a redelivery keeps the first time

    def measured(self) -> range:
        return range(self.measure_from, self.total)

    def missing(self) -> list[int]:
        return [i for i in self.measured() if i not in self.delivered]

    def report(self, seconds: float) -> dict[str, Any]:
        ids = list(self.measured())
        latencies = [(self.delivered[i] - self.planned[i]) * 1000 for i in ids if i in self.delivered]
        accept = [(self.accepted[i] - self.planned[i]) * 1000 for i in ids if i in self.accepted]
        lag = [(self.started[i] - self.planned[i]) * 1000 for i in ids if i in self.started]
        failed = sum(1 for i in ids if i in self.errors or i not in self.delivered)
        out: dict[str, Any] = latency_summary(latencies) if latencies else {}
        out["count"] = len(latencies)
        out["errors"] = failed
        # replies per second from the first measured send to the last measured reply: below the
        # offered rate when the side cannot keep up (its queue, and latency, then grow all run long)
        ends = [self.delivered[i] for i in ids if i in self.delivered]
        span = max(seconds, max(ends) - self.planned[self.measure_from]) if ends else seconds
        out["per_s"] = round(len(latencies) / span, 2)
        out["accept_p50_ms"] = round(percentile(accept, 50), 2) if accept else None
        out["accept_p99_ms"] = round(percentile(accept, 99), 2) if accept else None
        out["send_lag_p99_ms"] = round(percentile(lag, 99), 2) if lag else None
        # CPU per message over the whole phase (warm-up and drain included): what saturates first
        out["cpu_ms_per_msg"] = round(self.cpu_process * 1000 / self.total, 2) if self.total else None
        out["server_cpu_ms_per_msg"] = round(self.cpu_server * 1000 / self.total, 2) if self.total else None
        return out


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by the processes this one started: the Temporal server."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[1] == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def drive(
    phase: Phase,
    send: Callable[[int], Awaitable[Any]],
    *,
    rate: float,
    warmup: float,
    seconds: float,
    drain: float,
) -> None:
    """Send message ``i`` at ``t0 + i/rate`` (open loop), then wait for the replies to come in."""
    n_warm = round(warmup * rate)
    phase.measure_from = n_warm
    phase.total = n_warm + round(seconds * rate)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int) -> None:
        phase.started[index] = time.monotonic()
        try:
            await send(index)
            phase.accepted[index] = time.monotonic()
        except Exception as exc:
            phase.errors[index] = f"{type(exc).__name__}: {exc}"

    cpu_process, cpu_server = time.process_time(), _children_cpu()
    t0 = time.monotonic() + 0.1
    for index in range(phase.total):
        planned = t0 + index / rate
        phase.planned[index] = planned
        delay = planned - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        pending = [i for i in range(phase.total) if i not in phase.delivered and i not in phase.errors]
        if not pending and not tasks:
            break
        await asyncio.sleep(0.02)
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    phase.cpu_process = time.process_time() - cpu_process
    phase.cpu_server = _children_cpu() - cpu_server


async def run_phase(phase: Phase, send: Callable[[int], Awaitable[Any]], args: argparse.Namespace) -> dict[str, Any]:
    """One side at the load of ``args`` (see :func:`add_load_arguments`): its report; says what went missing."""
    print(
        f"{phase.name}: {args.warmup:g} s warm-up + {args.seconds:g} s at {args.rate:g} msg/s over "
        f"{args.conversations} conversations ...",
        flush=True,
    )
    await drive(phase, send, rate=args.rate, warmup=args.warmup, seconds=args.seconds, drain=args.drain)
    report = phase.report(args.seconds)
    if phase.errors or phase.missing():
        first = next(iter(phase.errors.values()), "no reply")
        print(f"  {len(phase.errors)} send errors, {len(phase.missing())} replies missing (first: {first})")
    return report


def add_load_arguments(parser: argparse.ArgumentParser, conversations: str) -> None:
    """The open-loop load's options (and ``--json``); ``conversations`` says what they are spread over."""
    parser.add_argument("--rate", type=float, default=50, help="messages per second, open loop (default 50)")
    parser.add_argument("--conversations", type=int, default=50, help=f"{conversations} (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per side (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before, same rate (default 2)")
    parser.add_argument("--drain", type=float, default=15, help="seconds to wait for the last replies (default 15)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def check_load_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.rate <= 0 or args.conversations <= 0 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--rate, --conversations and --seconds must be positive, --warmup not negative")


def load_params(args: argparse.Namespace) -> dict[str, Any]:
    """The load's part of the JSON line's ``params``."""
    return {
        "rate": args.rate,
        "conversations": args.conversations,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "open_loop": True,
        "latency_from": "planned send time",
    }


def print_sides(
    engine: dict[str, Any],
    baseline: dict[str, Any],
    engine_is: str,
    cpu: Callable[[dict[str, Any]], str],
    baseline_is: str = "raw Temporal update + local activity",
) -> dict[str, float]:
    """A line of figures per side that ran, ``cpu`` of its report under it; the ratios engine/baseline."""
    sides = {"engine": (engine_is, engine), "baseline": (baseline_is, baseline)}
    for name, (what, r) in sides.items():
        if not r:
            continue
        print(
            f"{name:8s} {what:38s} p50 {r.get('p50_ms', 0):7.1f}  p90 {r.get('p90_ms', 0):7.1f}  "
            f"p99 {r.get('p99_ms', 0):7.1f}  max {r.get('max_ms', 0):7.1f} ms   "
            f"n={r['count']} errors={r['errors']} {r['per_s']:.1f}/s  (accepted p50 {r['accept_p50_ms']} ms, "
            f"send lag p99 {r['send_lag_p99_ms']} ms)\n"
            f"{'':47s} CPU per message: {cpu(r)}"
        )
    ratio = ratios(engine, baseline, ("p50_ms", "p99_ms"))
    print(
        f"ratio engine/baseline: p50 {ratio.get('p50_ms', float('nan')):.2f}x   "
        f"p99 {ratio.get('p99_ms', float('nan')):.2f}x"
    )
    return ratio


# -- the baseline: raw Temporal, one update plus one local activity ---------------------------------------


@workflow.defn(name="BenchEntity")
class EntityWorkflow:
    """An entity workflow that only answers updates: the least any Temporal entity design does."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update(name="message")
    async def message(self, token: str) -> str:
        await workflow.execute_local_activity("bench.deliver", token, start_to_close_timeout=timedelta(seconds=10))
        return token


class StampingActivity:
    """The baseline's local activity: "delivers" a message by noting when it ran."""

    def __init__(self) -> None:
        self.phase: Phase | None = None

    @activity.defn(name="bench.deliver")
    async def deliver(self, token: str) -> None:
        now = time.monotonic()
        match = TOKEN.search(token)
        if self.phase is not None and match:
            self.phase.deliver(int(match.group(1)), now)


def baseline_sender(
    client: Client, run_id: str, conversations: int, task_queue: str
) -> Callable[[int], Awaitable[None]]:
    """The baseline's send of message ``index``: one update-with-start of conversation ``index % conversations``."""

    async def send_baseline(index: int) -> None:
        start = WithStartWorkflowOperation(
            EntityWorkflow.run,
            id=f"base-{run_id}-{index % conversations}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        # (the SDK's overloads type an async handler's result as its coroutine: hence the assignment)
        _token = await client.execute_update_with_start_workflow(
            EntityWorkflow.message, f"tok-{index}", start_workflow_operation=start, id=f"{run_id}-b{index}"
        )

    return send_baseline


# -- the engine's outbound channel ---------------------------------------------------------------------


class StampingChannel:
    """An in-process channel (engine.channels): notes when each delivery key arrives and for which message."""

    name = CHANNEL
    capabilities: Any = None  # read only by a node (held_by_node); the bench builds its worker itself

    def __init__(self) -> None:
        self.phase: Phase | None = None
        self.by_key: dict[str, tuple[float, int | None]] = {}

    async def send(self, message: Any) -> Any:
        from engine.channels.types import Receipt  # noqa: PLC0415

        now = time.monotonic()
        match = TOKEN.search(message.text)
        index = int(match.group(1)) if match else None
        duplicate = message.key in self.by_key
        if not duplicate:
            self.by_key[message.key] = (now, index)
            if self.phase is not None and index is not None:
                self.phase.deliver(index, now)
        return Receipt("duplicate" if duplicate else "sent")


# -- the run --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def temporal_server(data_dir: Path, memory: bool) -> Any:
    """A client on a fresh dev server: the embedded one on SQLite, or the SDK's in-memory one."""
    from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig, find_binary  # noqa: PLC0415

    if memory:
        from temporalio.testing import WorkflowEnvironment  # noqa: PLC0415

        env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(find_binary()), ui=False)
        try:
            yield env.client
        finally:
            await env.shutdown()
        return
    server = EmbeddedTemporal(EmbeddedTemporalConfig(data_dir / "temporal", port=0, ui_port=None, log_level="error"))
    await server.start()
    try:
        yield await Client.connect(server.address, namespace=server.namespace)
    finally:
        await server.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from engine.message_log import RecordInput  # noqa: PLC0415
    from engine.runtime.client import Conversations  # noqa: PLC0415
    from engine.runtime.revisions import FlowCatalog  # noqa: PLC0415
    from engine.runtime.types import IN_TASK_META, InboundMessage  # noqa: PLC0415
    from engine.runtime.worker import build_worker  # noqa: PLC0415
    from engine.store import Store, StoreRevisions  # noqa: PLC0415

    run_id = uuid.uuid4().hex[:8]
    conversations = args.conversations
    results: dict[str, Any] = {}

    with tempfile.TemporaryDirectory(prefix="flowdesk-roundtrip-") as tmp:
        data = Path(tmp)
        (data / "flows").mkdir()
        (data / "flows" / "bench.yaml").write_text(ECHO_FLOW, encoding="utf-8")
        # The store flowdesk serve uses: revisions and the message log in SQLite.
        store = Store(f"sqlite:///{data / 'flowdesk.db'}")
        store.upgrade()
        catalog = FlowCatalog(StoreRevisions(store))
        problems = catalog.publish_dir([data / "flows"])
        if problems:
            raise SystemExit("the bench flow does not compile:\n" + "\n".join(problems))

        started = time.monotonic()
        async with temporal_server(data, args.memory) as client:
            print(
                f"Temporal dev server ready in {time.monotonic() - started:.1f} s "
                f"({'in memory' if args.memory else 'SQLite ' + str(data / 'temporal')})"
            )
            channel = StampingChannel()
            stamper = StampingActivity()
            engine_queue, baseline_queue = f"bench-engine-{run_id}", f"bench-base-{run_id}"
            engine_worker = build_worker(
                client,
                catalog,
                task_queue=engine_queue,
                channels={CHANNEL: channel},
                message_log=store,
            )
            baseline_worker = Worker(
                client, task_queue=baseline_queue, workflows=[EntityWorkflow], activities=[stamper.deliver]
            )
            convs = Conversations(client, catalog, task_queue=engine_queue)

            async def send_engine(index: int) -> None:
                conversation = f"{run_id}-{index % conversations}"
                message = InboundMessage(
                    id=f"{run_id}-m{index}", text=f"where is my order? tok-{index}", channel=CHANNEL
                )
                # As the server's channels do: logged first, so the workflow need not log it.
                at = datetime.now(UTC).isoformat()
                await store.write(RecordInput(conversation, "in", message.text, CHANNEL, message.id, at))
                message.meta["logged"] = True
                # ... and, like web chat on a single node, its replies go out from this worker.
                message.meta[IN_TASK_META] = True
                await convs.send(conversation, message)

            async with engine_worker, baseline_worker:
                send_baseline = baseline_sender(client, run_id, conversations, baseline_queue)
                sides = (("baseline", send_baseline, stamper), ("engine", send_engine, channel))
                for name, send, sink in [side for side in sides if args.only in (None, side[0])]:
                    phase = Phase(name)
                    sink.phase = phase
                    results[name] = await run_phase(phase, send, args)
                    sink.phase = None
                    await asyncio.sleep(0.5)  # let the last deliveries' records settle before the next phase
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, "conversations to spread them over")
    parser.add_argument("--memory", action="store_true", help="in-memory dev server instead of a SQLite file")
    parser.add_argument("--only", choices=("engine", "baseline"), help="run one side only (for profiling)")
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)

    logging.basicConfig(level=logging.ERROR)
    global LOAD_AT_START  # noqa: PLW0603 - noted once, reported with the figures
    LOAD_AT_START = load_average()
    results = asyncio.run(run(args))
    engine, baseline = results.get("engine", {}), results.get("baseline", {})
    ratio = print_sides(
        engine,
        baseline,
        "ConversationWorkflow, echo AI",
        lambda r: f"{r['cpu_ms_per_msg']} ms in this process, {r['server_cpu_ms_per_msg']} ms in the Temporal server",
    )
    if args.json:
        import temporalio  # noqa: PLC0415

        params = {
            **load_params(args),
            "server": "dev server, in memory" if args.memory else "embedded dev server, SQLite",
            "temporalio": getattr(temporalio, "__version__", None),
            "loadavg_1m_at_start": LOAD_AT_START,
            **machine(),
        }
        print(json_line("roundtrip", params, engine, baseline, ratio))
    # Errors are figures, not a failure; a side without a single reply is.
    return 1 if any(not r.get("count") for r in results.values()) else 0


if __name__ == "__main__":
    run_and_exit(main)
