"""``echo``: answers with the customer's own message. For tests, demos and benchmarks.

Params: ``prefix`` (text put before the echo, default none). Confidence is 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.ai.types import AIReply, AIRequest


class EchoProvider:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.prefix = str(params.get("prefix") or "")

    async def reply(self, request: AIRequest) -> AIReply:
        return AIReply(text=self.prefix + request.message, confidence=1.0, model="echo")


def create(params: Mapping[str, Any]) -> EchoProvider:
    return EchoProvider(params)
