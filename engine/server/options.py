"""What a node runs with, once options, settings and defaults are merged (``flowdesk serve``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.runtime.connect import TLSSettings


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    data_dir: Path
    flows_dir: Path
    database_url: str
    #: "" runs an embedded Temporal dev server
    temporal_address: str
    namespace: str
    task_queue: str
    tls: TLSSettings | None
    embedded_port: int
    #: None: the embedded server's web UI is off
    temporal_ui_port: int | None
    log_level: str
    log_format: str
    public_url: str
