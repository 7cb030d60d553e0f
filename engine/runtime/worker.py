"""The Temporal worker: conversation workflows and their activities on one task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.ai.http import CLIENTS as AI_CLIENTS
from engine.channels.http import aclose_clients as close_channel_clients
from engine.channels.registry import build_channels
from engine.channels.types import Channel
from engine.pipeline.runner import Pipelines
from engine.runtime import registry
from engine.runtime.activities import ConversationActivities
from engine.runtime.ports import MessageLog
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import TASK_QUEUE
from engine.runtime.workflow import ConversationWorkflow
from engine.secrets import SecretLookup
from engine.store import Store, StoreRevisions

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = timedelta(seconds=10)


class CallActivities(Protocol):
    """The activities that answer a conversation's AI and HTTP calls (``flowdesk.call_ai``/``call_http``)."""

    @property
    def call_ai(self) -> Callable[..., Awaitable[dict[str, Any]]]: ...

    @property
    def call_http(self) -> Callable[..., Awaitable[dict[str, Any]]]: ...


#: Pure, deterministic modules shared with workflow code instead of re-imported
#: into every workflow sandbox (the interpreter and its Jinja2/YAML dependencies).
PASSTHROUGH = ("engine", "connectors", "jinja2", "markupsafe", "yaml", "jsonschema_rs", "httpx")


def build_worker(
    client: Client,
    catalog: FlowCatalog,
    *,
    task_queue: str = TASK_QUEUE,
    channels: Mapping[str, Channel] | None = None,
    message_log: MessageLog,
    secrets: SecretLookup = os.environ.get,
    max_concurrent_activities: int = 200,
    sandboxed: bool | None = None,
    knowledge_dir: Path | None = None,
    ai_profiles: Mapping[str, Any] | None = None,
    pipelines: Pipelines | None = None,
    calls: CallActivities | None = None,
) -> Worker:
    """A worker running conversations of ``catalog``'s flows on ``task_queue``.

    Replies go out through ``channels``, by address (``webchat``, ``telegram``): what
    :func:`engine.channels.registry.build_channels` made of the settings, built once
    by the caller.

    ``sandboxed`` (default: the ``FLOWDESK_WORKFLOW_SANDBOX`` environment variable,
    else off) runs workflow code in Temporal's sandbox; see :func:`workflow_runner`.
    ``calls`` answers the AI and HTTP activities instead of the gateway and the HTTP
    client (``flowdesk test --live`` answers them from each test's mocks).
    """
    registry.register(task_queue, catalog.compiled)
    activities = ConversationActivities(
        catalog,
        channels=channels or {},
        log=message_log,
        secrets=secrets,
        knowledge_dir=knowledge_dir,
        ai_profiles=ai_profiles,
        pipelines=pipelines,
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ConversationWorkflow],
        activities=[
            activities.prepare,
            activities.record,
            activities.deliver,
            (calls or activities).call_ai,
            (calls or activities).call_http,
        ],
        workflow_runner=workflow_runner(sandboxed),
        max_concurrent_activities=max_concurrent_activities,
        # On shutdown, running activities (a reply half sent, an AI call) get this long to finish.
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )


def build_delivery_worker(
    client: Client,
    catalog: FlowCatalog,
    *,
    task_queue: str,
    channels: Mapping[str, Channel],
    message_log: MessageLog,
    pipelines: Pipelines | None = None,
) -> Worker:
    """A worker running only ``flowdesk.deliver`` for ``channels`` on ``task_queue``.

    A cluster's node runs one on its own queue for the channels it holds (web-chat
    sockets): the workflow sends those replies to the queue named in the customer's
    latest message. It is the same activity as the conversation worker's, so the
    flow's outbound pipeline runs on these replies too.
    """
    activities = ConversationActivities(catalog, channels=channels, log=message_log, pipelines=pipelines)
    return Worker(
        client,
        task_queue=task_queue,
        activities=[activities.deliver],
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )


def workflow_runner(sandboxed: bool | None = None) -> WorkflowRunner:
    """The plain runner by default; Temporal's sandbox when asked for.

    The sandbox guards workflow code against non-deterministic calls, at a price:
    it costs a third of the worker's CPU per message (measured with
    bench/roundtrip.py), enough to miss 50 msg/s on two cores. Flowdesk's workflow
    code is a thin loop over a pure interpreter whose time and ids come from
    events; the test suite runs it sandboxed (tests/conftest.py) and replays
    recorded histories, which is where a non-deterministic change gets caught.
    """
    if sandboxed is None:
        sandboxed = os.environ.get("FLOWDESK_WORKFLOW_SANDBOX", "off").lower() in ("1", "on", "true", "yes")
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def default_catalog(data_dir: Path, flows_dir: Path) -> FlowCatalog:
    """A catalog over ``<data_dir>/revisions`` with every valid flow of ``flows_dir`` live."""
    catalog = FlowCatalog(FileRevisionStore(data_dir / "revisions"))
    for problem in catalog.publish_dir([flows_dir], knowledge_dir=flows_dir):
        log.error("flow not loaded: %s", problem)
    return catalog


async def run_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    store: Store,
    flows_dir: Path,
    channels: Mapping[str, Channel] | None = None,
    stop: asyncio.Event | None = None,
    ai_profiles: Mapping[str, Any] | None = None,
    pipelines: Pipelines | None = None,
    channel_settings: Mapping[str, Any] | None = None,
) -> None:
    """Run a worker on the store's revisions until ``stop`` is set, then shut down cleanly.

    The API nodes (``flowdesk serve``) own the flows directory and publish its
    revisions to the store; this worker follows the live ones from there. Its own
    ``flows_dir`` only serves the knowledge files of offline AI providers.
    """
    catalog = FlowCatalog(StoreRevisions(store))
    await asyncio.to_thread(follow_live, catalog, store)
    worker = build_worker(
        client,
        catalog,
        task_queue=task_queue,
        # Vendor channels and plugins; the web chat is served by `flowdesk serve` nodes.
        channels={**build_channels(channel_settings), **(channels or {})},
        message_log=store,
        knowledge_dir=flows_dir,
        ai_profiles=ai_profiles,
        pipelines=pipelines,
    )
    log.info("worker on task queue %r with flows %s", task_queue, sorted(catalog.live_map()))
    stopped = stop or asyncio.Event()
    async with worker:
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), LIVE_POLL_SECONDS)
            try:
                await asyncio.to_thread(follow_live, catalog, store)
            except Exception as exc:  # the database may be away for a moment; keep working
                log.warning("could not read the live flow revisions: %s", exc)
    await AI_CLIENTS.aclose()
    await close_channel_clients()
    registry.unregister(task_queue)


#: How often a separate worker reads which revisions are live (an edit reaches it within this).
LIVE_POLL_SECONDS = 1.0


def follow_live(catalog: FlowCatalog, store: Store) -> None:
    """Make the catalog's live revisions (flows and settings) those the store says (published by the API nodes)."""
    catalog.replace_live({name: row.revision for name, row in store.live_flows().items()})
    settings = store.live_settings()
    if settings is not None:
        catalog.follow_settings(settings)
    settings = store.live_settings()
    if settings is not None:
        catalog.follow_settings(settings)
