"""Processors by name: built-ins, ``flowdesk.processors`` entry points, ``module:Class``.

A processor is made by calling what its name resolves to with the stage's config
(everything but ``on_error``): a class taking the config mapping, or a factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import PluginError
from engine.pipeline.types import Processor
from engine.plugins import PluginRegistry

ProcessorFactory = Callable[[Mapping[str, Any]], Processor]

BUILTIN_PROCESSORS: dict[str, str] = {
    "normalize": "engine.pipeline.normalize:Normalize",
    "sensitive_words": "engine.pipeline.sensitive_words:SensitiveWords",
    "pii_redact": "engine.pipeline.pii:PiiRedact",
    "rate_limit": "engine.pipeline.rate_limit:RateLimit",
}

PROCESSORS: PluginRegistry[ProcessorFactory] = PluginRegistry("processor", "flowdesk.processors", BUILTIN_PROCESSORS)


def register_processor(name: str) -> Callable[[ProcessorFactory], ProcessorFactory]:
    """Decorator: a stage named ``name`` builds its processor with the decorated class or factory."""
    return PROCESSORS.register(name)


def build_processor(name: str, config: Mapping[str, Any]) -> Processor:
    """A processor instance; :class:`PluginError` names the processor and what went wrong."""
    factory = PROCESSORS.resolve(name)
    settings = {k: v for k, v in config.items() if k != "on_error"}
    try:
        processor = factory(settings)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"processor {name!r} rejected its configuration: {type(exc).__name__}: {exc}") from exc
    if not isinstance(processor, Processor):
        raise PluginError(f"processor {name!r} has no process(message, context) method")
    return processor
