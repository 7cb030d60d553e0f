"""The Temporal worker: conversation workflows and their activities on one task queue."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
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
    sandboxed: bool | None = None,
    knowledge_dir: Path | None = None,
) -> Worker:
    """A worker running conversations of ``catalog``'s flows on ``task_queue``.

    ``sandboxed`` (default: the ``FLOWDESK_WORKFLOW_SANDBOX`` environment variable,
    else off) runs workflow code in Temporal's sandbox; see :func:`workflow_runner`.
    """
    registry.register(task_queue, catalog.compiled)
    activities = ConversationActivities(
        catalog, channels=channels or {}, log=message_log, secrets=secrets, knowledge_dir=knowledge_dir
    )
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
        workflow_runner=workflow_runner(sandboxed),
        max_concurrent_activities=max_concurrent_activities,
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
        knowledge_dir=flows_dir,
    )
    log.info("worker on task queue %r with flows %s", task_queue, [f.name for f in catalog.flows()])
    async with worker:
        await (stop or asyncio.Event()).wait()
    registry.unregister(task_queue)
