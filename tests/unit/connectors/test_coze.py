"""The Coze provider against a local Coze API v3 chat emulator."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ai.coze import CHINA_BASE_URL, DEFAULT_BASE_URL, CozeProvider, create
from engine.ai.registry import build_provider
from engine.ai.types import (
    AIReply,
    AIRequest,
    BadResponse,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    Rejected,
    Turn,
    Unauthorized,
    Unavailable,
    Usage,
)
from tests.vendors.coze import CozeEmulator

KEY = "pat_OYDacMzM3WyOWV3Dtj2bHRMymzxP0123456789"
BOT = "7379462189365198898"
ANSWER = "Your parcel arrives tomorrow."
REQUEST = AIRequest(
    message="Where is my parcel?",
    system="You are the shop's helpful assistant.",
    context=(Turn("user", "Hi"), Turn("assistant", "Hello! How can I help?"), Turn("agent", "Anna here.")),
    conversation_id="conv-1",
    user="customer-42",
)


@pytest.fixture(name="server")
def fx_server() -> Iterator[CozeEmulator]:
    with CozeEmulator(reply_text=ANSWER) as server:
        yield server


def provider(server: CozeEmulator, **params: Any) -> CozeProvider:
    return create({"base_url": server.url, "api_key": KEY, "bot_id": BOT, "poll_interval": 0.01, **params})


def steps(server: CozeEmulator) -> list[tuple[str, str]]:
    return [(sent.method, sent.path) for sent in server.requests]


# -- the whole sequence --------------------------------------------------------------


async def test_create_poll_list_sequence_with_exact_requests(server: CozeEmulator) -> None:
    coze = provider(
        server,
        custom_variables={"shop": "Acme"},
        params={"meta_data": {"channel": "web"}, "publish_status": "published_online", "stream": True},
    )

    reply = await coze.reply(REQUEST)

    assert steps(server) == [
        ("POST", "/v3/chat"),
        ("GET", "/v3/chat/retrieve"),
        ("GET", "/v3/chat/retrieve"),
        ("GET", "/v3/chat/message/list"),
    ]
    create_call, *polls, listing = server.requests
    assert create_call.query == {}  # a new conversation
    assert create_call.headers["authorization"] == f"Bearer {KEY}"
    assert create_call.headers["content-type"] == "application/json"
    assert create_call.json == {
        "bot_id": BOT,
        "user_id": "customer-42",
        "stream": False,  # `params` cannot switch the polling flow to streaming
        "auto_save_history": True,
        "additional_messages": [
            {"role": "user", "content": "Hi", "content_type": "text"},
            {"role": "assistant", "content": "Hello! How can I help?", "content_type": "text", "type": "answer"},
            {"role": "assistant", "content": "Anna here.", "content_type": "text", "type": "answer"},
            {"role": "user", "content": "Where is my parcel?", "content_type": "text"},
        ],
        "custom_variables": {"shop": "Acme"},
        "meta_data": {"channel": "web"},
        "publish_status": "published_online",
    }
    [chat] = server.chats.values()
    expected_query = {"conversation_id": [chat.conversation_id], "chat_id": [chat.id]}
    for sent in (*polls, listing):
        assert sent.query == expected_query
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.body == b""
    # The system prompt has no place in Coze's chat unless a prompt variable takes it.
    assert b"helpful assistant" not in create_call.body

    assert reply == AIReply(
        text=ANSWER,  # the answer only: not the verbose or follow-up messages
        usage=Usage(prompt_tokens=242, completion_tokens=56),
        model=None,
        latency_ms=reply.latency_ms,
        vendor_conversation_id=chat.conversation_id,
    )
    assert reply.confidence is None
    assert reply.latency_ms > 0


async def test_system_prompt_goes_into_the_configured_prompt_variable(server: CozeEmulator) -> None:
    coze = provider(server, custom_variables={"shop": "Acme"}, system_variable="persona")
    await coze.reply(REQUEST)

    assert server.requests[0].json["custom_variables"] == {
        "shop": "Acme",
        "persona": "You are the shop's helpful assistant.",
    }


async def test_several_answers_are_joined_in_order(server: CozeEmulator) -> None:
    server.extra_answers = ("You can track it in your account.",)
    reply = await provider(server).reply(REQUEST)
    assert reply.text == f"{ANSWER}\n\nYou can track it in your account."


async def test_polls_until_the_chat_is_completed(server: CozeEmulator) -> None:
    server.in_progress_polls = 3
    reply = await provider(server).reply(REQUEST)
    assert [path for _, path in steps(server)].count("/v3/chat/retrieve") == 4
    assert reply.text == ANSWER


async def test_configured_model_is_reported_back(server: CozeEmulator) -> None:
    reply = await provider(server, model="doubao-pro-32k").reply(REQUEST)
    assert reply.model == "doubao-pro-32k"
    assert "model" not in server.requests[0].json


# -- conversations and users ---------------------------------------------------------


async def test_conversation_id_is_reused_and_only_the_new_message_sent(server: CozeEmulator) -> None:
    coze = provider(server)
    first = await coze.reply(REQUEST)
    assert first.vendor_conversation_id

    follow_up = AIRequest(
        message="And the invoice?",
        context=(*REQUEST.context, Turn("user", REQUEST.message), Turn("assistant", ANSWER)),
        conversation_id="conv-1",
        vendor_conversation_id=first.vendor_conversation_id,
        user="customer-42",
    )
    second = await coze.reply(follow_up)

    second_create = server.requests[4]
    assert (second_create.method, second_create.path) == ("POST", "/v3/chat")
    assert second_create.query == {"conversation_id": [first.vendor_conversation_id]}
    # Coze holds the history: the turns are not sent again.
    assert second_create.json["additional_messages"] == [
        {"role": "user", "content": "And the invoice?", "content_type": "text"}
    ]
    assert second.vendor_conversation_id == first.vendor_conversation_id
    assert [m["content"] for m in server.conversations[first.vendor_conversation_id]] == [
        "Hi",
        "Hello! How can I help?",
        "Anna here.",
        "Where is my parcel?",
        ANSWER,
        "And the invoice?",
        ANSWER,
    ]


async def test_a_conversation_coze_forgot_is_started_afresh(server: CozeEmulator) -> None:
    coze = provider(server)
    first = await coze.reply(REQUEST)
    server.forget_conversations()
    server.requests.clear()

    again = AIRequest(message="Hello again", context=(Turn("user", "Hi"),), vendor_conversation_id="123", user="u")
    reply = await coze.reply(again)

    retry = server.requests[1]
    assert server.requests[0].query == {"conversation_id": ["123"]}
    assert retry.query == {}
    assert retry.json["additional_messages"] == [
        {"role": "user", "content": "Hi", "content_type": "text"},
        {"role": "user", "content": "Hello again", "content_type": "text"},
    ]
    assert reply.text == ANSWER
    assert reply.vendor_conversation_id not in (None, "123", first.vendor_conversation_id)


async def test_user_id_is_derived_from_the_conversation_when_no_user(server: CozeEmulator) -> None:
    coze = provider(server)
    for conversation_id in ("conv-a", "conv-a", "conv-b"):
        await coze.reply(AIRequest(message="Hi", conversation_id=conversation_id))

    user_ids = [sent.json["user_id"] for sent in server.requests if sent.method == "POST"]
    digest = hashlib.sha256(b"conv-a").hexdigest()[:32]
    assert user_ids[0] == user_ids[1] == f"flowdesk-{digest}"
    assert user_ids[2] != user_ids[0]
    assert "conv-a" not in user_ids[0]


# -- envelope errors (HTTP 200, non-zero code) ---------------------------------------


@pytest.mark.parametrize(
    ("step", "code", "error"),
    [
        ("chat", 4100, Unauthorized),
        ("chat", 4101, Unauthorized),
        ("chat", 4020, RateLimited),
        ("chat", 4019, RateLimited),
        ("chat", 4013, Unavailable),
        ("chat", 4016, Unavailable),
        ("chat", 4006, Rejected),
        ("retrieve", 5000, Unavailable),
        ("retrieve", 4100, Unauthorized),
        ("list", 4101, Unauthorized),
    ],
)
async def test_envelope_error_code_maps_to_error_class(
    server: CozeEmulator, step: str, code: int, error: type[ProviderError]
) -> None:
    server.fail_next(code, on=step)
    with pytest.raises(error) as caught:
        await provider(server).reply(REQUEST)
    assert type(caught.value) is error
    message = str(caught.value)
    assert str(code) in message
    assert KEY not in message  # the emulator's 4100 msg echoes the token
    assert "authentication" not in message and "permission" not in message  # no vendor free text


async def test_bot_that_cannot_answer_is_a_refusal(server: CozeEmulator) -> None:
    server.fail_next(4014)
    reply = await provider(server).reply(REQUEST)
    assert (reply.text, reply.refused) == ("", True)


async def test_message_list_without_data_is_bad_response(server: CozeEmulator) -> None:
    server.fail_next(0, on="list")  # code 0 but no `data`: not Coze's documented list
    with pytest.raises(BadResponse):
        await provider(server).reply(REQUEST)


# -- final chat statuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "last_error", "error", "fragment"),
    [
        ("failed", 4013, Unavailable, "4013"),
        ("failed", 4011, RateLimited, "4011"),
        ("failed", 0, Unavailable, "failed"),
        ("requires_action", 0, Rejected, "requires_action"),
        ("canceled", 0, Unavailable, "canceled"),
    ],
)
async def test_chat_that_does_not_complete_is_an_error(
    server: CozeEmulator, outcome: str, last_error: int, error: type[ProviderError], fragment: str
) -> None:
    server.outcome, server.last_error_code = outcome, last_error
    with pytest.raises(error) as caught:
        await provider(server).reply(REQUEST)
    assert fragment in str(caught.value)
    assert "model error" not in str(caught.value)
    assert ("GET", "/v3/chat/message/list") not in steps(server)


async def test_failed_chat_with_cannot_answer_is_a_refusal(server: CozeEmulator) -> None:
    server.outcome, server.last_error_code = "failed", 4014
    reply = await provider(server).reply(REQUEST)
    assert reply.refused and reply.text == ""
    assert reply.vendor_conversation_id == next(iter(server.chats.values())).conversation_id


# -- the base failure modes ----------------------------------------------------------


async def test_http_401_is_unauthorized_without_the_key(server: CozeEmulator) -> None:
    server.mode = "unauthorized"
    with pytest.raises(Unauthorized) as caught:
        await provider(server).reply(REQUEST)
    assert str(caught.value) == "coze: HTTP 401 (4100)"
    assert KEY not in str(caught.value)


async def test_http_429_is_rate_limited_with_retry_after(server: CozeEmulator) -> None:
    server.mode, server.retry_after = "rate_limited", 7
    with pytest.raises(RateLimited) as caught:
        await provider(server).reply(REQUEST)
    assert caught.value.retry_after == 7


async def test_http_500_is_unavailable(server: CozeEmulator) -> None:
    server.mode = "server_error"
    with pytest.raises(Unavailable, match="HTTP 500"):
        await provider(server).reply(REQUEST)


async def test_http_500_while_polling_is_unavailable(server: CozeEmulator) -> None:
    server.then("ok", "server_error")
    with pytest.raises(Unavailable, match="HTTP 500"):
        await provider(server).reply(REQUEST)
    [chat] = server.chats.values()
    await wait_until(lambda: chat.status == "canceled")  # the abandoned chat is cancelled
    assert steps(server) == [("POST", "/v3/chat"), ("GET", "/v3/chat/retrieve"), ("POST", "/v3/chat/cancel")]


async def test_malformed_answer_is_bad_response(server: CozeEmulator) -> None:
    server.mode = "malformed"
    with pytest.raises(BadResponse):
        await provider(server).reply(REQUEST)


async def test_empty_answer_is_empty_text(server: CozeEmulator) -> None:
    server.then("empty")  # the chat is created with an empty answer
    reply = await provider(server).reply(REQUEST)
    assert (reply.text, reply.refused) == ("", False)
    assert steps(server)[-1] == ("GET", "/v3/chat/message/list")


async def test_slow_vendor_is_cut_off_by_the_chain_timeout() -> None:
    with CozeEmulator(delay=2) as server:
        server.mode = "timeout"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(provider(server).reply(REQUEST), 0.3)
        assert time.monotonic() - started < 1.0


async def test_endless_polling_is_cancelled_and_the_chat_cancelled_at_coze(server: CozeEmulator) -> None:
    server.in_progress_polls = 10**6
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider(server).reply(REQUEST), 0.3)
    assert time.monotonic() - started < 1.0

    [chat] = server.chats.values()
    await wait_until(lambda: chat.status == "canceled")
    cancel = server.requests[-1]
    assert (cancel.method, cancel.path) == ("POST", "/v3/chat/cancel")
    assert cancel.json == {"chat_id": chat.id, "conversation_id": chat.conversation_id}
    assert cancel.headers["authorization"] == f"Bearer {KEY}"


async def test_max_wait_gives_up_polling(server: CozeEmulator) -> None:
    server.in_progress_polls = 10**6
    with pytest.raises(ProviderTimeout, match=r"did not finish within 0\.05 s"):
        await provider(server, max_wait=0.05).reply(REQUEST)
    [chat] = server.chats.values()
    await wait_until(lambda: chat.status == "canceled")


async def wait_until(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


# -- configuration -------------------------------------------------------------------


def test_missing_api_key_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="`api_key` is not configured"):
        create({"bot_id": BOT})


def test_missing_bot_id_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match="`bot_id` is not configured"):
        create({"api_key": KEY})


def test_base_url_defaults_to_coze_and_rejects_non_urls() -> None:
    assert create({"api_key": KEY, "bot_id": BOT}).base_url == DEFAULT_BASE_URL == "https://api.coze.com"
    assert create({"api_key": KEY, "bot_id": BOT, "base_url": CHINA_BASE_URL + "/v3/"}).base_url == CHINA_BASE_URL
    with pytest.raises(ProviderConfigError, match="`base_url` must be an http"):
        create({"api_key": KEY, "bot_id": BOT, "base_url": "api.coze.cn"})


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("poll_interval", -1),
        ("poll_interval", "fast"),
        ("max_wait", 0),
        ("custom_variables", ["shop"]),
        ("system_variable", "my-var"),
        ("params", "meta_data"),
    ],
)
def test_invalid_settings_are_config_errors(setting: str, value: Any) -> None:
    with pytest.raises(ProviderConfigError, match=f"`{setting}`"):
        create({"api_key": KEY, "bot_id": BOT, setting: value})


async def test_numeric_bot_id_from_yaml_is_sent_as_a_string(server: CozeEmulator) -> None:
    await provider(server, bot_id=int(BOT)).reply(REQUEST)
    assert server.requests[0].json["bot_id"] == BOT


async def test_registry_builds_the_coze_provider(server: CozeEmulator) -> None:
    built = build_provider("coze", {"base_url": server.url, "api_key": KEY, "bot_id": BOT, "poll_interval": 0})
    assert isinstance(built, CozeProvider)
    assert (await built.reply(REQUEST)).text == ANSWER
