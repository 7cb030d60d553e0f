"""Channels that plugins provide: the ``flowdesk.channels`` entry-point group.

A channel plugin is a class (or factory) called with its settings
(``channels.<name>`` in flowdesk.yaml, ``{}`` when absent) that returns an
:class:`~engine.runtime.ports.OutboundChannel`: a ``name`` and an async
``send(DeliverInput) -> Delivered``. Workers load every installed one, so a
conversation whose replies go to that channel is delivered through it. A
plugin that fails to load is logged by name with its exception; the others
still load. ``enabled: false`` in its settings leaves it out; ``${env:NAME}``
values are resolved before the plugin sees them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import ConfigError, PluginError
from engine.plugins import PluginRegistry
from engine.runtime.ports import OutboundChannel
from engine.settings import resolve_env_ref

log = logging.getLogger(__name__)

ChannelFactory = Callable[[Mapping[str, Any]], OutboundChannel]

#: Built-in channels are wired by the server itself; this registry holds plugins.
CHANNELS: PluginRegistry[ChannelFactory] = PluginRegistry("channel", "flowdesk.channels", {})


def plugin_channels(settings: Mapping[str, Any] | None = None) -> dict[str, OutboundChannel]:
    """Every installed channel plugin, built with its settings, by its name."""
    settings = settings or {}
    channels: dict[str, OutboundChannel] = {}
    for name in sorted(CHANNELS.names()):
        config = dict(settings.get(name) or {})
        if config.get("enabled") is False:
            continue
        try:
            # Tokens are written ${env:NAME} in the settings; the plugin gets the values.
            config = {k: resolve_env_ref(v, os.environ) if isinstance(v, str) else v for k, v in config.items()}
            channel = CHANNELS.resolve(name)(config)
        except ConfigError as exc:
            log.error("channel %r not started: %s", name, exc)
            continue
        except PluginError as exc:
            log.error("%s", exc)
            continue
        except Exception as exc:  # a broken plugin must not keep the others (or the worker) down
            log.error("channel %r failed to start: %s: %s", name, type(exc).__name__, exc)
            continue
        if not callable(getattr(channel, "send", None)):
            log.error("channel %r has no send(message) method; not loaded", name)
            continue
        channels[name] = channel
    return channels
