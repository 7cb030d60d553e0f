"""The settings of each concern, as frozen objects built once from a validated ``flowdesk.yaml``.

:class:`~engine.settings.Settings` builds each section the first time it is read
(``settings.server``, ``settings.temporal``, ...): the data is the file's mapping
with the ``FLOWDESK_*`` overrides applied and the schema
(``schemas/settings.schema.json``) passed, so a builder only fills defaults and
converts. Every default is written once, as a field's default below.

``${env:NAME}`` values are kept as written (the ``*_ref`` fields) and resolved
when their property is read, against the process environment at that moment, as
the commands always have: a command-line option that replaces one never needs
the variable, and ``repr`` of a section never shows a secret.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

#: The account a channel's keys configure when they are written at the top (not under ``accounts:``).
DEFAULT_ACCOUNT = "default"

_ENV_REF = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")


def env_ref_name(value: object) -> str | None:
    """``NAME`` of a ``${env:NAME}`` value; None for any other value (only a whole value is a reference)."""
    match = _ENV_REF.match(value) if isinstance(value, str) else None
    return None if match is None else match.group(1)


def resolve_env_ref(value: str, environ: Mapping[str, str]) -> str:
    """``${env:NAME}`` -> the value of ``NAME``; any other string is returned unchanged.

    Only a whole value is a reference, as the settings schema defines it. Raises
    :class:`ConfigError` naming the variable when it is not set.
    """
    name = env_ref_name(value)
    if name is None:
        return value
    if name not in environ:
        raise ConfigError(f"environment variable {name} is not set (the settings refer to it as {value})")
    return environ[name]


def _resolved(ref: str) -> str:
    return resolve_env_ref(ref, os.environ) if ref else ""


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _given(section: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The keys ``section`` sets (None counts as unset): the rest keep their field defaults."""
    return {key: section[key] for key in keys if section.get(key) is not None}


def _number(section: Mapping[str, Any], key: str, where: str, kind: type[int] | type[float]) -> dict[str, Any]:
    if section.get(key) is None:
        return {}
    try:
        return {key: kind(section[key])}
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key} must be a number, not {section[key]!r}") from None


@dataclass(frozen=True)
class ServerSettings:
    """``server``: where the HTTP server listens and the URL the outside world reaches it at."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: ``server.public_url`` as written (maybe ``${env:NAME}``); "" when not set
    public_url_ref: str = ""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ServerSettings:
        section = _section(data, "server")
        given = _given(section, "host", "port")
        if section.get("public_url"):
            given["public_url_ref"] = str(section["public_url"])
        return cls(**given)

    @property
    def public_url(self) -> str:
        """The public URL, ``${env:NAME}`` resolved; "" when not set."""
        return _resolved(self.public_url_ref)


@dataclass(frozen=True)
class TLSFiles:
    """``temporal.tls``: files joined to the settings file's directory, like word-list files; None when not set."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class TemporalSettings:
    """``temporal``: the cluster conversations run on, or the embedded dev server's ports."""

    #: ``temporal.address`` as written (maybe ``${env:NAME}``); "" runs an embedded Temporal
    address_ref: str = ""
    namespace: str = "default"
    task_queue: str = "flowdesk"
    #: gRPC and web UI ports of the embedded dev server
    embedded_port: int = 7233
    ui_port: int = 8233
    tls: TLSFiles = field(default_factory=TLSFiles)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, base: Path) -> TemporalSettings:
        section = _section(data, "temporal")
        given = _given(section, "namespace", "task_queue", "embedded_port", "ui_port")
        if section.get("address"):
            given["address_ref"] = str(section["address"])
        tls = _section(section, "tls")
        # Paths in flowdesk.yaml are relative to its directory, like word-list files.
        files = {key: base / tls[key] for key in ("ca_file", "cert_file", "key_file") if tls.get(key)}
        return cls(**given, tls=TLSFiles(**files, server_name=tls.get("server_name")))

    @property
    def address(self) -> str:
        """The frontend's ``host:port``, ``${env:NAME}`` resolved; "" means: run an embedded Temporal."""
        return _resolved(self.address_ref)


@dataclass(frozen=True)
class StoreSettings:
    """Where an installation keeps its state: the database, the data directory, the flow files."""

    #: ``database.url`` as written (maybe ``${env:NAME}``); "" is SQLite under ``data_dir``
    database_url_ref: str = ""
    data_dir: Path = Path(".flowdesk")
    flows_dir: Path = Path("flows")

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StoreSettings:
        given: dict[str, Any] = {key: Path(str(data[key])) for key in ("data_dir", "flows_dir") if data.get(key)}
        url = _section(data, "database").get("url")
        if url:
            given["database_url_ref"] = str(url)
        return cls(**given)

    @property
    def database_url(self) -> str:
        """``database.url`` with ``${env:NAME}`` resolved; "" when not set (SQLite under the data directory)."""
        return _resolved(self.database_url_ref)


