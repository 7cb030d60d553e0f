"""One Flowdesk node: the parts ``flowdesk serve`` runs, started and stopped in order.

Start: store (migrated), Temporal (embedded or external), flows (read once,
then watched), the channels (from the registry: web chat and every configured
or installed one), the conversation worker, in a cluster this node's delivery
worker, and the HTTP server with every channel's routes. Stop runs the other way round, so that no message arrives
while the workers are going away and no worker stops while Temporal still hands
it work it could finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar
from temporalio.client import Client
from temporalio.worker import Worker

from engine.ai.http import CLIENTS as AI_CLIENTS
from engine.channels.http import aclose_clients as close_channel_clients
from engine.channels.registry import build_channels
from engine.channels.types import Channel
from engine.errors import ConfigError
from engine.pipeline.runner import Pipelines
from engine.runtime import registry
from engine.runtime.client import Conversations
from engine.runtime.connect import connect
from engine.runtime.embedded import EmbeddedTemporal, EmbeddedTemporalConfig
from engine.runtime.revisions import FlowCatalog
from engine.runtime.worker import build_delivery_worker, build_worker
from engine.secrets import secret_lookup
from engine.server.app import create_app
from engine.server.channel_host import ServerChannelHost
from engine.server.demo_shop import demo_values
from engine.server.dispatcher import Dispatcher
from engine.server.http_limits import HeadDeadlineH11Protocol, websockets_protocol
from engine.server.options import ServeOptions
from engine.server.presence import Presence
from engine.server.queues import QueueDirectory
from engine.server.reload import FlowReloader
from engine.server.services import Services
from engine.server.settings_reload import SettingsReloader
from engine.settings import Settings
from engine.store import Store, StoreRevisions

log = logging.getLogger("flowdesk.node")

#: Largest WebSocket frame the server reads; message length is checked below it
#: (limits.message_max_chars) with an error frame that keeps the socket open.
WS_MAX_BYTES = 1 << 20

#: How uvicorn serves the app (bench/idle_sockets.py runs its bare baseline with the same).
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,  # `flowdesk serve` configures logging (text or JSON)
    "lifespan": "on",
    # Bounded time for every connection: a request head (or upgrade) must be complete
    # within http_limits.HEAD_TIMEOUT, and an upgrade with oversized headers is answered
    # with a 400 (the sansio WebSocket protocol leaves it unanswered): see http_limits.
    "http": HeadDeadlineH11Protocol,
    "ws": websockets_protocol(),
    "ws_max_size": WS_MAX_BYTES,
    # Chat frames are a few hundred bytes: compressing them saves little and costs
    # ~40 KB of zlib state per idle socket.
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
    "server_header": False,
}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``flowdesk serve`` orders the shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """Bind the HTTP port now; a clear ConfigError if it is taken or not allowed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pass --port (or set server.port), "
            "or stop what is using it"
        ) from None
    listener.listen(2048)
    listener.setblocking(False)
    return listener


async def _serve_http(server: uvicorn.Server, listener: socket.socket | None) -> None:
    try:
        await server.serve(sockets=[listener] if listener is not None else None)
    except SystemExit:  # uvicorn exits the process on start-up errors; here it is one part that stopped
        raise ConfigError("the HTTP server stopped while starting; its log lines above say why") from None


