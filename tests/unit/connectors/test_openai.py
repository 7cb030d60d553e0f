"""The OpenAI provider against a local Chat Completions server: the request it sends, the reply, each failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ai.openai import DEFAULT_BASE_URL, OpenAIProvider, create
from engine.ai.registry import build_provider
from engine.ai.types import (
    AIRequest,
    BadResponse,
    ProviderConfigError,
    RateLimited,
    Rejected,
    Turn,
    Unauthorized,
    Unavailable,
    Usage,
)
from tests.vendors.openai import OpenAIEmulator

KEY = "sk-test-9f8e7d6c5b4a3210"

REQUEST = AIRequest(
    message="Where is my order 1042?",
    system="You are the support assistant of Acme Shop.",
    context=(
        Turn("user", "Hi, I ordered a lamp last week"),
        Turn("assistant", "Thanks! What is the order number?"),
        Turn("agent", "I am looking into it."),
    ),
    conversation_id="conv-1",
)


@pytest.fixture(scope="module", name="emulator")
def fx_emulator() -> Iterator[OpenAIEmulator]:
    # One server for the module: stopping one takes half a second.
    emulator = OpenAIEmulator(reply_text="It ships tomorrow.", delay=2)
    with emulator:
        yield emulator


@pytest.fixture(name="server")
def fx_server(emulator: OpenAIEmulator) -> OpenAIEmulator:
    emulator.reset()
    return emulator


def provider(server: OpenAIEmulator, **params: Any) -> OpenAIProvider:
    return create({"base_url": f"{server.url}/v1", "api_key": KEY, "model": "gpt-4o-mini", **params})


async def test_request_carries_key_model_and_the_conversation_in_order(server: OpenAIEmulator) -> None:
    ai = provider(server, temperature=0.2, params={"top_p": 0.9, "seed": 7})

    await ai.reply(REQUEST)

    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "top_p": 0.9,
        "seed": 7,
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are the support assistant of Acme Shop."},
            {"role": "user", "content": "Hi, I ordered a lamp last week"},
            {"role": "assistant", "content": "Thanks! What is the order number?"},
            {"role": "assistant", "content": "I am looking into it."},
            {"role": "user", "content": "Where is my order 1042?"},
        ],
        "temperature": 0.2,
    }


async def test_reply_has_text_usage_and_the_model_that_answered(server: OpenAIEmulator) -> None:
    reply = await provider(server).reply(REQUEST)

    assert reply.text == "It ships tomorrow."
    # The emulator counts words: 3 + (8+4) + (7+4) + (6+4) + (5+4) + (5+4) prompt, 3 words of answer.
    assert reply.usage == Usage(prompt_tokens=54, completion_tokens=3)
    assert reply.model == "gpt-4o-mini-2024-08-06"
    assert reply.refused is False
    assert reply.confidence is None
    assert reply.latency_ms > 0


async def test_per_call_params_override_the_profile(server: OpenAIEmulator) -> None:
    ai = provider(server, temperature=0.2, max_tokens=100, params={"temperature": 1.5})
    request = AIRequest(message="Hi", params={"model": "gpt-4.1", "max_tokens": 30})

    await ai.reply(request)

    assert server.requests[0].json == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_tokens": 30,
    }


async def test_extra_params_cannot_replace_model_messages_or_stream(server: OpenAIEmulator) -> None:
    ai = provider(server, params={"model": "other", "messages": [], "stream": True, "user": "u-1"})

    await ai.reply(AIRequest(message="Hi"))

    body = server.requests[0].json
    assert body == {"user": "u-1", "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


async def test_extra_headers_and_trailing_slash(server: OpenAIEmulator) -> None:
    ai = create({"base_url": f"{server.url}/v1/", "api_key": KEY, "model": "m", "headers": {"api-key": "azure-k"}})

    await ai.reply(AIRequest(message="Hi"))

    [sent] = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["api-key"] == "azure-k"
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_local_server_without_key_when_key_is_optional(server: OpenAIEmulator) -> None:
    ai = create({"base_url": f"{server.url}/v1", "model": "llama3.2", "api_key_optional": True})

    reply = await ai.reply(AIRequest(message="Hi"))

    assert reply.text == "It ships tomorrow."
    assert "authorization" not in server.requests[0].headers


async def test_refusal_is_flagged(server: OpenAIEmulator) -> None:
    server.refusal = "I'm sorry, I can't help with that."

    reply = await provider(server).reply(REQUEST)

    assert reply.refused is True
    assert reply.text == ""


async def test_content_filter_is_a_refusal(server: OpenAIEmulator) -> None:
    server.finish_reason = "content_filter"

    reply = await provider(server).reply(REQUEST)

    assert reply.refused is True


async def test_empty_answer_is_empty_text(server: OpenAIEmulator) -> None:
    server.mode = "empty"

    reply = await provider(server).reply(REQUEST)

    assert reply.text == ""
    assert reply.refused is False


async def test_wrong_key_is_unauthorized_without_leaking_it(server: OpenAIEmulator) -> None:
    server.mode = "unauthorized"

    with pytest.raises(Unauthorized) as caught:
        await provider(server).reply(REQUEST)

    assert "invalid_api_key" in str(caught.value)
    assert KEY not in str(caught.value)
    assert "Incorrect API key" not in str(caught.value)


async def test_rate_limit_carries_retry_after(server: OpenAIEmulator) -> None:
    server.mode = "rate_limited"
    server.retry_after = 7

    with pytest.raises(RateLimited) as caught:
        await provider(server).reply(REQUEST)

    assert caught.value.retry_after == 7
    assert "rate_limit_exceeded" in str(caught.value)


async def test_server_error_is_unavailable(server: OpenAIEmulator) -> None:
    server.mode = "server_error"

    with pytest.raises(Unavailable):
        await provider(server).reply(REQUEST)


async def test_recovers_after_a_failure(server: OpenAIEmulator) -> None:
    server.then("server_error")
    ai = provider(server)

    with pytest.raises(Unavailable):
        await ai.reply(REQUEST)
    assert (await ai.reply(REQUEST)).text == "It ships tomorrow."


async def test_malformed_answer_is_bad_response(server: OpenAIEmulator) -> None:
    server.mode = "malformed"

    with pytest.raises(BadResponse):
        await provider(server).reply(REQUEST)


@pytest.mark.parametrize(
    "data",
    [
        {"id": "x", "choices": []},
        {"id": "x"},
        {"choices": [{"index": 0, "finish_reason": "stop"}]},
        {"choices": [{"message": {"role": "assistant", "content": 42}}]},
        ["not", "an", "object"],
    ],
)
def test_answers_outside_the_format_are_bad_responses(data: Any) -> None:
    from connectors.ai.openai import parse_reply

    with pytest.raises(BadResponse):
        parse_reply(data, 1.0)


async def test_wrong_path_is_rejected(server: OpenAIEmulator) -> None:
    ai = create({"base_url": server.url, "api_key": KEY, "model": "m"})  # the /v1 is missing

    with pytest.raises(Rejected, match="404"):
        await ai.reply(REQUEST)


async def test_slow_vendor_is_cancelled_by_the_caller(server: OpenAIEmulator) -> None:
    server.mode = "timeout"
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider(server).reply(REQUEST), 0.3)

    assert time.monotonic() - started < 1.0


def test_missing_key_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="`api_key` is not configured"):
        create({"model": "gpt-4o-mini"})


async def test_missing_model_is_a_config_error(server: OpenAIEmulator) -> None:
    ai = create({"base_url": f"{server.url}/v1", "api_key": KEY})

    with pytest.raises(ProviderConfigError, match="`model` is not configured"):
        await ai.reply(REQUEST)
    assert server.requests == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"base_url": "api.openai.com/v1"}, "`base_url` must be an http"),
        ({"headers": {"api-key": 1}}, "`headers` must map"),
        ({"params": ["top_p"]}, "`params` must be a mapping"),
    ],
)
def test_bad_settings_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        create({"api_key": KEY, "model": "m", **params})


def test_default_base_url_is_openai() -> None:
    ai = create({"api_key": KEY, "model": "m"})

    assert ai.url == f"{DEFAULT_BASE_URL}/chat/completions"


def test_registered_as_openai() -> None:
    assert isinstance(build_provider("openai", {"api_key": KEY, "model": "m"}), OpenAIProvider)
