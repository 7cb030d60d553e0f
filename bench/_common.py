"""Helpers shared by the benchmark scripts: percentiles, latency summaries, the JSON line.

DESIGN.md section 6: every bench script takes ``--json`` and then prints one JSON
object as its last line, ``{"bench", "params", "engine", "baseline", "ratio"}``,
latencies as ``p50_ms``/``p99_ms``, rates as ``per_s``, each ratio engine/baseline
for the same key.

The benches that measure a running ``flowdesk serve`` (or a bare uvicorn app
beside it) start it here as a subprocess on free ports of 127.0.0.1 and read its
CPU and resident memory with psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

HOST = "127.0.0.1"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms`` of latencies in milliseconds, rounded to 0.01."""
    return {
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p90_ms": round(percentile(values_ms, 90), 2),
        "p99_ms": round(percentile(values_ms, 99), 2),
        "max_ms": round(max(values_ms), 2) if values_ms else math.nan,
    }


def ratios(engine: Mapping[str, Any], baseline: Mapping[str, Any], keys: Iterable[str]) -> dict[str, float]:
    """engine/baseline for each key present (and non-zero) on both sides."""
    out: dict[str, float] = {}
    for key in keys:
        e, b = engine.get(key), baseline.get(key)
        if isinstance(e, (int, float)) and isinstance(b, (int, float)) and b:
            out[key] = round(e / b, 3)
    return out


def machine() -> dict[str, Any]:
    """What the figures depend on: CPUs and Python."""
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.machine()}


def load_average() -> float:
    """The 1-minute load average, also printed: the figures are only as quiet as the machine."""
    load = round(os.getloadavg()[0], 2)
    print(f"load average (1 min) before the run: {load} on {os.cpu_count()} CPUs")
    return load


def json_line(bench: str, params: Mapping[str, Any], engine: Any, baseline: Any, ratio: Any, **extra: Any) -> str:
    """The one-line JSON result of DESIGN.md section 6; ``extra`` keys (a bench's ``targets``) after those."""
    return json.dumps(
        {"bench": bench, "params": dict(params), "engine": engine, "baseline": baseline, "ratio": ratio, **extra},
        ensure_ascii=False,
    )


def run_and_exit(main: Callable[[], int]) -> NoReturn:
    """Run a bench's ``main`` and leave through ``os._exit``: the temporalio SDK can abort Python at exit
    (sdk-python#300), so output is flushed and the interpreter's own shutdown skipped."""
    try:
        status = main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException:  # KeyboardInterrupt too: still leave through os._exit below
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# -- a server under test in its own process ---------------------------------------------------------------

#: The benches' flow: wait for a message, answer it with the echo chain (the reply text is the message's),
#: wait again. It names no channels, so it serves every one: the runtime bench's and web chat.
ECHO_FLOW = """\
flow: bench-echo
description: Echo every customer message back (bench/).
ai:
  echo:
    providers:
      - use: echo
steps:
  listen:
    wait: message
  answer:
    ai: echo
    on_error: sorry
    next: listen
  sorry:
    say: Sorry, something went wrong.
    next: listen
"""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (processes it starts inherit it); the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by process ``pid`` and by its live descendants."""
    import psutil  # noqa: PLC0415 - a test/bench dependency, not the engine's

    process = psutil.Process(pid)
    own = sum(process.cpu_times()[:2])
    children = 0.0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += sum(child.cpu_times()[:2])
    return own, children


async def rss_kb(pid: int, *, reads: int = 5, interval: float = 0.2) -> float:
    """Median of ``reads`` readings of the resident memory (KiB) of process ``pid`` alone."""
    import psutil  # noqa: PLC0415

    process = psutil.Process(pid)
    samples = []
    for index in range(reads):
        if index:
            await asyncio.sleep(interval)
        samples.append(process.memory_info().rss / 1024)
    return float(statistics.median(samples))


@dataclass
class ServerProcess:
    """A server under test: its process, base URL and log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def ws_url(self, path: str) -> str:
        return self.url.replace("http://", "ws://", 1) + path

    def problems(self, most: int = 5) -> list[str]:
        """Lines of its log that say something went wrong (errors, tracebacks), the first ``most``."""
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        marks = (" ERROR ", " CRITICAL ", "Traceback", '"level": "error"')
        return [line for line in lines if any(mark in line for mark in marks)][:most]


