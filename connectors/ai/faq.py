"""``faq``: offline answers from a YAML knowledge file (format: ``engine.flow.faq_knowledge``).

Params: ``knowledge`` (path of the knowledge file; the gateway makes a flow's
relative path absolute against the flows directory). The file is re-read when it
changes on disk. The answer's confidence is the match's coverage (0..1); below the
file's ``threshold`` the provider declines with an empty answer, which the chain
treats as "no answer" and falls through.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.ai.types import AIReply, AIRequest, ProviderConfigError
from engine.flow.faq_knowledge import knowledge_at


class FaqProvider:
    def __init__(self, params: Mapping[str, Any]) -> None:
        knowledge = params.get("knowledge")
        if not isinstance(knowledge, str) or not knowledge:
            raise ProviderConfigError("faq: `knowledge` (the path of a knowledge file) is not set")
        self.path = Path(knowledge)

    async def reply(self, request: AIRequest) -> AIReply:
        try:
            knowledge = knowledge_at(self.path)
        except FileNotFoundError:
            raise ProviderConfigError(f"faq: knowledge file {self.path} not found") from None
        except ValueError as exc:  # FaqKnowledge reports a malformed file this way
            raise ProviderConfigError(f"faq: {exc}") from None
        answer = knowledge.answer(request.message)
        if answer is None:
            return AIReply(text="", confidence=0.0, model="faq")
        return AIReply(text=answer.answer, confidence=answer.confidence, model="faq")


def create(params: Mapping[str, Any]) -> FaqProvider:
    return FaqProvider(params)
