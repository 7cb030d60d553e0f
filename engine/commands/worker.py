"""``flowdesk worker``: run conversation workflows and activities against a Temporal cluster.

The scale-out half of a distributed installation: API nodes run ``flowdesk serve``,
any number of worker nodes run this, all pointing at one cluster. Options win over
``flowdesk.yaml`` (``temporal.*``) and ``FLOWDESK_*`` variables, which win over defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.commands.temporal_options import add_temporal_arguments, tls_settings
from engine.errors import ConfigError, FlowdeskError
from engine.logs import configure_logging
from engine.runtime.connect import TLSSettings, connect
from engine.settings import Settings
from engine.settings_sections import TemporalSettings
from engine.store.db import database_url


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worker",
        help="run conversation workflows and activities against a Temporal cluster",
        description="Run a Flowdesk worker (workflows + activities only) for scale-out. Stops cleanly on Ctrl-C "
        "or SIGTERM.",
    )
    add_temporal_arguments(
        parser,
        address_help="Temporal frontend to work for (default: temporal.address from the settings; required if unset)",
    )
    parser.add_argument(
        "--task-queue",
        help=f"task queue to poll (default: temporal.task_queue, else {TemporalSettings().task_queue!r})",
    )
    parser.add_argument(
        "--database-url", metavar="URL", help="the store the API nodes use (default: database.url, else SQLite)"
    )
    parser.add_argument("--settings", metavar="FILE", help="settings file (default: ./flowdesk.yaml if present)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class WorkerOptions:
    """Where the worker connects and what it serves, after options, settings and defaults."""

    address: str
    namespace: str
    task_queue: str
    tls: TLSSettings | None
    database_url: str
    flows_dir: Path
    #: AI provider profiles (``ai_profiles``), secrets still as ``${env:NAME}``
    ai_profiles: Mapping[str, Any] = field(default_factory=dict)
    #: the settings' word lists, files resolved (``Settings.word_lists``)
    word_lists: Mapping[str, Any] = field(default_factory=dict)
    #: the settings' ``channels`` (channel plugins are configured there)
    channel_settings: Mapping[str, Any] = field(default_factory=dict)


def resolve_options(args: argparse.Namespace, settings: Settings) -> WorkerOptions:
    """Merge command-line options over settings; a ConfigError says what is missing."""
    temporal = settings.temporal
    # The option, when given, replaces the setting: its ${env:NAME} is then not needed.
    address = args.temporal_address or temporal.address
    if not address:
        raise ConfigError(
            "flowdesk worker needs a Temporal cluster: pass --temporal-address HOST:PORT or set temporal.address "
            "in flowdesk.yaml (or FLOWDESK_TEMPORAL_ADDRESS); a worker never starts an embedded server"
        )
    return WorkerOptions(
        address=address,
        namespace=args.namespace or temporal.namespace,
        task_queue=args.task_queue or temporal.task_queue,
        tls=tls_settings(args, settings),
        database_url=args.database_url or database_url(settings),
        flows_dir=settings.store.flows_dir,
        ai_profiles=settings.ai.profiles,
        word_lists=settings.word_lists(),
        channel_settings=settings.channels.kinds,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(args.settings)
        options = resolve_options(args, settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings.log.level, settings.log.format)
    try:
        return asyncio.run(_serve(options))
    except (ConfigError, FlowdeskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(options: WorkerOptions) -> int:
    # Imported here, not at the top: `flowdesk --help` loads every command module, and
    # the workflow code behind this import costs about half a second.
    from engine.pipeline.runner import Pipelines  # noqa: PLC0415
    from engine.runtime.worker import run_worker  # noqa: PLC0415
    from engine.store import Store  # noqa: PLC0415

    store = Store(options.database_url)
    if not await asyncio.to_thread(store.is_current):
        raise ConfigError(
            "the database schema is not up to date: run `flowdesk db upgrade` (or start `flowdesk serve`) first"
        )
    client = await connect(options.address, options.namespace, tls=options.tls)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            client,
            task_queue=options.task_queue,
            store=store,
            flows_dir=options.flows_dir,
            stop=stop,
            ai_profiles=options.ai_profiles,
            pipelines=Pipelines(word_lists=options.word_lists),
            channel_settings=options.channel_settings,
        )
    )

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            # First signal: stop polling and let the worker finish its current tasks.
            print(f"flowdesk worker: {signal.Signals(signum).name}, stopping...", file=sys.stderr)
            stop.set()
        else:
            # Second signal: the user will not wait; abandon running tasks (Temporal retries them elsewhere).
            task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    print(
        f"flowdesk worker: polling task queue {options.task_queue!r} on {options.address} "
        f"(namespace {options.namespace}); Ctrl-C to stop",
        file=sys.stderr,
    )
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # we were cancelled ourselves, not the worker by a second signal
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0
