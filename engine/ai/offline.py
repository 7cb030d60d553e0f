"""What an AI chain does without a network: shared by the gateway and the try/test harness.

``OFFLINE_PROVIDERS`` answer without leaving the machine; ``keyword_intent`` is how
a ``classify`` call is answered when no model is reachable (the examples' keywords).
"""

from __future__ import annotations

from typing import Any

from engine.flow.events import AIResult, CallAI
from engine.flow.textmatch import KeywordClassifier

OFFLINE_PROVIDERS = frozenset({"echo", "faq"})


def keyword_intent(call: CallAI, at: str, attempts: tuple[dict[str, Any], ...] = ()) -> AIResult:
    """The intent the examples' keywords find in the message: how a chain without a model classifies."""
    intent, score = KeywordClassifier(dict(call.intents)).classify(call.text)
    return AIResult(call.call_id, intent or "", at, confidence=score, provider="keywords", attempts=attempts)
