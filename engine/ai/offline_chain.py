"""Answers of offline chains that are a pure function of the flow revision.

An ``echo`` provider and a ``faq`` provider whose knowledge is attached to the
revision (engine.flow.knowledge), neither with a ``profile``, answer the same
text with the same answer on every worker and on every replay. A chain of only
such providers can therefore be answered in workflow code, with no activity:
that spares the conversation's workflow task a local activity per answer.

Everything else is not pure: a provider with a profile (its settings live in
flowdesk.yaml), a revision stored without its knowledge, a knowledge file above
512 K characters, a plugin. Such a chain goes through the AI activity and
engine.ai.gateway as before. The answers, attempts and failures made here are
the ones the gateway would make for the same chain.
"""

from __future__ import annotations

from engine.ai.chain import Attempt, count_attempt, judge
from engine.ai.offline import OFFLINE_PROVIDERS, keyword_intent
from engine.ai.profiles import provider_label
from engine.ai.types import AIReply
from engine.flow.events import AIFailed, AIResult, CallAI, CallFailure
from engine.flow.knowledge import parse_knowledge
from engine.flow.model import Chain, CompiledFlow, ProviderRef
from engine.metrics import AI_CHAINS


def is_pure(chain: Chain, flow: CompiledFlow, purpose: str = "answer") -> bool:
    """Whether workflow code may answer ``chain`` of ``flow`` itself."""
    if purpose == "classify":
        # Offline providers are not asked to classify: the examples' keywords decide.
        return all(ref.use in OFFLINE_PROVIDERS for ref in chain.providers)
    return bool(chain.providers) and all(_is_pure(ref, flow) for ref in chain.providers)


def answer(call: CallAI, chain: Chain, flow: CompiledFlow, at: str, *, count: bool) -> AIResult | AIFailed:
    """The chain's answer to ``call``, as the gateway gives it; call only when :func:`is_pure`.

    ``count``: add the attempts and the chain's outcome to the AI metrics, as the
    gateway does (not when the workflow replays).
    """
    if call.purpose == "classify":
        return keyword_intent(call, at)
    event = _run(call, chain, flow, at, count=count)
    if count:
        AI_CHAINS.labels(call.flow, call.chain, "answered" if isinstance(event, AIResult) else event.reason).inc()
    return event


def _run(call: CallAI, chain: Chain, flow: CompiledFlow, at: str, *, count: bool) -> AIResult | AIFailed:
    """Each provider in turn until one answers well enough, as engine.ai.chain runs them."""
    attempts: list[Attempt] = []
    for ref in chain.providers:
        reply = _reply(ref, flow, call.text)
        verdict, why = judge(reply, chain.min_confidence)
        attempt = Attempt(provider_label(ref), verdict, model=reply.model, detail=why)
        attempts.append(count_attempt(attempt) if count else attempt)
        if verdict == "ok":
            recorded = tuple(a.as_dict() for a in attempts)
            return AIResult(
                call.call_id, reply.text.strip(), at, reply.confidence, provider_label(ref), attempts=recorded
            )
    detail = "; ".join(f"{a.provider}: {a.detail or a.outcome}" for a in attempts)
    return AIFailed(call.call_id, CallFailure.FAILED, at, detail, tuple(a.as_dict() for a in attempts))


#: A larger knowledge file is left to the activity: its first parse (about 0.15 s at
#: this size) and each match would hold up the workflow task, which Temporal's
#: deadlock detector cuts off at 2 s.
MAX_IN_WORKFLOW_KNOWLEDGE = 512 * 1024


def _is_pure(ref: ProviderRef, flow: CompiledFlow) -> bool:
    if ref.profile:
        return False
    if ref.use == "echo":
        return True
    text = _knowledge_text(ref, flow) if ref.use == "faq" else None
    return text is not None and len(text) <= MAX_IN_WORKFLOW_KNOWLEDGE


def _knowledge_text(ref: ProviderRef, flow: CompiledFlow) -> str | None:
    path = ref.options.get("knowledge")
    return flow.knowledge.get(path) if isinstance(path, str) else None


def _reply(ref: ProviderRef, flow: CompiledFlow, text: str) -> AIReply:
    """A pure provider's reply to ``text``, as its connector (connectors.ai.echo/faq) gives it."""
    if ref.use == "echo":
        # Its one setting, `prefix`, can only come from a profile: a pure echo has none.
        return AIReply(text=text, confidence=1.0, model="echo")
    knowledge = _knowledge_text(ref, flow)
    if knowledge is None:
        raise ValueError(f"provider {ref.use} of this chain is not pure: answer() is for pure chains only")
    found = parse_knowledge(knowledge, str(ref.options["knowledge"])).answer(text)
    if found is None:
        return AIReply(text="", confidence=0.0, model="faq")
    return AIReply(text=found.answer, confidence=found.confidence, model="faq")
