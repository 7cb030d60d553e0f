"""The Dify provider against a local Dify: the exact request, the answer, conversations and failures."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ai.dify import DEFAULT_BASE_URL, DifyProvider, create
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
from tests.vendors.dify import DifyEmulator

KEY = "app-s3cr3t-dify-key-0123456789"


@pytest.fixture(name="server")
def fx_server() -> Iterator[DifyEmulator]:
    with DifyEmulator(reply_text="Returns are free within 30 days.", delay=2) as server:
        yield server


def provider(server: DifyEmulator, **params: Any) -> DifyProvider:
    return create({"base_url": server.url, "api_key": KEY, "profile": f"dify-{server.url}", **params})


def ask(message: str = "Can I return my shoes?", **fields: Any) -> AIRequest:
    return AIRequest(message=message, **{"user": "customer-7", "conversation_id": "conv-1", **fields})


# -- the request ---------------------------------------------------------------------


async def test_sends_dify_chat_message_with_only_the_current_message(server: DifyEmulator) -> None:
    dify = provider(server, inputs={"shop": "demo"}, params={"auto_generate_name": False})
    request = ask(
        system="You are the shop's assistant.",
        context=(Turn("user", "Hi"), Turn("assistant", "Hello! How can I help?")),
        params={"model": "gpt-4o", "temperature": 0.2, "inputs": {"locale": "en"}},
    )

    await dify.reply(request)

    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/chat-messages")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    # No system prompt, no earlier turns, no model: the Dify app owns its prompt,
    # its history (by conversation_id) and its model.
    assert sent.json == {
        "inputs": {"shop": "demo", "locale": "en"},
        "query": "Can I return my shoes?",
        "response_mode": "blocking",
        "conversation_id": "",
        "user": "customer-7",
        "auto_generate_name": False,
    }


async def test_extra_params_cannot_take_over_the_conversation_fields(server: DifyEmulator) -> None:
    dify = provider(server, params={"response_mode": "streaming", "user": "someone-else", "workflow_id": "wf-1"})

    await dify.reply(ask())

    body = server.requests[0].json
    assert (body["response_mode"], body["user"], body["workflow_id"]) == ("blocking", "customer-7", "wf-1")


async def test_user_is_derived_from_the_conversation_when_unknown(server: DifyEmulator) -> None:
    dify = provider(server)

    await dify.reply(ask(user="", conversation_id="web:visitor-1"))
    await dify.reply(ask(user="", conversation_id="web:visitor-1"))
    await dify.reply(ask(user="", conversation_id="web:visitor-2"))

    users = [r.json["user"] for r in server.requests]
    assert users[0] == users[1] != users[2]
    assert users[0].startswith("flowdesk-")
    assert "visitor" not in users[0]  # Flowdesk's ids do not leave as they are


async def test_base_url_with_a_path_and_trailing_slash(server: DifyEmulator) -> None:
    dify = create({"base_url": f"{server.url}/v1/", "api_key": KEY})

    await dify.reply(ask())

    assert server.requests[0].path == "/v1/chat-messages"


# -- the answer ----------------------------------------------------------------------


async def test_reply_carries_text_usage_and_dify_conversation(server: DifyEmulator) -> None:
    reply = await provider(server).reply(ask())

    assert reply.text == "Returns are free within 30 days."
    assert reply.usage == Usage(prompt_tokens=63, completion_tokens=17)
    assert reply.model is None  # Dify's blocking answer names no model
    assert reply.confidence is None  # no knowledge base answered
    assert reply.vendor_conversation_id in server.conversations
    assert reply.latency_ms > 0
    assert not reply.refused


async def test_next_turn_continues_difys_conversation(server: DifyEmulator) -> None:
    dify = provider(server)
    first = await dify.reply(ask())

    second = await dify.reply(ask("And exchanges?", vendor_conversation_id=first.vendor_conversation_id))

    assert server.requests[1].json["conversation_id"] == first.vendor_conversation_id
    assert second.vendor_conversation_id == first.vendor_conversation_id
    assert len(server.conversations) == 1


async def test_confidence_is_the_best_retrieval_score(server: DifyEmulator) -> None:
    server.retriever_scores = [0.42, 0.91, 0.7]

    reply = await provider(server).reply(ask())

    assert reply.confidence == pytest.approx(0.91)


async def test_passages_without_score_give_no_confidence(server: DifyEmulator) -> None:
    server.retriever_scores = [None]

    reply = await provider(server).reply(ask())

    assert reply.confidence is None


async def test_empty_answer_is_empty_text(server: DifyEmulator) -> None:
    server.mode = "empty"

    reply = await provider(server).reply(ask())

    assert reply.text == ""
    assert reply.vendor_conversation_id in server.conversations


async def test_answer_without_answer_field_is_bad_response(server: DifyEmulator) -> None:
    server.then_reply(200, {"event": "message", "conversation_id": str(uuid.uuid4()), "metadata": {}})

    with pytest.raises(BadResponse, match="answer"):
        await provider(server).reply(ask())


# -- stale conversations -------------------------------------------------------------


async def test_stale_conversation_starts_a_new_one_transparently(server: DifyEmulator) -> None:
    dify = provider(server)
    first = await dify.reply(ask())
    server.forget_conversations()  # deleted in the Dify console

    reply = await dify.reply(ask("Still there?", vendor_conversation_id=first.vendor_conversation_id))

    assert [r.json["conversation_id"] for r in server.requests[1:]] == [first.vendor_conversation_id, ""]
    assert reply.text == "Returns are free within 30 days."
    assert reply.vendor_conversation_id in server.conversations
    assert reply.vendor_conversation_id != first.vendor_conversation_id


async def test_conversation_of_another_user_is_replaced(server: DifyEmulator) -> None:
    dify = provider(server)
    first = await dify.reply(ask(user="customer-7"))

    reply = await dify.reply(ask(user="customer-8", vendor_conversation_id=first.vendor_conversation_id))

    assert len(server.requests) == 3
    assert server.conversations[reply.vendor_conversation_id or ""] == "customer-8"


async def test_closed_conversation_starts_a_new_one(server: DifyEmulator) -> None:
    stale = str(uuid.uuid4())
    server.then_error(400, "conversation_completed", "The conversation has ended. Please start a new conversation.")

    reply = await provider(server).reply(ask(vendor_conversation_id=stale))

    assert [r.json["conversation_id"] for r in server.requests] == [stale, ""]
    assert reply.vendor_conversation_id in server.conversations


async def test_stale_conversation_is_retried_only_once(server: DifyEmulator) -> None:
    server.then_error(404, "not_found", "Conversation Not Exists.").then_error(404, "not_found", "Not Found")

    with pytest.raises(Rejected, match="404"):
        await provider(server).reply(ask(vendor_conversation_id=str(uuid.uuid4())))

    assert len(server.requests) == 2


async def test_404_of_a_new_conversation_is_not_retried(server: DifyEmulator) -> None:
    server.then_error(404, "not_found", "The requested URL was not found on the server.")

    with pytest.raises(Rejected, match="404"):
        await provider(server).reply(ask())

    assert len(server.requests) == 1


# -- failures ------------------------------------------------------------------------


async def test_unauthorized_does_not_leak_the_key(server: DifyEmulator) -> None:
    server.mode = "unauthorized"

    with pytest.raises(Unauthorized) as caught:
        await provider(server).reply(ask())

    # The emulator's 401 body echoed the key; the error keeps only status and code.
    assert server.error_body(401, server.requests[0])["message"].endswith(KEY)
    assert KEY not in str(caught.value)
    assert "Access token" not in str(caught.value)
    assert "unauthorized" in str(caught.value)


async def test_rate_limited_carries_retry_after(server: DifyEmulator) -> None:
    server.mode, server.retry_after = "rate_limited", 7

    with pytest.raises(RateLimited) as caught:
        await provider(server).reply(ask())

    assert caught.value.retry_after == 7


async def test_server_error_is_unavailable(server: DifyEmulator) -> None:
    server.mode = "server_error"

    with pytest.raises(Unavailable, match="500"):
        await provider(server).reply(ask())


async def test_malformed_answer_is_bad_response(server: DifyEmulator) -> None:
    server.mode = "malformed"

    with pytest.raises(BadResponse):
        await provider(server).reply(ask())


@pytest.mark.parametrize("code", ["app_unavailable", "provider_quota_exceeded", "completion_request_error"])
async def test_dify_400_errors_are_rejected_with_their_code(server: DifyEmulator, code: str) -> None:
    server.then_error(400, code, f"details that may echo the request: {KEY}")

    with pytest.raises(Rejected) as caught:
        await provider(server).reply(ask())

    assert code in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(server.requests) == 1


async def test_slow_answer_is_cancelled_by_the_callers_timeout(server: DifyEmulator) -> None:
    server.mode = "timeout"
    started = time.perf_counter()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider(server).reply(ask()), 0.3)

    assert time.perf_counter() - started < 1.5


# -- configuration -------------------------------------------------------------------


def test_missing_api_key_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="`api_key` is not configured"):
        create({"base_url": "http://127.0.0.1:9/v1"})


def test_missing_base_url_means_dify_cloud() -> None:
    assert create({"api_key": KEY}).endpoint == f"{DEFAULT_BASE_URL}/chat-messages"
    assert DEFAULT_BASE_URL == "https://api.dify.ai/v1"


@pytest.mark.parametrize("base_url", ["", "api.dify.ai/v1", 42])
def test_unusable_base_url_is_a_config_error(base_url: Any) -> None:
    with pytest.raises(ProviderConfigError, match="`base_url` must be an http"):
        create({"base_url": base_url, "api_key": KEY})


@pytest.mark.parametrize("name", ["inputs", "params"])
def test_inputs_and_params_must_be_mappings(name: str) -> None:
    with pytest.raises(ProviderConfigError, match=f"`{name}` must be a mapping"):
        create({"api_key": KEY, name: ["not", "a", "mapping"]})


async def test_registry_builds_the_dify_provider(server: DifyEmulator) -> None:
    dify = build_provider("dify", {"base_url": server.url, "api_key": KEY})

    reply = await dify.reply(ask())

    assert reply.text == "Returns are free within 30 days."
