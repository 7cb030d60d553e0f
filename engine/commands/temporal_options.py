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
    # Paths on the command line are relative to where the command runs; the settings'
    # are already joined to flowdesk.yaml's directory (TemporalSettings.tls).
    configured = settings.temporal.tls
    tls = TLSSettings(
        ca_file=Path(args.tls_ca) if args.tls_ca else configured.ca_file,
        cert_file=Path(args.tls_cert) if args.tls_cert else configured.cert_file,
        key_file=Path(args.tls_key) if args.tls_key else configured.key_file,
        server_name=args.tls_server_name or configured.server_name,
    )
    return tls if tls != TLSSettings() else None