@dataclass(frozen=True)
class LogSettings:
    """``log``: the least severe level written, and ``text`` or ``json`` lines."""

    level: str = "info"
    format: str = "text"

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LogSettings:
        return cls(**_given(_section(data, "log"), "level", "format"))


@dataclass(frozen=True)
class WebChatSettings:
    """``channels.webchat`` and ``limits.message_max_chars``: the web-chat channel's limits and secrets."""

    #: ``identity_secret`` as written: the HMAC key a host site signs its users' ids with; "" when not used
    identity_secret_ref: str = ""
    #: ``secret`` as written: the key visitor tokens are signed with; "" keeps one in the data directory
    secret_ref: str = ""
    #: messages per second per visitor, and the burst allowed above that rate
    rate_per_second: float = 1.0
    burst: int = 5
    #: longest inbound message, in characters
    message_max_chars: int = 4000

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WebChatSettings:
        limits = _number(_section(data, "limits"), "message_max_chars", "limits", int)
        return cls.from_block(_section(_section(data, "channels"), "webchat"), **limits)

    @classmethod
    def from_block(cls, config: Mapping[str, Any], **limits: int) -> WebChatSettings:
        """From the ``channels.webchat`` block alone (what the channel's connector is given)."""
        given: dict[str, Any] = {
            **_number(config, "rate_per_second", "channels.webchat", float),
            **_number(config, "burst", "channels.webchat", int),
            **limits,
        }
        for key in ("identity_secret", "secret"):
            if config.get(key):
                given[f"{key}_ref"] = str(config[key])
        return cls(**given)

    @property
    def identity_secret(self) -> str | None:
        """The identity key, ``${env:NAME}`` resolved; None when identities are not checked."""
        return _resolved(self.identity_secret_ref) or None

    @property
    def secret(self) -> str | None:
        """The visitor-token key, ``${env:NAME}`` resolved; None when the data directory keeps one."""
        return _resolved(self.secret_ref) or None


@dataclass(frozen=True)
class ChannelsSettings:
    """``channels``: each channel kind's settings as written, for its connector, and their accounts.

    Values are as written: ``${env:NAME}`` is resolved by whoever uses it.
    """

    #: the ``channels`` mapping as written, by kind (what channel connectors are given)
    kinds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ChannelsSettings:
        channels = copy.deepcopy(dict(_section(data, "channels")))
        return cls({kind: dict(config or {}) for kind, config in channels.items()})

    def accounts(self, kind: str) -> dict[str, Mapping[str, Any]]:
        """The accounts of channel ``kind`` by name (see :func:`channel_accounts`); empty when not configured.

        Checked per kind, when asked: one channel's mistake must not keep the others from starting.
        """
        config = self.kinds.get(kind)
        return channel_accounts(kind, config) if config is not None else {}


def channel_accounts(kind: str, config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The accounts one ``channels.<kind>`` block configures, by name (the settings contract).

    The block's keys configure one account named ``default``; ``accounts: {NAME: {...}}``
    configures several, and the keys beside ``accounts`` (``enabled``, ``api_base``)
    are shared by them, an account's own keys winning.
    """
    if "accounts" not in config:
        return {DEFAULT_ACCOUNT: config}
    accounts = config["accounts"]
    if not isinstance(accounts, Mapping) or not all(a is None or isinstance(a, Mapping) for a in accounts.values()):
        raise ConfigError(
            f"channels.{kind}.accounts must map account names to their settings, like `accounts: {{sales: {{...}}}}`"
        )
    shared = {key: value for key, value in config.items() if key != "accounts"}
    return {str(name): {**shared, **(account or {})} for name, account in accounts.items()}


@dataclass(frozen=True)
class AISettings:
    """``ai_profiles``: AI provider profiles by name, secrets still written ``${env:NAME}``."""

    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AISettings:
        return cls(copy.deepcopy(dict(_section(data, "ai_profiles"))))


__all__ = [
    "DEFAULT_ACCOUNT",
    "AISettings",
    "ChannelsSettings",
    "LogSettings",
    "ServerSettings",
    "StoreSettings",
    "TLSFiles",
    "TemporalSettings",
    "WebChatSettings",
    "channel_accounts",
    "resolve_env_ref",
]