@contextlib.asynccontextmanager
async def server_process(
    argv: Sequence[str], *, cwd: Path, port: int, ready_path: str, timeout: float = 60
) -> AsyncIterator[ServerProcess]:
    """Run ``argv`` (output to ``cwd/server.log``, open-files limit raised) until ``GET ready_path`` is 200;
    SIGTERM at the end, then SIGKILL if it has not exited within 30 s."""
    import httpx  # noqa: PLC0415

    log = cwd / "server.log"
    raise_open_files_limit()  # the child inherits it (no preexec_fn: this process runs threads)
    with log.open("wb") as out:
        process = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess(process, f"http://{HOST}:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2, trust_env=False) as http:  # no proxy for 127.0.0.1
            while True:
                if process.poll() is not None:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                    raise SystemExit(f"{argv[0]} exited with status {process.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(server.url + ready_path)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{server.url}{ready_path} was not ready within {timeout:g} s (log: {log})")
                await asyncio.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                print(f"{argv[0]} did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
                process.kill()
                await asyncio.to_thread(process.wait)


@dataclass
class FlowdeskServer(ServerProcess):
    """``flowdesk serve`` under test; ``temporal_address`` is the gRPC address of its embedded Temporal."""

    temporal_address: str = ""


@contextlib.asynccontextmanager
async def flowdesk_serve(
    root: Path, *, settings: Mapping[str, Any] | None = None, flow: str = ECHO_FLOW
) -> AsyncIterator[FlowdeskServer]:
    """``python -m engine serve`` in ``root`` on free ports, with an embedded Temporal and ``flow``.

    ``settings`` are merged over the bench's: data and flows under ``root``, log level warning,
    and a web-chat rate limit of 100 messages a second (burst 100) per visitor.
    """
    import yaml  # noqa: PLC0415

    port, temporal_port = free_port(), free_port()
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "bench.yaml").write_text(flow, encoding="utf-8")
    config: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "flows_dir": str(root / "flows"),
        "server": {"host": HOST, "port": port},
        "temporal": {"embedded_port": temporal_port, "ui_port": free_port()},
        "log": {"level": "warning"},
        "channels": {"webchat": {"rate_per_second": 100, "burst": 100}},
        **(settings or {}),
    }
    (root / "flowdesk.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [sys.executable, "-m", "engine", "serve", "--settings", str(root / "flowdesk.yaml")]
    async with server_process(argv, cwd=root, port=port, ready_path="/readyz") as server:
        yield FlowdeskServer(server.process, server.url, server.log, temporal_address=f"{HOST}:{temporal_port}")


# -- web-chat sockets ---------------------------------------------------------------------------------------


async def ws_open(url: str, *, compression: str | None = "deflate") -> ClientConnection:
    """A client WebSocket to ``url``: no proxy, no client keep-alive pings (the server still pings)."""
    from websockets.asyncio.client import connect  # noqa: PLC0415

    return await connect(url, proxy=None, ping_interval=None, open_timeout=60, compression=compression)


async def chat_handshake(socket: ClientConnection) -> str:
    """Read a web-chat socket's first two frames, ``welcome`` then ``history``; the visitor token."""
    welcome = json.loads(await socket.recv())
    history = json.loads(await socket.recv())
    if welcome.get("type") != "welcome" or history.get("type") != "history":
        raise RuntimeError(f"expected welcome and history frames, got {welcome!r} and {history!r}")
    return str(welcome["visitor"])
