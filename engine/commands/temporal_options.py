"""Command-line options that say which Temporal cluster to use (``serve`` and ``worker``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.runtime.connect import TLSSettings
from engine.settings import Settings


def add_temporal_arguments(parser: argparse.ArgumentParser, *, address_help: str) -> None:
    parser.add_argument("--temporal-address", metavar="HOST:PORT", help=address_help)
    parser.add_argument("--namespace", help="Temporal namespace (default: temporal.namespace, else 'default')")
    parser.add_argument("--tls-ca", metavar="FILE", help="PEM CA certificate to verify the server with (turns TLS on)")
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM client certificate, for mutual TLS (with --tls-key)")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-server-name", metavar="NAME", help="server name to verify, if not the address's host")


def tls_settings(args: argparse.Namespace, settings: Settings) -> TLSSettings | None:
    """TLS from the options, else from ``temporal.tls``; None when neither asks for TLS."""
    # Paths in flowdesk.yaml are relative to its directory, like word-list files;
    # paths on the command line are relative to where the command runs.
    base = settings.file.parent if settings.file is not None else Path()
    configured: dict[str, str] = settings.get("temporal", "tls", default={}) or {}

    def path(option: str | None, key: str) -> Path | None:
        if option:
            return Path(option)
        return base / configured[key] if configured.get(key) else None

    tls = TLSSettings(
        ca_file=path(args.tls_ca, "ca_file"),
        cert_file=path(args.tls_cert, "cert_file"),
        key_file=path(args.tls_key, "key_file"),
        server_name=args.tls_server_name or configured.get("server_name"),
    )
    return tls if tls != TLSSettings() else None
