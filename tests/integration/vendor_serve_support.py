"""A real ``flowdesk serve`` wired to the vendor emulators, and the operator's view of it.

:func:`serve_vendors` writes a ``flowdesk.yaml`` (telegram's default account,
WhatsApp's ``default`` and ``sales`` accounts, the API channel's ``crm`` account,
each pointing at its emulator, secrets as ``${env:NAME}``) and the flows, creates
an API token with ``flowdesk token create`` in the same data directory, starts
``python -m engine serve`` and waits for ``/readyz``. It yields a :class:`Served`:
the base URL and an API client for the transcript and the metrics, as an operator
reads them. On exit the server is stopped (its log is left for a test to read).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.net_support import free_port

REPO = Path(__file__).resolve().parents[2]
#: Long enough for a loaded 2-core machine, short enough to fail a hung test quickly.
DEADLINE = 30.0
#: Variables of a person's shell that must not leak into the node.
UNSET = ("SHOP_TOKEN", "OPENAI_API_KEY")

T = TypeVar("T")


def wait_until(check: Callable[[], T | None], what: str, *, timeout: float = DEADLINE, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last seen: {last!r})")
        time.sleep(interval)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(_LABEL.findall(match["labels"] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match["value"])
    return total


@dataclass
class Served:
    """A running ``flowdesk serve``: where it listens, its token, its log."""

    url: str
    token: str
    log: Path
    process: subprocess.Popen[bytes]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=DEADLINE)

    def webhook(self, kind: str, account: str = "") -> str:
        return f"{self.url}/webhooks/{kind}" + (f"/{account}" if account else "")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    # -- the operator's view ---------------------------------------------------------------

    def conversations(self, channel: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 500} | ({"channel": channel} if channel else {})
        with self.api() as api:
            response = api.get("/api/conversations", params=params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["conversations"]
        return found

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        with self.api() as api:
            response = api.get(f"/api/conversations/{conversation_id}/messages")
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def conversations_with(self, channel: str, text: str) -> list[str]:
        """The ids of ``channel``'s conversations whose transcript has an inbound message ``text``."""
        return [
            c["id"]
            for c in self.conversations(channel)
            if any(m["direction"] == "in" and m["text"] == text for m in self.transcript(c["id"]))
        ]

    def conversation_of(self, channel: str, text: str) -> str:
        """The one conversation of ``channel`` where the customer wrote ``text`` (waits for it)."""
        found = wait_until(lambda: self.conversations_with(channel, text), f"a {channel} conversation with {text!r}")
        assert len(found) == 1, f"{text!r} is in {len(found)} conversations: {found}"
        return found[0]

    def wait_transcript(
        self, conversation_id: str, check: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        """The transcript once ``check`` holds for it."""
        seen: list[list[dict[str, Any]]] = []

        def holds() -> list[dict[str, Any]] | None:
            messages = self.transcript(conversation_id)
            seen[:] = [messages]
            return messages if check(messages) else None

        try:
            return wait_until(holds, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; transcript: {_brief(seen[0] if seen else [])}") from None

    def metrics(self) -> str:
        with self.api() as api:
            response = api.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text


def _brief(messages: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(m["direction"], m["text"], m["status"], m["detail"]) for m in messages]


def write_root(root: Path, channels: Mapping[str, Any], flows: Mapping[str, str]) -> int:
    """``root/flowdesk.yaml`` and ``root/flows``; the server's port."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for name, source in flows.items():
        (root / "flows" / name).write_text(source, encoding="utf-8")
    port = free_port()
    settings = {
        "server": {"host": "127.0.0.1", "port": port},
        "temporal": {"embedded_port": free_port(), "ui_port": free_port()},
        "data_dir": "data",
        "flows_dir": "flows",
        "channels": dict(channels),
    }
    (root / "flowdesk.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return port


@contextmanager
def serve_vendors(
    root: Path, channels: Mapping[str, Any], flows: Mapping[str, str], secrets: Mapping[str, str]
) -> Iterator[Served]:
    """``flowdesk serve`` in ``root`` with ``channels`` and ``flows``; ``secrets`` are its environment."""
    port = write_root(root, channels, flows)
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("FLOWDESK_")}
    env.update(secrets)
    env.update(PYTHONPATH=str(REPO), FLOWDESK_WORKFLOW_SANDBOX="off")
    created = subprocess.run(
        [sys.executable, "-m", "engine", "token", "create", "e2e"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    log = root / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "engine", "serve"], cwd=root, env=env, stdout=out, stderr=out)
    served = Served(f"http://127.0.0.1:{port}", token, log, process)

    def ready() -> bool:
        assert process.poll() is None, served.log_text()[-4000:]
        try:
            return httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, "flowdesk serve to be ready", timeout=60, interval=0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
