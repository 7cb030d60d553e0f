"""What ``flowdesk serve`` runs with: options over settings over defaults, checked once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.commands.temporal_options import tls_settings
from engine.errors import ConfigError
from engine.server.options import ServeOptions
from engine.settings import Settings, resolve_env_ref
from engine.store.db import database_url as stored_at

DEFAULT_PORT = 8000
DEFAULT_TASK_QUEUE = "flowdesk"


def resolve_serve_options(args: argparse.Namespace, settings: Settings) -> ServeOptions:
    host = args.host or settings.get("server", "host", default="127.0.0.1")
    port = args.port if args.port is not None else int(settings.get("server", "port", default=DEFAULT_PORT))
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not between 1 and 65535 (or 0 for any free port)")
    data_dir = Path(args.data_dir or settings.get("data_dir", default=".flowdesk"))
    database_url = args.database_url or stored_at(settings, data_dir=data_dir)
    address = args.temporal_address
    if address is None:
        address = resolve_env_ref(settings.get("temporal", "address", default="") or "", os.environ)
    public = settings.get("server", "public_url", default="") or ""
    return ServeOptions(
        host=host,
        port=port,
        data_dir=data_dir,
        flows_dir=Path(args.flows_dir or settings.get("flows_dir", default="flows")),
        database_url=database_url,
        temporal_address=address,
        namespace=args.namespace or settings.get("temporal", "namespace", default="default"),
        task_queue=settings.get("temporal", "task_queue", default=DEFAULT_TASK_QUEUE),
        tls=tls_settings(args, settings),
        embedded_port=_port(
            args.temporal_port, settings.get("temporal", "embedded_port", default=7233), "embedded Temporal"
        ),
        temporal_ui_port=_port(args.temporal_ui_port, settings.get("temporal", "ui_port", default=8233), "Temporal UI"),
        log_level=args.log_level or settings.get("log", "level", default="info"),
        log_format=args.log_format or settings.get("log", "format", default="text"),
        public_url=resolve_env_ref(public, os.environ) if public else "",
    )


def _port(option: int | None, configured: int, what: str) -> int:
    """An embedded Temporal port: the option, else the setting; 0 picks any free port."""
    port = option if option is not None else int(configured)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} port {port} is not between 1 and 65535 (or 0 for any free port)")
    return port
