"""Which flow takes a new conversation: channel, ``when`` guard, then priority.

Pure: the same flows, contact and message always pick the same flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.errors import ExpressionError
from engine.flow import expr
from engine.flow.context import FlowSettings
from engine.flow.model import CompiledFlow


def choose_flow(
    flows: Iterable[CompiledFlow],
    *,
    channel: str,
    contact: Mapping[str, Any],
    message: Mapping[str, Any],
    settings: FlowSettings,
    now: datetime,
) -> CompiledFlow | None:
    """The flow for a new conversation: serves the channel, its ``when`` holds,
    highest ``priority`` first, then by id for a stable choice."""
    candidates = sorted((f for f in flows if f.serves(channel)), key=lambda f: (-f.priority, f.name))
    scope = {
        "contact": dict(contact),
        "message": dict(message),
        "conversation": {"channel": channel},
        "settings": settings.scope(),
        "now": now,
    }
    for flow in candidates:
        if flow.when is None:
            return flow
        try:
            if expr.is_truthy(expr.evaluate(flow.when, scope)):
                return flow
        except ExpressionError:
            continue  # a guard that cannot be evaluated does not claim the conversation
    return None
