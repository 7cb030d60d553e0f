"""What ``flowdesk serve`` runs with: options over settings over defaults, checked once."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.commands.temporal_options import tls_settings
from engine.errors import ConfigError
from engine.server.options import ServeOptions
from engine.settings import Settings
from engine.store.db import database_url as stored_at


def resolve_serve_options(args: argparse.Namespace, settings: Settings) -> ServeOptions:
    server, temporal, store, log = settings.server, settings.temporal, settings.store, settings.log
    port = args.port if args.port is not None else server.port
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not between 1 and 65535 (or 0 for any free port)")
    data_dir = Path(args.data_dir) if args.data_dir else store.data_dir
    return ServeOptions(
        host=args.host or server.host,
        port=port,
        data_dir=data_dir,
        flows_dir=Path(args.flows_dir) if args.flows_dir else store.flows_dir,
        database_url=args.database_url or stored_at(settings, data_dir=data_dir),
        # The option, when given, replaces the setting: its ${env:NAME} is then not needed.
        temporal_address=args.temporal_address if args.temporal_address is not None else temporal.address,
        namespace=args.namespace or temporal.namespace,
        task_queue=temporal.task_queue,
        tls=tls_settings(args, settings),
        embedded_port=_port(args.temporal_port, temporal.embedded_port, "embedded Temporal"),
        temporal_ui_port=_port(args.temporal_ui_port, temporal.ui_port, "Temporal UI"),
        log_level=args.log_level or log.level,
        log_format=args.log_format or log.format,
        public_url=server.public_url,
    )


def _port(option: int | None, configured: int, what: str) -> int:
    """An embedded Temporal port: the option, else the setting; 0 picks any free port."""
    port = option if option is not None else configured
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} port {port} is not between 1 and 65535 (or 0 for any free port)")
    return port