class Node:
    """Everything one ``flowdesk serve`` process runs; ``async with`` starts and stops it."""

    def __init__(self, options: ServeOptions, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        self.embedded: EmbeddedTemporal | None = None
        self.client: Client | None = None
        self.store: Store | None = None
        self.services: Services | None = None
        self._workers: list[Worker] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: _Server | None = None
        self._listener: socket.socket | None = None
        self.app: Litestar | None = None
        self._watch_stop = asyncio.Event()
        self.port = options.port

    async def __aenter__(self) -> Node:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        options = self.options
        # The HTTP port first: a port in use is found before anything else starts.
        self._listener = listen(options.host, options.port)
        self.port = int(self._listener.getsockname()[1])
        url = self.url
        self.store = store = Store(options.database_url)
        await asyncio.to_thread(store.upgrade)
        self.client = client = await self._temporal()
        catalog = FlowCatalog(StoreRevisions(store))
        # The settings revision first: the first conversation may start as soon as a flow is live.
        # The demo flow's shop_api is this node's demo API: the reloader adds it to every
        # reading of the file, and the node runs on what it made of the first one.
        settings_reloader = SettingsReloader(
            catalog, store, self.settings, derive=lambda settings: demo_values(settings, url)
        )
        self.settings = settings_reloader.settings
        await asyncio.to_thread(settings_reloader.publish)
        reloader = FlowReloader(catalog, store, options.flows_dir, installation=settings_reloader.installation)
        report = await asyncio.to_thread(reloader.reload)
        if report.failed:
            log.warning("%d flow file(s) did not validate; see the errors above", len(report.failed))
        # Only a cluster routes replies by node; a single node delivers them itself.
        node_queue = "" if self.embedded is not None else f"flowdesk-node-{self._node_id()}"
        conversations = Conversations(client, catalog, task_queue=options.task_queue)
        host = ServerChannelHost(
            store,
            conversations,
            data_dir=options.data_dir,
            max_message_chars=self.settings.webchat.message_max_chars,
            node_queue=node_queue,
        )
        channels = build_channels(self.settings.channels.kinds, host=host)
        self.services = services = Services(
            settings=self.settings,
            store=store,
            catalog=catalog,
            conversations=conversations,
            channels=channels,
            reloader=reloader,
            settings_reloader=settings_reloader,
            node_queue=node_queue,
            temporal_ui_url=self.embedded.ui_url if self.embedded else None,
            channel_host=host,
        )
        self._workers = self._build_workers(client, catalog, store, channels, node_queue)
        self._tasks += [asyncio.create_task(w.run(), name=f"worker {w.task_queue}") for w in self._workers]
        self._tasks.append(asyncio.create_task(reloader.watch(self._watch_stop), name="flow watcher"))
        self._tasks.append(
            asyncio.create_task(
                settings_reloader.watch(self._watch_stop, reloader.hup_settings), name="settings watcher"
            )
        )
        # Messages a previous run took from vendors but had not handed over yet: first, in order.
        resumed = await host.resume_queued()
        if resumed:
            log.info("handing over %d message(s) accepted before the last stop", resumed)
        await services.agent_hub.start(store)  # the agents' stream: tails the log, LISTENs on PostgreSQL
        hub = services.agent_hub
        host.typing_sink = lambda conversation, typing: hub.publish(
            "typing", {"conversation_id": conversation, "typing": typing}
        )
        await self._start_people(services)
        await self._start_http(services)

    async def _start_people(self, services: Services) -> None:
        """Queues, presence and the dispatcher, on the services (the agent API and socket use them)."""
        assert self.store is not None
        reloader = services.settings_reloader
        services.queues = QueueDirectory(self.store, lambda: reloader.settings)
        dispatcher = Dispatcher(self.store, services.conversations, services.agent_hub, services.queues)
        services.dispatcher = dispatcher
        services.presence = Presence(
            self.store,
            services.agent_hub,
            grace_s=lambda: reloader.settings.people.presence_grace_s,
            on_online=dispatcher.poke,
        )
        await dispatcher.start()

    def _build_workers(
        self,
        client: Client,
        catalog: FlowCatalog,
        store: Store,
        channels: dict[str, Channel],
        node_queue: str,
    ) -> list[Worker]:
        """The conversation worker and, in a cluster, this node's delivery worker.

        A single node's conversation worker holds every channel: web-chat replies go
        out inside the workflow task that made them. In a cluster, replies of the
        channels held by a node (web-chat sockets) reach the node holding the
        customer's connection through its own task queue (``reply_queue``).
        """
        options = self.options
        pipelines = Pipelines(word_lists=self.settings.word_lists())
        held = {address: c for address, c in channels.items() if c.capabilities.held_by_node} if node_queue else {}
        workers = [
            build_worker(
                client,
                catalog,
                task_queue=options.task_queue,
                channels={address: c for address, c in channels.items() if address not in held},
                message_log=store,
                knowledge_dir=options.flows_dir,
                ai_profiles=self.settings.ai.profiles,
                pipelines=pipelines,
                secrets=secret_lookup(self.settings, os.environ),
            )
        ]
        if node_queue:
            workers.append(
                build_delivery_worker(
                    client, catalog, task_queue=node_queue, channels=held, message_log=store, pipelines=pipelines
                )
            )
        return workers

    async def _temporal(self) -> Client:
        options = self.options
        if options.temporal_address:
            return await connect(options.temporal_address, options.namespace, tls=options.tls)
        self.embedded = EmbeddedTemporal(
            EmbeddedTemporalConfig(
                data_dir=options.data_dir,
                port=options.embedded_port,
                ui_port=options.temporal_ui_port,
                namespace=options.namespace,
            )
        )
        await self.embedded.start()
        return await connect(self.embedded.address, options.namespace)

    async def _start_http(self, services: Services) -> None:
        self.app = create_app(services)
        config = uvicorn.Config(self.app, host=self.options.host, port=self.options.port, **UVICORN_OPTIONS)
        self._server = server = _Server(config)
        serving = asyncio.create_task(_serve_http(server, self._listener), name="http")
        self._tasks.append(serving)
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.02)

    # -- run and stop ----------------------------------------------------------------------

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set or a part fails (then say which, and stop)."""
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({stopper, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("%s stopped: %s", task.get_name(), task.exception())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True  # stops accepting, closes sockets, lets requests finish
        self._watch_stop.set()
        if self.services is not None:
            if self.services.dispatcher is not None:
                await self.services.dispatcher.aclose()
            if self.services.presence is not None:
                await self.services.presence.aclose()
            await self.services.agent_hub.aclose()
        if self.services is not None and isinstance(self.services.channel_host, ServerChannelHost):
            await self.services.channel_host.aclose()  # what is not handed over yet stays queued
        for worker in self._workers:
            with contextlib.suppress(Exception):
                await worker.shutdown()  # running activities finish; workflow tasks go back to Temporal
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        if self.services is not None:
            # Its workers' flows, registered for workflow code: a later node (or replay) of this
            # process must not read revisions through this node's closed store.
            for worker in self._workers:
                registry.unregister(worker.task_queue, self.services.catalog.compiled)
        await AI_CLIENTS.aclose()  # the AI vendors' connections, once no activity runs
        await close_channel_clients()
        if self.embedded is not None:
            await self.embedded.stop()
        if self.store is not None:
            self.store.close()
        if self._listener is not None:
            self._listener.close()

    # -- helpers ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = self.options.host if self.options.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def banner(self) -> str:
        lines = [
            f"Flowdesk is running: {len(self.services.catalog.live_map()) if self.services else 0} flow(s) live",
            f"  chat demo     {self.url}/",
            f"  API docs      {self.url}/schema  (API calls need `flowdesk token create NAME`)",
            f"  metrics       {self.url}/metrics",
        ]
        if self.embedded is not None and self.embedded.ui_url:
            lines.append(f"  Temporal UI   {self.embedded.ui_url}")
        lines.append(f"  flows         {self.options.flows_dir.absolute()} (edits are live in about a second)")
        if self.store is not None and self.store.count_users() == 0:
            # Nobody can answer a hand-off yet: say how the team gets in (docs/agents.md).
            lines.append(
                "  people        none yet: `flowdesk user create EMAIL --role admin --password-stdin`, "
                f"or POST {self.url}/api/auth/setup from this machine"
            )
        lines.append("Ctrl-C to stop.")
        return "\n".join(lines)

    def _node_id(self) -> str:
        # Kept across restarts: replies scheduled for this node while it was down are
        # picked up when it is back, instead of waiting out their pick-up timeout.
        path = Path(self.options.data_dir) / "node-id"
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            node = uuid.uuid4().hex[:12]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(node, encoding="utf-8")
            return node
