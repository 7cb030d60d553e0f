"""The names a flow may refer to: channels, AI providers and pipeline processors.

The validator checks references against a :class:`Vocabulary`. The default is the
built-ins plus the names installed plugins publish as entry points (``flowdesk.ai``,
``flowdesk.processors``, ``flowdesk.channels``), so a flow that uses an installed
plugin validates and a typo is still caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import entry_points

BUILTIN_CHANNELS = frozenset(
    {"webchat", "telegram", "whatsapp", "api", "line", "wechat", "email", "slack", "sms", "webhook", "cli"}
)
BUILTIN_PROVIDERS = frozenset({"openai", "anthropic", "dify", "fastgpt", "coze", "faq", "echo"})
BUILTIN_PROCESSORS = frozenset({"sensitive_words", "pii_redact", "rate_limit", "normalize"})

#: ``package.module:attr`` — a plugin named by import path rather than by registry name.
IMPORT_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Vocabulary:
    """Known names; ``import_references`` allows ``module:attr`` plugins."""

    channels: frozenset[str] = BUILTIN_CHANNELS
    providers: frozenset[str] = BUILTIN_PROVIDERS
    processors: frozenset[str] = BUILTIN_PROCESSORS
    #: flow ids deployed alongside (None: unknown, so `call`/`goto_flow` are not checked)
    flows: frozenset[str] | None = None
    import_references: bool = True

    def with_flows(self, flows: frozenset[str]) -> Vocabulary:
        return Vocabulary(
            channels=self.channels,
            providers=self.providers,
            processors=self.processors,
            flows=flows,
            import_references=self.import_references,
        )

    def is_import_reference(self, name: str) -> bool:
        return self.import_references and bool(IMPORT_REFERENCE.match(name))


def installed(group: str) -> frozenset[str]:
    """Names the installed distributions publish as entry points of ``group`` (nothing is imported)."""
    return frozenset(point.name for point in entry_points(group=group))


#: The built-ins and every installed plugin's name (read once, when the process starts).
DEFAULT_VOCABULARY = Vocabulary(
    channels=BUILTIN_CHANNELS | installed("flowdesk.channels"),
    providers=BUILTIN_PROVIDERS | installed("flowdesk.ai"),
    processors=BUILTIN_PROCESSORS | installed("flowdesk.processors"),
)
