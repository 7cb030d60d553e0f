"""`flowdesk serve` as a person runs it: one command, embedded Temporal, stop and start again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.integration.runtime_support import DEADLINE, eventually
from tests.integration.server_support import WEBCHAT_ECHO, ChatClient
from tests.net_support import free_port

REPO = Path(__file__).resolve().parents[2]


class Serve:
    """A `flowdesk serve` subprocess in ``root``; stderr goes to a file we can read while it runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        settings = {
            "data_dir": "data",
            "flows_dir": "flows",
            "server": {"host": "127.0.0.1", "port": self.port},
            "temporal": {"embedded_port": free_port(), "ui_port": free_port()},
        }
        (root / "flowdesk.yaml").write_text(json.dumps(settings), encoding="utf-8")
        self.log = root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _flowdesk(self.root, *args)

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine", "serve"], cwd=self.root, env=_env(), stdout=log, stderr=log
            )

        async def ready() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, f"serve exited ({self.process.returncode}):\n{self.output()[-4000:]}"
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, "flowdesk serve to be ready", timeout=60, interval=0.2)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def kill(self) -> None:
        """After a failure: the serve process, and its Temporal server (its own process group)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)
        pid_file = self.root / "data" / "temporal.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text(encoding="utf-8"))
            # Only the server on this test's own database: a recycled pid is left alone.
            if str(self.root / "data" / "temporal.sqlite").encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _flowdesk(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one `flowdesk` command to its end, as a person would in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        check=False,
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "FLOWDESK_WORKFLOW_SANDBOX": "off"}


async def test_serve_chats_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "echo.yaml").write_text(WEBCHAT_ECHO, encoding="utf-8")
    serve = Serve(tmp_path)
    await serve.start()
    try:
        # The banner follows readiness by a moment (it names the port the server got).
        banner = await eventually(lambda: "Ctrl-C to stop" in serve.output() and serve.output(), "the banner")
        for line in ("chat demo", f"{serve.url}/", "/schema ", "/metrics", "Temporal UI"):
            assert line in banner, banner
        # A fresh data directory has nobody to answer hand-offs: the banner says how the team gets in.
        assert "flowdesk user create EMAIL --role admin" in banner and "/api/auth/setup" in banner, banner
        async with connect(f"ws://127.0.0.1:{serve.port}/ws/chat", open_timeout=DEADLINE) as socket_:
            visitor = ChatClient(socket_)
            token = (await visitor.next("welcome"))["visitor"]
            await visitor.say("before the restart")
            await visitor.reply_to("got before the restart")
        # SIGHUP reloads the flows directory and keeps serving.
        assert serve.process is not None
        serve.process.send_signal(signal.SIGHUP)
        await eventually(lambda: "SIGHUP: reloading" in serve.output(), "the SIGHUP reload")
        code = serve.stop()
        assert code == 0, f"serve ended with {code}:\n{serve.output()[-4000:]}"
        assert "flowdesk: stopped" in serve.output()
        assert "Traceback" not in serve.output() and "Fatal Python error" not in serve.output()

        await serve.start()
        async with connect(f"ws://127.0.0.1:{serve.port}/ws/chat?visitor={token}", open_timeout=DEADLINE) as socket_:
            visitor = ChatClient(socket_)
            history = (await visitor.next("history"))["messages"]
            assert [m["text"] for m in history] == ["before the restart", "got before the restart"]
            await visitor.say("after the restart")
            await visitor.reply_to("got after the restart")
        # The same conversation went on: the workflow survived in the embedded server's SQLite file.
        created = serve.command("token", "create", "test")
        assert created.returncode == 0, created.stderr
        api_token = next(w for w in created.stdout.split() if w.startswith("fd_"))
        async with httpx.AsyncClient(base_url=serve.url, headers={"Authorization": f"Bearer {api_token}"}) as api:
            conversations = (await api.get("/api/conversations")).json()["conversations"]
            assert len(conversations) == 1 and conversations[0]["status"] == "open"
            transcript = (await api.get(f"/api/conversations/{conversations[0]['id']}/messages")).json()["messages"]
            assert len(transcript) == 4
        started = time.monotonic()
        code = serve.stop(signal.SIGINT)
        assert code == 0, f"serve ended with {code} on SIGINT:\n{serve.output()[-4000:]}"
        assert time.monotonic() - started < DEADLINE
    finally:
        serve.kill()


def test_serve_refuses_a_bad_setting_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "flowdesk.yaml").write_text("server:\n  port: 99999\n", encoding="utf-8")
    result = _flowdesk(tmp_path, "serve")
    assert result.returncode == 1
    assert "flowdesk.yaml:2:9" in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_one_clear_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "flowdesk.yaml").write_text(f"server:\n  port: {port}\ndata_dir: data\n", encoding="utf-8")
        result = _flowdesk(tmp_path, "serve")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "temporal.sqlite").exists()  # nothing else was started
