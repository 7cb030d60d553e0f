"""The FastGPT provider against a local FastGPT app: the request, the chat kept by chatId, each failure."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.ai.fastgpt import FastGPTProvider, chat_id, create, raise_for_envelope
from engine.ai.registry import build_provider
from engine.ai.types import (
    AIRequest,
    BadResponse,
    ProviderConfigError,
    ProviderError,
    RateLimited,
    Rejected,
    Turn,
    Unauthorized,
    Unavailable,
    Usage,
)
from tests.vendors.fastgpt import FastGPTEmulator

#: ``flowdesk-`` and the first 32 hex digits of sha256("conv-1")
CHAT_ID = "flowdesk-" + hashlib.sha256(b"conv-1").hexdigest()[:32]

KEY = "fastgpt-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9"

REQUEST = AIRequest(
    message="导演是谁？",
    system="You are the support assistant of Acme Shop.",
    context=(Turn("user", "Tell me about Suzume"), Turn("assistant", "It is a 2022 film.")),
    conversation_id="conv-1",
    user="visitor-77",
)


@pytest.fixture(scope="module", name="emulator")
def fx_emulator() -> Iterator[FastGPTEmulator]:
    # One server for the module: stopping one takes half a second.
    emulator = FastGPTEmulator(reply_text="电影《铃芽之旅》的导演是新海诚。", delay=2)
    with emulator:
        yield emulator


@pytest.fixture(name="server")
def fx_server(emulator: FastGPTEmulator) -> FastGPTEmulator:
    emulator.reset()
    return emulator


def provider(server: FastGPTEmulator, **params: Any) -> FastGPTProvider:
    return create({"base_url": f"{server.url}/api", "api_key": KEY, **params})


async def test_request_sends_only_the_current_message_under_the_chat_id(server: FastGPTEmulator) -> None:
    ai = provider(
        server,
        model="ignored-by-fastgpt",
        temperature=0.3,
        variables={"shop": "Acme", "tier": "gold"},
        params={"responseChatItemId": "item-1"},
    )

    await ai.reply(REQUEST)

    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/api/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    # FastGPT keeps the history by chatId: system prompt and earlier turns are not sent.
    assert sent.json == {
        "responseChatItemId": "item-1",
        "chatId": CHAT_ID,
        "stream": False,
        "detail": False,
        "messages": [{"role": "user", "content": "导演是谁？"}],
        "variables": {"shop": "Acme", "tier": "gold"},
        "customUid": "visitor-77",
    }


async def test_reply_has_text_usage_and_the_chat_id(server: FastGPTEmulator) -> None:
    reply = await provider(server).reply(REQUEST)

    assert reply.text == "电影《铃芽之旅》的导演是新海诚。"
    assert reply.usage == Usage(prompt_tokens=1, completion_tokens=1)  # FastGPT's placeholders
    assert reply.model is None  # FastGPT answers with an empty model
    assert reply.vendor_conversation_id == CHAT_ID
    assert reply.confidence is None
    assert reply.refused is False


async def test_the_chat_continues_under_the_returned_id(server: FastGPTEmulator) -> None:
    ai = provider(server)
    first = await ai.reply(AIRequest(message="Hi", conversation_id="c-9"))

    second = await ai.reply(
        AIRequest(message="And the order?", conversation_id="c-9", vendor_conversation_id=first.vendor_conversation_id)
    )

    assert second.vendor_conversation_id == first.vendor_conversation_id
    assert [m for m, _ in server.chats[first.vendor_conversation_id or ""]] == ["user", "assistant"] * 2
    assert [r.json["chatId"] for r in server.requests] == [first.vendor_conversation_id] * 2


async def test_a_vendor_id_from_elsewhere_is_used_as_given(server: FastGPTEmulator) -> None:
    reply = await provider(server).reply(AIRequest(message="Hi", conversation_id="c-1", vendor_conversation_id="abc"))

    assert server.requests[0].json["chatId"] == "abc"
    assert reply.vendor_conversation_id == "abc"


def test_chat_ids_are_opaque_stable_and_within_fastgpt_limit() -> None:
    long_id = "x" * 400

    derived = chat_id(AIRequest(message="Hi", conversation_id=long_id))

    assert len(derived) < 250
    assert long_id[:20] not in derived
    assert derived == chat_id(AIRequest(message="Hi", conversation_id=long_id))
    assert derived != chat_id(AIRequest(message="Hi", conversation_id="y" * 400))


def test_without_a_conversation_each_call_has_its_own_chat() -> None:
    assert chat_id(AIRequest(message="Hi")) != chat_id(AIRequest(message="Hi"))


@pytest.mark.parametrize("suffix", ["/api", "/api/", "/api/v1", "/api/v1/"])
async def test_base_url_with_or_without_v1(server: FastGPTEmulator, suffix: str) -> None:
    ai = create({"base_url": f"{server.url}{suffix}", "api_key": KEY})

    await ai.reply(REQUEST)

    assert server.requests[0].path == "/api/v1/chat/completions"


async def test_empty_answer_is_empty_text(server: FastGPTEmulator) -> None:
    server.mode = "empty"

    reply = await provider(server).reply(REQUEST)

    assert reply.text == ""


async def test_failed_workflow_is_unavailable(server: FastGPTEmulator) -> None:
    server.workflow_error = "AI model request failed"

    with pytest.raises(Unavailable, match="workflow failed") as caught:
        await provider(server).reply(REQUEST)

    assert "AI model request failed" not in str(caught.value)


@pytest.mark.parametrize("status", [500, 200, 401])
async def test_wrong_key_is_unauthorized_without_leaking_it(server: FastGPTEmulator, status: int) -> None:
    # Current FastGPT answers 500, older versions 200; 401 would come from a gateway.
    server.mode = "unauthorized"
    server.auth_failure_status = status

    with pytest.raises(Unauthorized) as caught:
        await provider(server).reply(REQUEST)

    assert "unAuthApiKey" in str(caught.value)
    assert KEY not in str(caught.value)
    assert not caught.value.retryable


async def test_account_key_is_unauthorized_and_says_so(server: FastGPTEmulator) -> None:
    server.account_keys.add(KEY)

    with pytest.raises(Unauthorized, match="account key") as caught:
        await provider(server).reply(REQUEST)

    assert KEY not in str(caught.value)


async def test_rate_limit_carries_retry_after(server: FastGPTEmulator) -> None:
    server.mode = "rate_limited"
    server.retry_after = 12

    with pytest.raises(RateLimited) as caught:
        await provider(server).reply(REQUEST)

    assert caught.value.retry_after == 12


async def test_server_error_is_unavailable(server: FastGPTEmulator) -> None:
    server.mode = "server_error"

    with pytest.raises(Unavailable) as caught:
        await provider(server).reply(REQUEST)

    assert "服务器发生错误" not in str(caught.value)


async def test_malformed_answer_is_bad_response(server: FastGPTEmulator) -> None:
    server.mode = "malformed"

    with pytest.raises(BadResponse):
        await provider(server).reply(REQUEST)


async def test_wrong_path_is_rejected(server: FastGPTEmulator) -> None:
    ai = create({"base_url": f"{server.url}/fastgpt", "api_key": KEY})

    with pytest.raises(Rejected, match="404"):
        await ai.reply(REQUEST)


@pytest.mark.parametrize(
    ("status", "envelope", "error"),
    [
        (500, {"code": 403, "statusText": "unAuthorization", "message": "凭证错误"}, Unauthorized),
        (500, {"code": 506000, "statusText": "openapiUnExist", "message": "key not found"}, Unauthorized),
        (500, {"code": 510, "statusText": "insufficientQuota", "message": "账号余额不足"}, Rejected),
        (200, {"code": 506002, "statusText": "openapiExceedLimit", "message": "limit"}, Rejected),
        (200, {"code": 500, "statusText": "error", "message": "boom"}, Unavailable),
    ],
)
def test_fastgpt_envelopes_map_to_errors(status: int, envelope: dict[str, Any], error: type[ProviderError]) -> None:
    response = httpx.Response(status, json={**envelope, "data": None})

    with pytest.raises(error) as caught:
        raise_for_envelope(response)

    assert envelope["message"] not in str(caught.value)


def test_a_plain_server_error_is_left_to_the_status() -> None:
    raise_for_envelope(httpx.Response(500, json={"code": 500, "statusText": "error", "message": "messages is empty"}))
    raise_for_envelope(httpx.Response(502, text="<html>Bad Gateway</html>"))


async def test_slow_vendor_is_cancelled_by_the_caller(server: FastGPTEmulator) -> None:
    server.mode = "timeout"
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider(server).reply(REQUEST), 0.3)

    assert time.monotonic() - started < 1.0


async def test_unreachable_server_is_unavailable() -> None:
    ai = create({"base_url": "http://127.0.0.1:9/api", "api_key": KEY})

    with pytest.raises(Unavailable) as caught:
        await ai.reply(REQUEST)

    assert "127.0.0.1" not in str(caught.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"api_key": KEY}, "`base_url` is not configured"),
        ({"base_url": "https://fastgpt.example.com/api"}, "`api_key` is not configured"),
        ({"base_url": "fastgpt.example.com/api", "api_key": KEY}, "`base_url` must be an http"),
        ({"base_url": "https://fastgpt.example.com/api", "api_key": KEY, "variables": ["a"]}, "`variables` must be"),
    ],
)
def test_bad_settings_are_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        create(params)


def test_registered_as_fastgpt() -> None:
    provider = build_provider("fastgpt", {"base_url": "https://fastgpt.example.com/api", "api_key": KEY})

    assert isinstance(provider, FastGPTProvider)
