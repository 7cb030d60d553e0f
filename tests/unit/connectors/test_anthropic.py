"""The Anthropic provider against a local Messages API emulator."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ai.anthropic import AnthropicProvider, build_messages, create
from engine.ai.registry import build_provider
from engine.ai.types import (
    AIReply,
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
from tests.vendors.anthropic import AnthropicEmulator
from tests.vendors.base import Recorded, Reply

KEY = "sk-ant-api03-test-key-0123456789"
MODEL = "claude-sonnet-4-5"
REQUEST = AIRequest(
    message="Where is my parcel?",
    system="You are the shop's helpful assistant.",
    context=(Turn("user", "Hi"), Turn("assistant", "Hello! How can I help?")),
    conversation_id="conv-1",
)


@pytest.fixture(name="server")
def fx_server() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(reply_text="It arrives tomorrow.", expected_key=KEY) as server:
        assert isinstance(server, AnthropicEmulator)
        yield server


def provider(server: AnthropicEmulator, **params: Any) -> AnthropicProvider:
    return create({"base_url": server.url, "api_key": KEY, "model": MODEL, "profile": "test", **params})


# -- the request -------------------------------------------------------------------


async def test_request_is_a_messages_call_with_key_version_and_conversation(server: AnthropicEmulator) -> None:
    await provider(server, temperature=0.2, params={"top_p": 0.9, "metadata": {"user_id": "c-1"}}).reply(REQUEST)

    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 1024,
        "temperature": 0.2,
        "system": "You are the shop's helpful assistant.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Where is my parcel?"},
        ],
        "top_p": 0.9,
        "metadata": {"user_id": "c-1"},
    }


async def test_per_call_params_override_the_profile(server: AnthropicEmulator) -> None:
    configured = provider(server, max_tokens=300, temperature=0.7, anthropic_version="2024-01-01")
    request = AIRequest(message="Hi", params={"model": "claude-haiku-4-5", "max_tokens": 64, "temperature": 0})

    await configured.reply(request)

    [sent] = server.requests
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.json == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_without_system_prompt_or_temperature_neither_is_sent(server: AnthropicEmulator) -> None:
    await provider(server).reply(AIRequest(message="Hi"))

    assert server.requests[0].json == {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_extra_params_cannot_replace_the_conversation(server: AnthropicEmulator) -> None:
    extra = {"messages": [], "system": "ignore the shop", "model": "other", "stop_sequences": ["END"]}

    await provider(server, params=extra).reply(AIRequest(message="Hi", system="Be kind."))

    sent = server.requests[0].json
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert (sent["system"], sent["model"], sent["stop_sequences"]) == ("Be kind.", MODEL, ["END"])


def test_roles_alternate_from_user_as_the_api_requires() -> None:
    context = (
        Turn("assistant", "Welcome to the shop!"),  # a greeting before the customer spoke: dropped
        Turn("assistant", "Ask me anything."),
        Turn("user", "Hi"),
        Turn("user", "I need help"),
        Turn("assistant", "Sure, with what?"),
        Turn("agent", "Agent Maria here, I'll take over."),  # a human agent speaks for the business
        Turn("user", "   "),  # blank turns are rejected by the API
        Turn("user", "My order 1234"),
    )

    assert build_messages(context, "It has not arrived") == [
        {"role": "user", "content": "Hi\n\nI need help"},
        {"role": "assistant", "content": "Sure, with what?\n\nAgent Maria here, I'll take over."},
        {"role": "user", "content": "My order 1234\n\nIt has not arrived"},
    ]


async def test_merged_context_is_accepted_by_the_emulator(server: AnthropicEmulator) -> None:
    # The emulator rejects what the real API rejects (a leading assistant turn, two turns of one role).
    request = AIRequest(message="Still waiting", context=(Turn("assistant", "Hello!"), Turn("user", "Where is it?")))

    reply = await provider(server).reply(request)

    assert reply.text == "It arrives tomorrow."
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Where is it?\n\nStill waiting"}]


# -- the reply ---------------------------------------------------------------------


async def test_reply_carries_text_usage_and_model(server: AnthropicEmulator) -> None:
    reply = await provider(server).reply(REQUEST)

    assert reply.text == "It arrives tomorrow."
    # The emulator counts words: 6 (system) + 1 + 5 + 4 (messages) in, 3 out.
    assert reply.usage == Usage(prompt_tokens=16, completion_tokens=3)
    assert reply.model == MODEL
    assert reply.latency_ms > 0
    assert (reply.confidence, reply.vendor_conversation_id, reply.refused) == (None, None, False)


async def test_only_text_blocks_make_the_answer(server: AnthropicEmulator) -> None:
    server.mode = "thinking"  # a thinking block, then the answer in two text blocks

    reply = await provider(server).reply(REQUEST)

    assert reply.text == "It arrives tomorrow."
    assert "customer asks" not in reply.text


async def test_refusal_is_flagged(server: AnthropicEmulator) -> None:
    server.mode = "refusal"

    reply = await provider(server).reply(REQUEST)

    assert reply.refused is True


async def test_empty_answer_is_empty_text(server: AnthropicEmulator) -> None:
    server.mode = "empty"

    reply = await provider(server).reply(REQUEST)

    assert reply == AIReply(text="", usage=Usage(16, 0), model=MODEL, latency_ms=reply.latency_ms)


# -- failures ----------------------------------------------------------------------


async def test_wrong_key_is_unauthorized_and_never_leaks(server: AnthropicEmulator) -> None:
    wrong = "sk-ant-api03-wrong-key-9876543210"

    with pytest.raises(Unauthorized) as caught:
        await create({"base_url": server.url, "api_key": wrong, "model": MODEL}).reply(REQUEST)

    assert str(caught.value) == "anthropic: HTTP 401 (authentication_error)"
    assert server.requests[0].headers["x-api-key"] == wrong  # the emulator echoed it in its error body


async def test_scripted_401_echoing_the_key_does_not_leak_it(server: AnthropicEmulator) -> None:
    server.mode = "unauthorized"

    with pytest.raises(Unauthorized) as caught:
        await provider(server).reply(REQUEST)

    assert str(caught.value) == "anthropic: HTTP 401 (authentication_error)"
    assert KEY not in str(caught.value)
    assert "parcel" not in str(caught.value)  # nor the request


async def test_rate_limit_carries_retry_after(server: AnthropicEmulator) -> None:
    server.mode, server.retry_after = "rate_limited", 7

    with pytest.raises(RateLimited) as caught:
        await provider(server).reply(REQUEST)

    assert caught.value.retry_after == 7
    assert str(caught.value) == "anthropic: HTTP 429 (rate_limit_error)"


async def test_server_error_is_unavailable(server: AnthropicEmulator) -> None:
    server.mode = "server_error"

    with pytest.raises(Unavailable, match=r"^anthropic: HTTP 500 \(api_error\)$"):
        await provider(server).reply(REQUEST)


async def test_overloaded_529_is_unavailable_and_the_next_call_succeeds(server: AnthropicEmulator) -> None:
    server.then("overloaded")
    anthropic = provider(server)

    with pytest.raises(Unavailable, match=r"^anthropic: HTTP 529 \(overloaded_error\)$") as caught:
        await anthropic.reply(REQUEST)
    reply = await anthropic.reply(REQUEST)

    assert caught.value.retryable is True
    assert reply.text == "It arrives tomorrow."


async def test_invalid_request_is_rejected(server: AnthropicEmulator) -> None:
    server.mode = "invalid_request"

    with pytest.raises(Rejected, match=r"^anthropic: HTTP 400 \(invalid_request_error\)$"):
        await provider(server).reply(REQUEST)


async def test_malformed_answer_is_a_bad_response(server: AnthropicEmulator) -> None:
    server.mode = "malformed"

    with pytest.raises(BadResponse, match="not JSON"):
        await provider(server).reply(REQUEST)


async def test_json_without_content_is_a_bad_response(
    server: AnthropicEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An OpenAI-style answer, as from a base_url that points at the wrong vendor.
    def openai_answer(request: Recorded, text: str, **_: Any) -> Reply:
        return Reply(200, {"choices": [{"message": {"content": text}}]})

    monkeypatch.setattr(server, "answer", openai_answer)

    with pytest.raises(BadResponse, match="no `content` list"):
        await provider(server).reply(REQUEST)


async def test_a_slow_vendor_is_cancelled_promptly() -> None:
    with AnthropicEmulator(delay=2) as server:
        server.mode = "timeout"
        started = time.perf_counter()

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(create({"base_url": server.url, "api_key": KEY, "model": MODEL}).reply(REQUEST), 0.3)

        assert time.perf_counter() - started < 1.0


# -- configuration -----------------------------------------------------------------


def test_missing_api_key_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match=r"^anthropic: `api_key` is not configured"):
        create({"model": MODEL})


async def test_missing_model_is_a_config_error_at_call_time(server: AnthropicEmulator) -> None:
    anthropic = create({"base_url": server.url, "api_key": KEY})

    with pytest.raises(ProviderConfigError, match=r"^anthropic: `model` is not configured"):
        await anthropic.reply(REQUEST)
    assert server.requests == []


def test_default_base_url_is_anthropics_api() -> None:
    assert create({"api_key": KEY, "model": MODEL}).url == "https://api.anthropic.com/v1/messages"
    assert create({"api_key": KEY, "base_url": "http://proxy:8080/"}).url == "http://proxy:8080/v1/messages"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"base_url": "api.anthropic.com"}, "`base_url` must be an http(s) URL"),
        ({"max_tokens": 0}, "`max_tokens` must be a positive whole number"),
        ({"max_tokens": "many"}, "`max_tokens` must be a positive whole number"),
        ({"temperature": 1.5}, "`temperature` must be a number from 0 to 1"),
        ({"params": ["top_p"]}, "`params` must be a mapping"),
    ],
)
def test_bad_settings_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=re.escape(message)):
        create({"api_key": KEY, "model": MODEL, **params})


def test_registry_builds_it_by_name() -> None:
    assert isinstance(build_provider("anthropic", {"api_key": KEY, "model": MODEL}), AnthropicProvider)
