"""Offline answers for AI and HTTP steps, used by ``flowdesk try`` and ``flowdesk test``.

``mock.ai.<step>`` / ``mock.http.<step>`` script results; without a mock, an AI
chain is answered by its offline providers (``echo``, ``faq``, and plugin
providers whose factory says ``offline = True``) exactly as configured, and
providers that need a network are skipped with a note. An
``http`` step without a mock fails the way an unreachable service would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from engine.ai.offline import keyword_intent
from engine.errors import FlowdeskError
from engine.flow.ai_context import call_context
from engine.flow.context import FlowResolver
from engine.flow.events import AIFailed, AIResult, CallAI, CallFailure, CallHttp, HttpFailed, HttpResult
from engine.flow.faq_knowledge import knowledge_at
from engine.flow.knowledge import parse_knowledge
from engine.flow.model import Chain, CompiledFlow, ProviderRef

T = TypeVar("T")

_RESPONSE_KEYS = frozenset({"status", "body", "error"})


class OfflineAI:
    """Answers ``CallAI`` from mocks or the chain's offline providers."""

    def __init__(
        self,
        flows: FlowResolver,
        *,
        mocks: Mapping[str, Any] | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.flows = flows
        self.mocks = dict(mocks or {})
        self.base_dir = base_dir or Path.cwd()
        self.notes: list[str] = []

    def __call__(self, call: CallAI, at: str) -> AIResult | AIFailed:
        if call.step in self.mocks:
            return self._mocked(call, self.mocks[call.step], at)
        if call.purpose == "classify":
            return keyword_intent(call, at)
        flow = self.flows.get(call.flow, call.revision)
        chain = flow.chains.get(call.chain) if flow is not None else None
        if flow is None or chain is None:
            return AIFailed(call.call_id, "failed", at, f"AI chain {call.chain!r} not found")
        skipped = []
        for provider in chain.providers:
            if provider.use == "echo":
                return AIResult(call.call_id, call.text, at, confidence=1.0, provider="echo")
            if provider.use == "faq":
                answer = self._faq(provider, flow, call.text, chain.min_confidence)
                if answer is not None:
                    return AIResult(call.call_id, answer[0], at, confidence=answer[1], provider="faq")
                continue
            plugin = self._plugin(provider, call, chain)
            if plugin is None:
                skipped.append(provider.use)
            elif plugin[0]:
                return AIResult(call.call_id, plugin[0], at, confidence=plugin[1], provider=provider.use)
        if skipped:
            self.notes.append(f"skipped {', '.join(skipped)} (needs a network; mock it with mock.ai.{call.step})")
        return AIFailed(call.call_id, "failed", at, "no offline provider of chain " + repr(call.chain) + " answered")

    def _plugin(self, provider: ProviderRef, call: CallAI, chain: Chain) -> tuple[str, float | None] | None:
        """A plugin provider that declares itself offline (``offline = True`` on its factory), asked.

        None when it is not offline (skipped); ``("", ...)`` when it gave no usable answer.
        Offline means no network and no secrets: profiles and ``secret()`` are not resolved.
        """
        # Imported here: engine.ai builds on engine.flow, and only try/test come this way.
        from engine.ai.chain import judge  # noqa: PLC0415
        from engine.ai.profiles import resolve_params  # noqa: PLC0415
        from engine.ai.registry import PROVIDERS, build_provider  # noqa: PLC0415
        from engine.ai.types import AIRequest, ProviderError  # noqa: PLC0415

        try:
            factory = PROVIDERS.resolve(provider.use)
        except FlowdeskError:
            return None
        if getattr(factory, "offline", False) is not True:
            return None
        request = AIRequest(call.text, call.system, call_context(call, chain.context))
        try:
            params = resolve_params(provider, {}, {}, knowledge_dir=self.base_dir).params
            reply = run_sync(build_provider(provider.use, params).reply(request))
        except ProviderError as exc:
            self.notes.append(f"{provider.use}: {exc}")
            return "", None
        except Exception as exc:  # a plugin's bug is shown, and the chain goes on as it would
            self.notes.append(f"{provider.use} failed: {type(exc).__name__}: {exc}")
            return "", None
        if judge(reply, chain.min_confidence)[0] != "ok":
            return "", reply.confidence
        return reply.text.strip(), reply.confidence

    def _faq(
        self, provider: ProviderRef, flow: CompiledFlow, text: str, min_confidence: float | None
    ) -> tuple[str, float] | None:
        knowledge = provider.options.get("knowledge")
        if not isinstance(knowledge, str):
            return None
        attached = flow.knowledge.get(knowledge) if not provider.profile else None
        if attached is not None:
            # What the revision holds, as a running conversation would answer.
            found = parse_knowledge(attached, knowledge)
        else:
            path = (self.base_dir / knowledge).resolve()
            if not path.is_file():
                self.notes.append(f"faq knowledge file {path} not found")
                return None
            found = knowledge_at(path)
        answer = found.answer(text)
        if answer is None or (min_confidence is not None and answer.confidence < min_confidence):
            return None
        return answer.answer, answer.confidence

    @staticmethod
    def _mocked(call: CallAI, mock: Any, at: str) -> AIResult | AIFailed:
        # The schema allows only {error: ...} as a mapping; anything else is a reply text.
        if isinstance(mock, Mapping) and "error" in mock:
            return AIFailed(call.call_id, str(mock["error"]), at, f"mocked failure: {mock['error']}")
        return AIResult(call.call_id, str(mock), at, confidence=1.0, provider="mock")


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


class ScriptedHttp:
    """Answers ``CallHttp`` from ``mock.http``; a missing mock is a failed call."""

    def __init__(self, mocks: Mapping[str, Any] | None = None) -> None:
        self.mocks = dict(mocks or {})
        self.requests: list[CallHttp] = []

    def __call__(self, call: CallHttp, at: str) -> HttpResult | HttpFailed:
        self.requests.append(call)
        if call.step not in self.mocks:
            return HttpFailed(call.call_id, CallFailure.ERROR, at, f"no mock for http step {call.step!r}")
        mock = self.mocks[call.step]
        # `{status, body?}` is a response; any other value (a mapping with more keys too) is a 200 body.
        if isinstance(mock, Mapping) and isinstance(mock.get("status"), int) and set(mock) <= _RESPONSE_KEYS:
            if mock.get("error") == "timeout":
                return HttpFailed(call.call_id, CallFailure.TIMEOUT, at, "mocked timeout")
            return HttpResult(call.call_id, int(mock["status"]), mock.get("body"), at)
        if isinstance(mock, Mapping) and mock.get("error") == "timeout":
            return HttpFailed(call.call_id, CallFailure.TIMEOUT, at, "mocked timeout")
        return HttpResult(call.call_id, 200, mock, at)
