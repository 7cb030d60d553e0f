"""``flowdesk serve``: everything in one process — Temporal, worker, store, server, watcher.

On the embedded default it starts a Temporal dev server (SQLite file in the data
directory), migrates the SQLite store, loads the flows directory and watches it,
runs the conversation worker and this node's web-chat delivery worker, and
serves HTTP and WebSockets. Ctrl-C or SIGTERM stops it in order: the HTTP server
first (no new messages), then the watcher, the workers (running activities
finish), Temporal and the store. A message that was acknowledged is in
Temporal's history already, so stopping loses nothing, and starting again
resumes every open conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from engine.commands.serve_options import resolve_serve_options
from engine.commands.temporal_options import add_temporal_arguments
from engine.errors import ConfigError, FlowdeskError
from engine.logs import configure_logging
from engine.server.options import ServeOptions
from engine.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run Flowdesk: server, worker, store and (by default) an embedded Temporal",
        description="Run everything in one process. Without --temporal-address an embedded Temporal dev server "
        "keeps its data under the data directory. Stops cleanly on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--settings", metavar="FILE", help="settings file (default: ./flowdesk.yaml if present)")
    parser.add_argument("--host", help="interface to listen on (default: server.host, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default: server.port, else 8000)")
    parser.add_argument(
        "--temporal-port",
        type=int,
        metavar="PORT",
        help="gRPC port of the embedded Temporal (default: temporal.embedded_port, else 7233)",
    )
    parser.add_argument(
        "--temporal-ui-port",
        type=int,
        metavar="PORT",
        help="web UI port of the embedded Temporal (default: temporal.ui_port, else 8233)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="local state (default: data_dir, else .flowdesk)")
    parser.add_argument("--flows-dir", metavar="DIR", help="flows to run and watch (default: flows_dir, else flows)")
    parser.add_argument("--database-url", metavar="URL", help="store (default: database.url, else SQLite in DATA_DIR)")
    add_temporal_arguments(
        parser, address_help="external Temporal frontend (default: temporal.address; unset: run an embedded server)"
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default: log.level, else info"
    )
    parser.add_argument("--log-format", choices=["text", "json"], help="default: log.format, else text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(args.settings)
        options = resolve_serve_options(args, settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    configure_logging(options.log_level, options.log_format)
    try:
        return asyncio.run(_serve(options, settings))
    except (ConfigError, FlowdeskError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(options: ServeOptions, settings: Settings) -> int:
    # Imported here: `flowdesk --help` loads every command module, and this pulls in
    # Temporal, Litestar and SQLAlchemy.
    from engine.server.node import Node  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            print(f"\nflowdesk: {signal.Signals(signum).name}, shutting down...", file=sys.stderr)
            stop.set()
        else:
            print("flowdesk: stopping now (second signal)", file=sys.stderr)
            sys.stderr.flush()
            os._exit(130)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with Node(options, settings) as node:
            print(node.banner(), file=sys.stderr, flush=True)
            await node.serve_until(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("flowdesk: stopped", file=sys.stderr)
    return 0
