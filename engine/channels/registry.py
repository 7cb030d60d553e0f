"""Channels by name: built-ins, ``flowdesk.channels`` entry points, ``module:attr``.

A channel connector is a module with ``create(config: ChannelConfig) -> Channel``
(a class whose constructor takes the config is such a factory). One channel is
built per configured account (``../shared/CHANNELS.md``, "Settings contract"):
the keys under ``channels.<kind>`` configure the account ``default``, and
``accounts: {NAME: {...}}`` configures several. ``enabled: false`` leaves an
account out; ``${env:NAME}`` values are resolved before the connector sees them.

Built-in channels are built when configured (web chat always, on a node);
installed plugins are built always, with their settings or ``{}``. A factory
whose ``needs_host`` is true (web chat: it serves sockets) is only built where a
server runs. A channel that fails to build is logged by name with the reason and
the others still start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine.channels.host import ChannelConfig, ChannelHost
from engine.channels.types import Channel, WebhookChannel, channel_address, required_settings
from engine.errors import ConfigError, PluginError
from engine.plugins import PluginRegistry
from engine.settings_sections import DEFAULT_ACCOUNT, channel_accounts, env_ref_name, resolve_env_ref

log = logging.getLogger(__name__)


ChannelFactory = Callable[[ChannelConfig], Channel]

#: Built-in channels, one module (or package) each under connectors/channels/.
BUILTIN_CHANNELS: dict[str, str] = {
    "webchat": "connectors.channels.webchat:create",
    "telegram": "connectors.channels.telegram:create",
    "whatsapp": "connectors.channels.whatsapp:create",
    "api": "connectors.channels.api:create",
}
#: Built-ins started without any settings.
ALWAYS_ON = frozenset({"webchat"})

CHANNELS: PluginRegistry[ChannelFactory] = PluginRegistry("channel", "flowdesk.channels", BUILTIN_CHANNELS)


def register_channel(name: str) -> Callable[[ChannelFactory], ChannelFactory]:
    """Decorator: ``channels.<name>`` in the settings builds its accounts with the decorated factory."""
    return CHANNELS.register(name)


def resolve_params(params: Mapping[str, Any], environ: Mapping[str, str], *, where: str = "") -> dict[str, Any]:
    """``${env:NAME}`` references resolved, in nested blocks too (e-mail's ``imap: {...}``).

    An unset variable is a ConfigError naming the setting that refers to it (``where``
    is the block's path, ``channels.telegram``).
    """

    def resolve(value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                return resolve_env_ref(value, environ)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        if isinstance(value, Mapping):
            return {k: resolve(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return {k: resolve(v, f"{where}.{k}" if where else str(k)) for k, v in params.items()}


def build_channels(
    settings: Mapping[str, Any] | None = None,
    *,
    host: ChannelHost | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Channel]:
    """Every channel to run here, by address (``webchat``, ``telegram``, ``whatsapp:sales``)."""
    settings = settings or {}
    environ = os.environ if environ is None else environ
    kinds = {*CHANNELS.names(), *settings} - (set(CHANNELS.builtins) - ALWAYS_ON - set(settings))
    channels: dict[str, Channel] = {}
    for kind in sorted(kinds):
        try:
            factory = CHANNELS.resolve(kind)
        except PluginError as exc:
            log.error("%s", exc)
            continue
        if getattr(factory, "needs_host", False) and host is None:
            continue  # served by `flowdesk serve`, which builds it with its server
        try:
            accounts = channel_accounts(kind, settings.get(kind) or {})
        except ConfigError as exc:
            log.error("channel %r not started: %s", kind, exc)
            continue
        for account, params in sorted(accounts.items()):
            channel = _build(factory, ChannelConfig(kind, account, params, host), environ)
            if channel is not None:
                channels[channel_address(kind, account)] = channel
    return channels


def _build(factory: ChannelFactory, config: ChannelConfig, environ: Mapping[str, str]) -> Channel | None:
    """One account's channel, or None (logged) when it is off or cannot start."""
    address = config.address
    if config.params.get("enabled") is False:
        return None
    try:
        params = resolve_params(config.params, environ, where=config.settings_path)
        missing = missing_settings(factory, params)
        if missing:
            names = ", ".join(f"{config.settings_path}.{key}" for key in missing)
            raise ConfigError(f"{names} not set; its webhook is not served until it is")
        channel = factory(replace(config, params=params))
    except ConfigError as exc:
        log.error("channel %r not started: %s", address, exc)
        return None
    except Exception as exc:  # a broken plugin must not keep the others (or the node) down
        log.error("channel %r failed to start: %s: %s", address, type(exc).__name__, exc)
        return None
    if not callable(getattr(channel, "send", None)):
        log.error("channel %r has no send(message) method; not started", address)
        return None
    return channel


def missing_settings(factory: ChannelFactory, params: Mapping[str, Any]) -> list[str]:
    """The factory's required keys that ``params`` leaves unset or empty."""
    return [key for key in required_settings(factory) if params.get(key) in (None, "")]


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One configured channel account as ``flowdesk channels list`` shows it."""

    kind: str
    account: str
    #: ready | disabled | incomplete | broken
    state: str
    #: what keeps it from being served, in words (the settings to set, the error)
    problems: tuple[str, ...] = ()
    #: the vendor calls it (a webhook), so it has a webhook URL
    webhook: bool = True

    @property
    def address(self) -> str:
        return channel_address(self.kind, self.account)


def describe_accounts(settings: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> list[AccountStatus]:
    """Every account the ``channels`` settings configure, and whether it can be served as written.

    An account is built as ``flowdesk serve`` would build it (without a server:
    channels that need one are described from their settings alone), so what this
    says is what serve will do.
    """
    environ = os.environ if environ is None else environ
    statuses: list[AccountStatus] = []
    for kind in sorted(settings):
        try:
            factory = CHANNELS.resolve(kind)
            accounts = channel_accounts(kind, settings.get(kind) or {})
        except (PluginError, ConfigError) as exc:
            statuses.append(AccountStatus(kind, DEFAULT_ACCOUNT, "broken", (str(exc),)))
            continue
        for account, params in sorted(accounts.items()):
            statuses.append(_describe(factory, ChannelConfig(kind, account, params), environ))
    return statuses


def _describe(factory: ChannelFactory, config: ChannelConfig, environ: Mapping[str, str]) -> AccountStatus:
    kind, account = config.kind, config.account
    needs_host = bool(getattr(factory, "needs_host", False))
    if config.params.get("enabled") is False:
        return AccountStatus(
            kind, account, "disabled", ("turned off: set enabled: true to serve it",), webhook=not needs_host
        )
    path = config.settings_path
    refs = {key: env_ref_name(value) for key, value in config.params.items()}
    unset = [
        f"{path}.{key}: environment variable {name} is not set"
        for key, name in refs.items()
        if name is not None and name not in environ
    ]
    missing = [f"{path}.{key} is not set" for key in required_settings(factory) if key not in config.params]
    if unset or missing:
        return AccountStatus(kind, account, "incomplete", (*missing, *unset), webhook=not needs_host)
    if needs_host:
        return AccountStatus(kind, account, "ready", webhook=False)
    try:
        params = resolve_params(config.params, environ)
        empty = missing_settings(factory, params)
        if empty:
            return AccountStatus(kind, account, "incomplete", tuple(f"{path}.{key} is empty" for key in empty))
        channel = factory(replace(config, params=params))
    except ConfigError as exc:
        return AccountStatus(kind, account, "broken", (str(exc),))
    except Exception as exc:
        return AccountStatus(kind, account, "broken", (f"{type(exc).__name__}: {exc}",))
    return AccountStatus(kind, account, "ready", webhook=isinstance(channel, WebhookChannel))
