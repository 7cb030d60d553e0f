"""``canned``: an AI provider that answers from a table of keywords, offline.

The first keyword found in the customer's message (ignoring case) gives the
answer, with the configured confidence; a message with none of them gets an empty
answer, which the chain counts as "no answer" and passes to its next provider (or
to the step's ``on_error``). Use it in a chain::

    ai:
      answers:
        providers:
          - use: canned
            params:
              confidence: 0.9
              answers:
                shipping: Parcels leave our warehouse within 2 working days.
                退货: 收货后30天内可以退货。

The flow's ``params:`` arrive as ``params["params"]``; keys of an ``ai_profiles``
entry (``profile: name``) arrive at the top level of ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.ai.types import AIReply, AIRequest

DEFAULT_CONFIDENCE = 0.9


class CannedProvider:
    """Keyword -> answer; the order of ``answers`` decides when several keywords match."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        answers = options.get("answers")
        if not isinstance(answers, Mapping) or not answers:
            # ValueError/TypeError become a ProviderConfigError naming the provider.
            raise ValueError("canned needs `params: {answers: {keyword: answer, ...}}` with at least one entry")
        self.answers = [(str(keyword).casefold(), str(answer)) for keyword, answer in answers.items()]
        self.confidence = float(options.get("confidence", DEFAULT_CONFIDENCE))
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be between 0 and 1, got {self.confidence}")

    async def reply(self, request: AIRequest) -> AIReply:
        text = request.message.casefold()
        answer = next((answer for keyword, answer in self.answers if keyword in text), "")
        # The chain measures the latency itself when a provider leaves latency_ms at 0.
        return AIReply(text=answer, confidence=self.confidence if answer else 0.0, model="canned")


def create(params: Mapping[str, Any]) -> CannedProvider:
    """The ``flowdesk.ai`` entry point: build the provider from the chain's parameters."""
    return CannedProvider(params.get("params") or {})


# Needs no network and no secrets: `flowdesk try` and `flowdesk test` may ask it for real.
create.offline = True  # type: ignore[attr-defined]
