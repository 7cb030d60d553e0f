"""The message pipeline as the runtime runs it: inbound in ``prepare``, outbound in ``deliver``.

Processors are the flow's stages (``engine.pipeline``). The log keeps a message as
the flow saw it: when inbound processors changed its text (normalized, masked,
redacted for storage), the logged text is replaced; text redacted for AI only
travels as ``ai_text`` and the log keeps the original.
"""

from __future__ import annotations

from typing import Any

from engine.flow.model import CompiledFlow
from engine.pipeline.runner import PipelineResult, Pipelines, message_from_dict, message_to_dict


def run_inbound(
    pipelines: Pipelines, flow: CompiledFlow, message: dict[str, Any], *, conversation_id: str, key: str = ""
) -> tuple[dict[str, Any], PipelineResult]:
    """The message after the flow's inbound stages (as the runtime's mapping), and the result."""
    result = pipelines.run(flow, "in", message_from_dict(message, "in"), conversation_id=conversation_id, key=key)
    return message_to_dict(result.message, message), result


def run_outbound(
    pipelines: Pipelines, flow: CompiledFlow | None, text: str, *, conversation_id: str, message_id: str, channel: str
) -> PipelineResult:
    """A reply after the flow's outbound stages (a flow that cannot be found has none)."""
    message = message_from_dict({"id": message_id, "text": text, "channel": channel}, "out")
    if flow is None:
        return PipelineResult(message)
    return pipelines.run(flow, "out", message, conversation_id=conversation_id)
