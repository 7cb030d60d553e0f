"""The AI gateway of a worker: from a flow's ``CallAI`` to an ``AIResult`` or ``AIFailed``.

It takes the context turns the interpreter chose (``engine.flow.ai_context``),
resolves each provider of the chain (profile, secrets, plugin), runs the fallback
chain, and reports every attempt. Built providers are cached by configuration,
so their HTTP clients and state (a FAQ index) live as long as the worker;
circuit breakers are per worker process.

Vendor conversation ids (Dify, FastGPT, Coze keep their own history) travel in
the conversation's state: ``CallAI.sessions`` in, ``AIResult.sessions`` out, keyed
by provider label. They are ids, not secrets.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.ai.breaker import DEFAULT_COOLDOWN_S, DEFAULT_FAILURES, Breakers
from engine.ai.chain import ChainOutcome, Link, redactor, run_chain
from engine.ai.offline import OFFLINE_PROVIDERS, keyword_intent
from engine.ai.profiles import ResolvedParams, provider_label, resolve_params
from engine.ai.registry import build_provider
from engine.ai.types import AIProvider, AIRequest, ProviderConfigError
from engine.flow.ai_context import call_context
from engine.flow.compile import parse_duration
from engine.flow.events import AIFailed, AIResult, CallAI, CallFailure
from engine.flow.model import Chain, CompiledFlow
from engine.metrics import AI_CHAINS

log = logging.getLogger(__name__)

#: A provider without a ``timeout`` gets this long for one attempt.
DEFAULT_PROVIDER_TIMEOUT_MS = 20_000
#: A chain without a ``timeout`` (and a step without one) gets this long in all.
DEFAULT_CHAIN_TIMEOUT_MS = 30_000
OTHER_INTENT = "_other"


def chain_timeout_ms(chain: Chain, call: CallAI) -> int:
    """How long the whole chain may take: the chain's ``timeout``, else the step's, else 30 s."""
    return chain.timeout_ms or call.timeout_ms or DEFAULT_CHAIN_TIMEOUT_MS


class AIGateway:
    def __init__(
        self,
        *,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
        environ: Mapping[str, str] | None = None,
        knowledge_dir: Path | None = None,
        breakers: Breakers | None = None,
    ) -> None:
        self.profiles = dict(profiles or {})
        self.environ = os.environ if environ is None else environ
        self.knowledge_dir = knowledge_dir or Path.cwd()
        self.breakers = breakers or Breakers()
        self._providers: dict[str, AIProvider] = {}

    async def answer(
        self, call: CallAI, flow: CompiledFlow | None, at: str, *, conversation_id: str = ""
    ) -> AIResult | AIFailed:
        chain = flow.chains.get(call.chain) if flow is not None else None
        if chain is None:
            return AIFailed(call.call_id, CallFailure.FAILED, at, f"AI chain {call.chain!r} not found")
        if call.purpose == "classify":
            return await self._classify(call, chain, at)
        request = AIRequest(
            message=call.text,
            system=call.system,
            context=call_context(call, chain.context),
            conversation_id=conversation_id,
        )
        outcome = await self._run(chain, call, request)
        AI_CHAINS.labels(call.flow, call.chain, "answered" if outcome.reply else outcome.reason).inc()
        return _result(call, outcome, at)

    async def _classify(self, call: CallAI, chain: Chain, at: str) -> AIResult | AIFailed:
        """An intent name: asked of the chain's model, else found by keywords in the examples."""
        intents = dict(call.intents)
        outcome: ChainOutcome | None = None
        if any(ref.use not in OFFLINE_PROVIDERS for ref in chain.providers):
            request = AIRequest(message=call.text, system=_classify_prompt(intents), conversation_id="")
            outcome = await self._run(chain, call, request, offline=False)
            if outcome.reply is not None:
                intent = _intent_named(outcome.reply.text, intents)
                if intent is not None:
                    attempts = tuple(a.as_dict() for a in outcome.attempts)
                    return AIResult(call.call_id, intent, at, outcome.reply.confidence, outcome.provider, attempts)
        return keyword_intent(call, at, tuple(a.as_dict() for a in outcome.attempts) if outcome else ())

    async def _run(self, chain: Chain, call: CallAI, request: AIRequest, *, offline: bool = True) -> ChainOutcome:
        links: list[Link] = []
        secrets: list[str] = []
        for ref in chain.providers:
            if not offline and ref.use in OFFLINE_PROVIDERS:
                continue
            label = provider_label(ref)
            try:
                resolved = resolve_params(ref, self.profiles, self.environ, knowledge_dir=self.knowledge_dir)
                secrets += resolved.secrets
                provider = self._provider(resolved)
            except ProviderConfigError as exc:
                links.append(Link(label, None, 0.0, problem=exc))
                continue
            session = call.sessions.get(label)
            links.append(
                Link(
                    label,
                    provider,
                    (resolved.timeout_ms or DEFAULT_PROVIDER_TIMEOUT_MS) / 1000,
                    retries=ref.retries,
                    breaker=self._breaker(resolved),
                    request=replace(request, vendor_conversation_id=session) if session else None,
                )
            )
        redact = redactor(secrets)
        outcome = await run_chain(
            links,
            request,
            timeout_s=chain_timeout_ms(chain, call) / 1000,
            min_confidence=chain.min_confidence,
            redact=redact,
        )
        if outcome.reply is None:
            log.info("AI chain %s of flow %s gave no answer: %s", call.chain, call.flow, outcome.detail)
        return outcome

    def _provider(self, resolved: ResolvedParams) -> AIProvider:
        key = resolved.cache_key()
        provider = self._providers.get(key)
        if provider is None:
            provider = build_provider(resolved.use, resolved.params)
            self._providers[key] = provider
        return provider

    def _breaker(self, resolved: ResolvedParams) -> Any:
        settings = resolved.breaker
        cooldown_ms = parse_duration(settings.get("cooldown"))
        return self.breakers.get(
            resolved.breaker_key(),
            resolved.label,
            failures=int(settings.get("failures", DEFAULT_FAILURES)),
            cooldown_s=cooldown_ms / 1000 if cooldown_ms is not None else DEFAULT_COOLDOWN_S,
        )


def _result(call: CallAI, outcome: ChainOutcome, at: str) -> AIResult | AIFailed:
    attempts = tuple(a.as_dict() for a in outcome.attempts)
    if outcome.reply is None:
        return AIFailed(call.call_id, outcome.reason or CallFailure.FAILED, at, outcome.detail, attempts)
    sessions = {}
    if outcome.reply.vendor_conversation_id and outcome.provider:
        sessions[outcome.provider] = outcome.reply.vendor_conversation_id
    return AIResult(
        call.call_id,
        outcome.reply.text.strip(),
        at,
        confidence=outcome.reply.confidence,
        provider=outcome.provider,
        attempts=attempts,
        sessions=sessions,
    )


def _classify_prompt(intents: Mapping[str, Sequence[str]]) -> str:
    lines = [
        "Classify the customer's message into exactly one of these intents.",
        f"Answer with the intent name only, or {OTHER_INTENT} if none fits.",
    ]
    for name, examples in intents.items():
        lines.append(f"- {name}: e.g. " + "; ".join(examples[:5]))
    return "\n".join(lines)


def _intent_named(answer: str, intents: Mapping[str, Any]) -> str | None:
    """The intent a model's answer names (case and punctuation aside), ``_other``, or None."""
    word = answer.strip().strip(".\"'`").strip().lower()
    for name in intents:
        if word == name.lower():
            return name
    return OTHER_INTENT if word == OTHER_INTENT else None
