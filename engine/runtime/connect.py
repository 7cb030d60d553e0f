"""Connecting to an external Temporal cluster (``--temporal-address``), with optional TLS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from engine.errors import ConfigError


@dataclass(frozen=True)
class TLSSettings:
    """TLS for an external cluster: PEM file paths (all optional) and the name to verify."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def to_tls_config(self) -> TLSConfig:
        """Read the files into the SDK's :class:`TLSConfig`; a missing or unreadable file is a ConfigError."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("mutual TLS needs both a client certificate (--tls-cert) and its key (--tls-key)")
        return TLSConfig(
            server_root_ca_cert=_read_pem(self.ca_file, "CA certificate (--tls-ca)"),
            client_cert=_read_pem(self.cert_file, "client certificate (--tls-cert)"),
            client_private_key=_read_pem(self.key_file, "client key (--tls-key)"),
            domain=self.server_name or None,
        )


def _read_pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


async def connect(address: str, namespace: str, *, tls: TLSSettings | None = None) -> Client:
    """A client for the cluster at ``address`` (``host:port``); unreachable is a ConfigError saying so."""
    tls_config = tls.to_tls_config() if tls is not None else None
    try:
        return await Client.connect(
            address, namespace=namespace, tls=tls_config or False, connect_timeout=timedelta(seconds=10)
        )
    except RuntimeError as exc:
        # The SDK reports a refused connection, a bad address and a TLS failure alike.
        hint = "check --temporal-address (or temporal.address)"
        hint += " and the --tls-* options" if tls is not None else "; add --tls-ca etc. if the cluster uses TLS"
        raise ConfigError(f"cannot connect to Temporal at {address} (namespace {namespace}): {exc}; {hint}") from None
