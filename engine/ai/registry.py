"""AI providers by name: ``@register_provider``, built-ins, ``flowdesk.ai`` entry points.

A provider is made by a factory that takes the provider's parameters (the
profile's settings merged with the flow's, secrets resolved) and returns an
:class:`~engine.ai.types.AIProvider`. A class whose constructor takes the
parameters is such a factory. Registering a variant takes three lines::

    @register_provider("dify_custom")
    def dify_custom(params):
        return DifyProvider({**params, "base_url": "https://dify.internal/v1"})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.ai.types import AIProvider, ProviderConfigError
from engine.errors import PluginError
from engine.plugins import PluginRegistry

ProviderFactory = Callable[[Mapping[str, Any]], AIProvider]

#: Built-in providers, one module each under connectors/ai/, imported on first use.
BUILTIN_PROVIDERS: dict[str, str] = {
    name: f"connectors.ai.{name}:create" for name in ("openai", "anthropic", "dify", "fastgpt", "coze", "faq", "echo")
}

PROVIDERS: PluginRegistry[ProviderFactory] = PluginRegistry("AI provider", "flowdesk.ai", BUILTIN_PROVIDERS)


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Decorator: ``use: <name>`` in a flow builds its provider with the decorated factory."""
    return PROVIDERS.register(name)


def build_provider(name: str, params: Mapping[str, Any]) -> AIProvider:
    """A provider instance; a plugin or configuration problem is a :class:`ProviderConfigError`."""
    try:
        factory = PROVIDERS.resolve(name)
    except PluginError as exc:
        raise ProviderConfigError(str(exc)) from None
    if not callable(factory):
        raise ProviderConfigError(f"AI provider {name!r} is not a factory (got {type(factory).__name__})")
    try:
        provider = factory(params)
    except ProviderConfigError:
        raise
    except Exception as exc:  # a plugin's bug: this provider is skipped, the chain goes on
        raise ProviderConfigError(
            f"AI provider {name!r} could not be built from its configuration: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(provider, AIProvider):
        made = type(provider).__name__
        raise ProviderConfigError(f"AI provider {name!r}: the factory returned a {made}, not a provider")
    return provider
