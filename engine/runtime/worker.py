"""The Temporal worker: conversation workflows and their activities on one task queue."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.runtime import registry
from engine.runtime.activities import ConversationActivities, SecretLookup
from engine.runtime.ports import JsonlMessageLog, MessageLog, OutboundChannel
from engine.runtime.revisions import FileRevisionStore, FlowCatalog
from engine.runtime.types import TASK_QUEUE
from engine.runtime.workflow import ConversationWorkflow

log = logging.getLogger(__name__)

#: Pure, deterministic modules shared with workflow code instead of re-imported
#: into every workflow sandbox (the interpreter and its Jinja2/YAML dependencies).
PASSTHROUGH = ("engine", "connectors", "jinja2", "markupsafe", "yaml", "jsonschema_rs", "httpx")


def build_worker(
    client: Client,
    catalog: FlowCatalog,
    *,
    task_queue: str = TASK_QUEUE,
    channels: Mapping[str, OutboundChannel] | None = None,
    message_log: MessageLog,
    secrets: SecretLookup = os.environ.get,
    max_concurrent_activities: int = 200,
) -> Worker:
    """A worker running conversations of ``catalog``'s flows on ``task_queue``."""
    registry.register(task_queue, catalog.compiled)
    activities = ConversationActivities(catalog, channels=channels or {}, log=message_log, secrets=secrets)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ConversationWorkflow],
        activities=[
            activities.prepare,
            activities.record,
            activities.deliver,
            activities.call_ai,
            activities.call_http,
        ],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        max_concurrent_activities=max_concurrent_activities,
    )


def default_catalog(data_dir: Path, flows_dir: Path) -> FlowCatalog:
    """A catalog over ``<data_dir>/revisions`` with every valid flow of ``flows_dir`` live."""
    catalog = FlowCatalog(FileRevisionStore(data_dir / "revisions"))
    for problem in catalog.publish_dir([flows_dir]):
        log.error("flow not loaded: %s", problem)
    return catalog


async def run_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    data_dir: Path,
    flows_dir: Path,
    channels: Mapping[str, OutboundChannel] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a worker until ``stop`` is set (or the task is cancelled), then shut down cleanly."""
    catalog = default_catalog(data_dir, flows_dir)
    worker = build_worker(
        client,
        catalog,
        task_queue=task_queue,
        channels=channels,
        message_log=JsonlMessageLog(data_dir / "messages"),
    )
    log.info("worker on task queue %r with flows %s", task_queue, [f.name for f in catalog.flows()])
    async with worker:
        await (stop or asyncio.Event()).wait()
    registry.unregister(task_queue)
