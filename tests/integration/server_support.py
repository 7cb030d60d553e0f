"""Running a whole Flowdesk node in a test: real store, real Temporal, real HTTP and sockets.

``running_node`` starts :class:`engine.server.node.Node` (what ``flowdesk serve``
runs) in the test's event loop, against the session's Temporal dev server, on a
free port, with its own data directory, flows directory and task queue.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect

from engine.server.node import Node
from engine.server.options import ServeOptions
from engine.server.services import Services
from engine.settings import Settings
from tests.integration.runtime_support import DEADLINE, ECHO_FLOW

#: The echo flow of runtime_support, served on the web-chat channel only.
WEBCHAT_ECHO = ECHO_FLOW.replace("flow: echo\n", "flow: echo\nchannels: [webchat]\n", 1)


@dataclass
class RunningNode:
    node: Node
    data_dir: Path
    flows_dir: Path
    token: str

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/chat"

    @property
    def services(self) -> Services:
        assert self.node.services is not None
        return self.node.services

    def api(self, *, token: str | None = None) -> httpx.AsyncClient:
        """An HTTP client for the API, with this node's token unless another is given."""
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=DEADLINE)


def temporal_address(env: WorkflowEnvironment) -> str:
    return str(env.client.service_client.config.target_host)


@asynccontextmanager
async def running_node(
    env: WorkflowEnvironment,
    root: Path,
    *,
    flows: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    database_url: str | None = None,
    embedded: bool = False,
    settings_file: str | None = None,
) -> AsyncIterator[RunningNode]:
    """A node with ``flows`` (file name -> source) in its flows directory; SQLite unless ``database_url``.

    The node joins the session's Temporal server as a node of a cluster does (web
    chat replies come back through its own task queue), or with ``embedded``
    starts a Temporal server of its own and is a single node, as ``flowdesk serve``
    runs by default (its worker sends web chat replies inside the workflow task).
    ``settings_file`` is the text of a ``flowdesk.yaml`` written beside the flows and
    watched (else ``settings`` is used, with no file).
    """
    flows_dir = root / "flows"
    flows_dir.mkdir(parents=True, exist_ok=True)
    for name, source in (flows if flows is not None else {"echo.yaml": WEBCHAT_ECHO}).items():
        (flows_dir / name).write_text(source, encoding="utf-8")
    data_dir = root / "data"
    options = ServeOptions(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        flows_dir=flows_dir,
        database_url=database_url or f"sqlite:///{data_dir / 'flowdesk.db'}",
        temporal_address=None if embedded else temporal_address(env),
        namespace="default",
        task_queue=f"tq-{uuid.uuid4()}",
        tls=None,
        embedded_port=0,
        temporal_ui_port=None,
        log_level="info",
        log_format="text",
        public_url="",
    )
    if settings_file is not None:
        # A settings file the node watches (root/flowdesk.yaml), as `flowdesk serve` has.
        (root / "flowdesk.yaml").write_text(settings_file, encoding="utf-8")
        loaded = Settings.load(root / "flowdesk.yaml", environ={})
    else:
        loaded = Settings.from_mapping(dict(settings or {}), environ={})
    node = Node(options, loaded)
    async with node:
        assert node.store is not None
        token = node.store.create_token(f"test-{uuid.uuid4().hex[:8]}")
        yield RunningNode(node, data_dir, flows_dir, token)


class ChatClient:
    """A visitor's socket: frames in arrival order, with helpers to wait for kinds of frame."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: Mapping[str, Any] | str) -> None:
        await self.socket.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "id": client_id, "text": text})
        return client_id

    async def next(self, kind: str, *, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The next frame of ``kind`` (matching ``where``), reading the socket as needed."""

        def match(frame: dict[str, Any]) -> bool:
            return frame.get("type") == kind and all(frame.get(k) == v for k, v in (where or {}).items())

        for index, frame in enumerate(self.frames):
            if match(frame):
                return self.frames.pop(index)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                raw = await asyncio.wait_for(self.socket.recv(), remaining)
            except TimeoutError:
                raise AssertionError(
                    f"no {kind!r} frame {dict(where or {})} came; other frames: {self.frames}"
                ) from None
            frame: dict[str, Any] = json.loads(raw)
            if match(frame):
                return frame
            self.frames.append(frame)

    async def reply_to(self, text: str) -> dict[str, Any]:
        return await self.next("message", where={"direction": "out", "text": text})


@asynccontextmanager
async def chat(node: RunningNode, query: str = "") -> AsyncIterator[ChatClient]:
    async with connect(node.ws_url + query, open_timeout=DEADLINE) as socket:
        yield ChatClient(socket)
