"""The AI gateway: a flow's CallAI through profiles, secrets, the chain and back as AIResult/AIFailed."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from engine.ai.breaker import Breakers
from engine.ai.gateway import AIGateway
from engine.ai.registry import PROVIDERS, register_provider
from engine.ai.types import AIReply, AIRequest, Turn, Unauthorized, Unavailable
from engine.flow.events import AIFailed, AIResult, CallAI
from engine.flow.model import CompiledFlow
from engine.flow.validate import compile_source
from engine.flow.vocabulary import DEFAULT_VOCABULARY, Vocabulary
from tests.faq_support import BILINGUAL_KNOWLEDGE

DOCS = Path(__file__).resolve().parents[3] / "docs" / "flows.md"
AT = "2024-05-01T10:00:00Z"
KEY = "sk-test-7f3a9c2e5b1d"
INTENTS = (
    ("refund", ("I want my money back", "refund please", "退款")),
    ("shipping", ("where is my parcel", "when will my order arrive", "物流")),
)

Behaviour = Callable[[AIRequest, dict[str, Any]], AIReply]


@dataclass
class Record:
    """What a fake provider was built with and asked."""

    built: list[dict[str, Any]] = field(default_factory=list)
    requests: list[AIRequest] = field(default_factory=list)


@pytest.fixture(autouse=True)
def _restore_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PROVIDERS, "_registered", dict(PROVIDERS._registered))
    monkeypatch.setattr(PROVIDERS, "_loaded", dict(PROVIDERS._loaded))


@pytest.fixture(name="kb_dir")
def fx_kb_dir(tmp_path: Path) -> Path:
    (tmp_path / "kb.yaml").write_text(BILINGUAL_KNOWLEDGE, encoding="utf-8")
    return tmp_path


def fake(behave: Behaviour, *, delay: float = 0.0) -> tuple[str, Record]:
    """Register a fake provider under a new name; its record shows what it saw."""
    name = f"fake_{uuid.uuid4().hex[:8]}"
    record = Record()

    class FakeProvider:
        def __init__(self, params: Any) -> None:
            self.params = dict(params)
            record.built.append(self.params)

        async def reply(self, request: AIRequest) -> AIReply:
            record.requests.append(request)
            if delay:
                await asyncio.sleep(delay)
            return behave(request, self.params)

    register_provider(name)(FakeProvider)
    return name, record


def answers(text: str, **fields: Any) -> Behaviour:
    return lambda request, params: AIReply(text=text, **fields)


def raises(make: Callable[[dict[str, Any]], Exception]) -> Behaviour:
    def behave(request: AIRequest, params: dict[str, Any]) -> AIReply:
        raise make(params)

    return behave


def compile_flow(providers: list[dict[str, Any]], **chain: Any) -> CompiledFlow:
    names = {p["use"] for p in providers}
    document = {
        "flow": "t",
        "ai": {"helpdesk": {"providers": providers, **chain}},
        "steps": {
            "listen": {"wait": "message"},
            "answer": {"ai": "helpdesk", "on_error": "listen", "next": "listen"},
        },
    }
    vocabulary = Vocabulary(providers=DEFAULT_VOCABULARY.providers | names)
    result = compile_source(yaml.safe_dump(document, allow_unicode=True), "t.yaml", vocabulary=vocabulary)
    assert result.flow is not None, [d.message for d in result.diagnostics]
    return result.flow


def call(text: str, history: list[dict[str, str]] | None = None, **fields: Any) -> CallAI:
    """The CallAI an ``ai`` step emits; ``history`` is the transcript, ending with the message by default."""
    history = [{"role": "user", "text": text}] if history is None else history
    base: dict[str, Any] = {
        "call_id": "ai-1",
        "step": "answer",
        "flow": "t",
        "revision": "rev-1",
        "chain": "helpdesk",
        "system": None,
    }
    return CallAI(text=text, history=tuple(history), **{**base, **fields})


def outcomes(result: AIResult | AIFailed) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in result.attempts]


# -- the chain through the gateway ---------------------------------------------------


async def test_a_failing_provider_falls_back_to_the_faq(kb_dir: Path) -> None:
    down, record = fake(raises(lambda params: Unavailable("HTTP 503 from vendor")))
    flow = compile_flow([{"use": down}, {"use": "faq", "knowledge": "kb.yaml"}])
    flow_id = f"flow-{uuid.uuid4().hex[:8]}"
    gateway = AIGateway(environ={}, knowledge_dir=kb_dir)

    result = await gateway.answer(call("How do I return an item?", flow=flow_id), flow, AT)

    assert isinstance(result, AIResult)
    assert result.text == "Send it back within 30 days; the label is in your account."
    assert result.provider == "faq"
    assert result.call_id == "ai-1"
    assert outcomes(result) == [(down, "unavailable"), ("faq", "ok")]
    assert result.attempts[0]["detail"] == "HTTP 503 from vendor"
    assert len(record.requests) == 1
    chains = "flowdesk_ai_chain_outcomes_total"
    assert REGISTRY.get_sample_value(chains, {"flow": flow_id, "chain": "helpdesk", "outcome": "answered"}) == 1


async def test_every_provider_failing_gives_ai_failed_with_all_attempts(kb_dir: Path) -> None:
    down, _ = fake(raises(lambda params: Unavailable("HTTP 503")))
    flow = compile_flow([{"use": down}, {"use": "faq", "knowledge": "kb.yaml"}])

    result = await AIGateway(environ={}, knowledge_dir=kb_dir).answer(call("Do you sell bicycles?"), flow, AT)

    assert isinstance(result, AIFailed)
    assert result.reason == "failed"
    assert outcomes(result) == [(down, "unavailable"), ("faq", "empty")]
    assert down in result.detail and "faq" in result.detail


async def test_an_unknown_chain_fails_clearly() -> None:
    flow = compile_flow([{"use": "echo"}])

    result = await AIGateway(environ={}).answer(call("hello", chain="nope"), flow, AT)

    assert isinstance(result, AIFailed)
    assert "nope" in result.detail


async def test_the_step_timeout_bounds_a_chain_without_its_own() -> None:
    slow, _ = fake(answers("late"), delay=1.0)
    flow = compile_flow([{"use": slow}])

    result = await AIGateway(environ={}).answer(call("hello", timeout_ms=100), flow, AT)

    assert isinstance(result, AIFailed)
    assert result.reason == "timeout"
    assert outcomes(result) == [(slow, "timeout")]


async def test_a_flow_breaker_setting_skips_a_failing_provider_on_the_next_call(kb_dir: Path) -> None:
    down, record = fake(raises(lambda params: Unavailable("HTTP 503")))
    flow = compile_flow(
        [{"use": down, "breaker": {"failures": 1, "cooldown": "30s"}}, {"use": "faq", "knowledge": "kb.yaml"}]
    )
    gateway = AIGateway(environ={}, knowledge_dir=kb_dir, breakers=Breakers())

    await gateway.answer(call("How do I return an item?"), flow, AT)
    second = await gateway.answer(call("How do I return an item?"), flow, AT)

    assert outcomes(second) == [(down, "skipped"), ("faq", "ok")]
    assert len(record.requests) == 1
    assert "breaker" not in record.built[0]  # a Flowdesk setting, not the vendor's


async def test_the_documented_knowledge_file_answers(tmp_path: Path) -> None:
    # The "A knowledge file" example of docs/flows.md, copied as an operator would.
    section = DOCS.read_text(encoding="utf-8").split("\n## AI chains\n", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml[^\n]*\n(.*?)```", section.split("A knowledge file", 1)[1], flags=re.DOTALL)
    assert example is not None
    (tmp_path / "faq.yaml").write_text(example.group(1), encoding="utf-8")
    flow = compile_flow([{"use": "faq", "knowledge": "faq.yaml"}])
    gateway = AIGateway(environ={}, knowledge_dir=tmp_path)

    english = await gateway.answer(call("How do I return an item?"), flow, AT)
    chinese = await gateway.answer(call("怎么退货？"), flow, AT)

    assert isinstance(english, AIResult), english
    assert english.text == "Send it back within 30 days; the label is in your account."
    assert isinstance(chinese, AIResult), chinese
    assert chinese.text == "收货后30天内可以退货。"


# -- profiles and secrets ------------------------------------------------------------


async def test_profile_key_is_resolved_from_the_environment() -> None:
    name, record = fake(answers("Hello from the vendor."))
    profiles = {
        "main": {
            "provider": name,
            "base_url": "https://vendor.example/v1",
            "api_key": "${env:TEST_KEY}",
            "model": "m-1",
        }
    }
    flow = compile_flow([{"use": name, "profile": "main", "model": "m-2", "temperature": 0.2}])

    result = await AIGateway(profiles=profiles, environ={"TEST_KEY": KEY}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIResult)
    assert result.provider == f"{name}/main"
    [params] = record.built
    assert params["api_key"] == KEY
    assert params["base_url"] == "https://vendor.example/v1"
    assert params["model"] == "m-2"  # the flow's model overrides the profile's
    assert params["temperature"] == 0.2
    assert KEY not in repr(result)


async def test_the_profile_timeout_bounds_each_attempt() -> None:
    slow, _ = fake(answers("late"), delay=1.0)
    profiles = {"main": {"provider": slow, "timeout": "50ms"}}
    flow = compile_flow([{"use": slow, "profile": "main"}, {"use": "echo"}])

    result = await AIGateway(profiles=profiles, environ={}).answer(call("hello"), flow, AT)

    assert outcomes(result) == [(f"{slow}/main", "timeout"), ("echo", "ok")]


async def test_an_unset_variable_makes_the_provider_misconfigured_naming_it() -> None:
    name, record = fake(answers("never"))
    environ = {"TEST_BASE": "https://internal-vendor.example/v1", "UNRELATED": "s3cr3t-unrelated-value"}
    profiles = {"main": {"provider": name, "base_url": "${env:TEST_BASE}", "api_key": "${env:TEST_KEY}"}}
    flow = compile_flow([{"use": name, "profile": "main"}, {"use": "echo"}])

    result = await AIGateway(profiles=profiles, environ=environ).answer(call("hello"), flow, AT)

    assert isinstance(result, AIResult)
    assert result.provider == "echo"
    assert outcomes(result) == [(f"{name}/main", "misconfigured"), ("echo", "ok")]
    detail = result.attempts[0]["detail"]
    assert "TEST_KEY" in detail
    for value in environ.values():
        assert value not in repr(result)
    assert record.built == [] and record.requests == []


async def test_a_profile_for_another_provider_is_misconfigured() -> None:
    name, record = fake(answers("never"))
    profiles = {"main": {"provider": "openai", "api_key": "${env:TEST_KEY}"}}
    flow = compile_flow([{"use": name, "profile": "main"}])

    result = await AIGateway(profiles=profiles, environ={"TEST_KEY": KEY}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIFailed)
    assert outcomes(result) == [(f"{name}/main", "misconfigured")]
    assert "openai" in result.attempts[0]["detail"]
    assert record.built == []


async def test_an_unknown_profile_is_misconfigured_and_lists_the_known() -> None:
    name, _ = fake(answers("never"))
    flow = compile_flow([{"use": name, "profile": "missing"}])

    result = await AIGateway(profiles={"main": {"provider": name}}, environ={}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIFailed)
    assert outcomes(result) == [(f"{name}/missing", "misconfigured")]
    assert "missing" in result.attempts[0]["detail"] and "main" in result.attempts[0]["detail"]


async def test_params_secrets_are_resolved_from_the_environment() -> None:
    name, record = fake(answers("ok"))
    flow = compile_flow(
        [{"use": name, "params": {"user_token": "{{ secret('DIFY_USER') }}", "mode": "strict", "retries": 2}}]
    )

    await AIGateway(environ={"DIFY_USER": "u-token-123456"}).answer(call("hello"), flow, AT)

    assert record.built[0]["params"] == {"user_token": "u-token-123456", "mode": "strict", "retries": 2}


async def test_an_unset_params_secret_is_misconfigured_naming_it() -> None:
    name, record = fake(answers("never"))
    flow = compile_flow([{"use": name, "params": {"user_token": "{{ secret('DIFY_USER') }}"}}])

    result = await AIGateway(environ={}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIFailed)
    assert outcomes(result) == [(name, "misconfigured")]
    assert "DIFY_USER" in result.attempts[0]["detail"]
    assert record.built == []


async def test_keys_in_provider_errors_never_reach_the_result() -> None:
    token = "u-token-998877"
    leaky, _ = fake(raises(lambda params: Unauthorized(f"HTTP 401: key {params['api_key']} is invalid")))
    buggy, _ = fake(raises(lambda params: RuntimeError(f"bad payload {params['params']['user_token']}")))
    profiles = {"main": {"provider": leaky, "api_key": "${env:TEST_KEY}"}}
    flow = compile_flow(
        [{"use": leaky, "profile": "main"}, {"use": buggy, "params": {"user_token": "{{ secret('TOKEN') }}"}}]
    )

    result = await AIGateway(profiles=profiles, environ={"TEST_KEY": KEY, "TOKEN": token}).answer(
        call("hello"), flow, AT
    )

    assert isinstance(result, AIFailed)
    assert outcomes(result) == [(f"{leaky}/main", "unauthorized"), (buggy, "error")]
    for text in (result.detail, repr(result.attempts)):
        assert KEY not in text
        assert token not in text
    assert result.attempts[0]["detail"] == "HTTP 401: key *** is invalid"
    assert result.attempts[1]["detail"] == "RuntimeError: bad payload ***"


async def test_a_factory_rejecting_a_key_does_not_reveal_it() -> None:
    name = f"picky_{uuid.uuid4().hex[:8]}"

    @register_provider(name)
    def picky(params: Any) -> Any:
        raise ValueError(f"key {params['api_key']} has the wrong format")

    profiles = {"main": {"provider": name, "api_key": "${env:TEST_KEY}"}}
    flow = compile_flow([{"use": name, "profile": "main"}])

    result = await AIGateway(profiles=profiles, environ={"TEST_KEY": KEY}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIFailed)
    assert outcomes(result) == [(f"{name}/main", "misconfigured")]
    assert "wrong format" in result.attempts[0]["detail"]
    assert KEY not in repr(result)


# -- vendor sessions and context -----------------------------------------------------


async def test_vendor_conversation_ids_go_out_and_come_back_by_label() -> None:
    name, record = fake(answers("Hi again.", vendor_conversation_id="v1"))
    flow = compile_flow([{"use": name}])
    gateway = AIGateway(environ={})

    first = await gateway.answer(call("hello"), flow, AT)
    second = await gateway.answer(call("still there?", sessions={name: "v1"}), flow, AT)
    third = await gateway.answer(call("and now?", sessions={"other_provider": "zzz"}), flow, AT)

    assert isinstance(first, AIResult)
    assert first.sessions == {name: "v1"}
    assert [r.vendor_conversation_id for r in record.requests] == [None, "v1", None]
    assert isinstance(second, AIResult) and isinstance(third, AIResult)
    assert len(record.built) == 1  # built once, kept for the worker's life


async def test_an_answer_without_a_vendor_id_keeps_no_session() -> None:
    name, _ = fake(answers("Hi."))
    flow = compile_flow([{"use": name}])

    result = await AIGateway(environ={}).answer(call("hello"), flow, AT)

    assert isinstance(result, AIResult)
    assert result.sessions == {}


async def test_the_current_message_is_sent_once_not_in_the_context() -> None:
    name, record = fake(answers("It left our warehouse today."))
    flow = compile_flow([{"use": name}])
    history = [
        {"role": "user", "text": "Hi"},
        {"role": "bot", "text": "Hello! How can I help?"},
        {"role": "system", "text": "conversation assigned to the queue"},
        {"role": "user", "text": "Where is my parcel?"},
    ]

    await AIGateway(environ={}).answer(call("Where is my parcel?", history=history), flow, AT)

    [request] = record.requests
    assert request.message == "Where is my parcel?"
    assert request.context == (Turn("user", "Hi"), Turn("assistant", "Hello! How can I help?"))


async def test_a_repeated_earlier_message_stays_in_the_context() -> None:
    name, record = fake(answers("Done."))
    flow = compile_flow([{"use": name}])
    history = [
        {"role": "user", "text": "yes"},
        {"role": "bot", "text": "Shall I also cancel order 2?"},
        {"role": "user", "text": "yes"},
    ]

    await AIGateway(environ={}).answer(call("yes", history=history), flow, AT)

    assert record.requests[0].context == (Turn("user", "yes"), Turn("assistant", "Shall I also cancel order 2?"))


async def test_the_chain_context_settings_apply() -> None:
    name, record = fake(answers("ok"))
    flow = compile_flow([{"use": name}], context={"strategy": "recent", "max_turns": 2})
    history = [{"role": "user" if i % 2 == 0 else "bot", "text": f"turn number {i}"} for i in range(10)]

    await AIGateway(environ={}).answer(
        call("next question", history=[*history, {"role": "user", "text": "next question"}]), flow, AT
    )

    assert record.requests[0].context == (Turn("user", "turn number 8"), Turn("assistant", "turn number 9"))


async def test_the_vendor_user_id_is_stable_and_reveals_nothing() -> None:
    name, record = fake(answers("ok"))
    flow = compile_flow([{"use": name}])
    gateway = AIGateway(environ={})

    await gateway.answer(call("a"), flow, AT, conversation_id="conv-42")
    await gateway.answer(call("b"), flow, AT, conversation_id="conv-42")
    await gateway.answer(call("c"), flow, AT, conversation_id="conv-43")

    users = [r.end_user for r in record.requests]
    assert users[0] == users[1] != users[2]
    assert all("conv-4" not in user for user in users)
    assert record.requests[0].conversation_id == "conv-42"


# -- classify ------------------------------------------------------------------------


async def test_classify_asks_the_model_for_an_intent_name(kb_dir: Path) -> None:
    name, record = fake(answers("Refund."))
    flow = compile_flow([{"use": name}, {"use": "faq", "knowledge": "kb.yaml"}])

    result = await AIGateway(environ={}, knowledge_dir=kb_dir).answer(
        call("the jacket was torn, I'd like my 40 euros", purpose="classify", intents=INTENTS), flow, AT
    )

    assert isinstance(result, AIResult)
    assert result.text == "refund"
    assert result.provider == name
    [request] = record.requests
    assert request.system is not None
    assert "refund" in request.system and "shipping" in request.system
    assert outcomes(result) == [(name, "ok")]  # the offline FAQ cannot classify and is not asked


async def test_classify_with_the_model_answering_other() -> None:
    name, _ = fake(answers("_other"))
    flow = compile_flow([{"use": name}])

    result = await AIGateway(environ={}).answer(
        call("Do you like cats?", purpose="classify", intents=INTENTS), flow, AT
    )

    assert isinstance(result, AIResult)
    assert result.text == "_other"


async def test_classify_with_only_offline_providers_uses_keywords(kb_dir: Path) -> None:
    flow = compile_flow([{"use": "faq", "knowledge": "kb.yaml"}, {"use": "echo"}])

    result = await AIGateway(environ={}, knowledge_dir=kb_dir).answer(
        call("where is my parcel? it is late", purpose="classify", intents=INTENTS), flow, AT
    )

    assert isinstance(result, AIResult)
    assert result.text == "shipping"
    assert result.provider == "keywords"
    assert result.attempts == ()


async def test_classify_falls_back_to_keywords_when_the_model_names_no_intent() -> None:
    name, _ = fake(answers("The customer seems to want their money back."))
    flow = compile_flow([{"use": name}])

    result = await AIGateway(environ={}).answer(
        call("refund please, I want my money back", purpose="classify", intents=INTENTS), flow, AT
    )

    assert isinstance(result, AIResult)
    assert result.text == "refund"
    assert result.provider == "keywords"
    assert outcomes(result) == [(name, "ok")]


async def test_classify_with_the_model_down_uses_keywords_without_asking_the_faq(kb_dir: Path) -> None:
    down, _ = fake(raises(lambda params: Unavailable("HTTP 503")))
    flow = compile_flow([{"use": down}, {"use": "faq", "knowledge": "kb.yaml"}])

    result = await AIGateway(environ={}, knowledge_dir=kb_dir).answer(
        call("How do I return an item? I want my money back", purpose="classify", intents=INTENTS), flow, AT
    )

    assert isinstance(result, AIResult)
    assert result.text == "refund"
    assert result.provider == "keywords"
    assert outcomes(result) == [(down, "unavailable")]  # an FAQ answer is not an intent name
