"""Coze (扣子): answers from a published Coze bot through the Coze API v3 chat, non-streaming.

Endpoints, all with ``Authorization: Bearer <access token>``:

1. ``POST {base_url}/v3/chat`` (``?conversation_id=…`` to go on with a conversation)
   starts a chat with ``stream: false, auto_save_history: true``; Coze answers at once
   with the chat's ids and ``status: in_progress``.
2. ``GET {base_url}/v3/chat/retrieve?conversation_id=…&chat_id=…`` is polled every
   ``poll_interval`` seconds until the status is final.
3. ``GET {base_url}/v3/chat/message/list?conversation_id=…&chat_id=…`` gives the chat's
   messages; the ``type: answer`` ones are the reply (several are joined by a blank
   line), ``follow_up``, ``verbose`` and tool messages are not.

``base_url`` defaults to ``https://api.coze.com`` (Coze); Coze China (扣子) is
``https://api.coze.cn``. It is the host root, without ``/v3``.

Parameters (the AI profile's settings merged with the flow's):

- ``api_key`` (required): a personal access token (``pat_…``) or an OAuth access token
  with the ``chat``, ``getChat`` and ``listMessage`` permissions (``cancelChat`` too, so
  that a chat given up on can be cancelled).
- ``bot_id`` (required): the bot's id, the number after ``/bot/`` in its Coze URL. The
  bot must be published as an API service.
- ``custom_variables``: values for ``{{variables}}`` in the bot's prompt.
- ``system_variable``: the name of a prompt variable that receives the chain's system
  prompt. Coze has no system message (the persona is set on the bot in Coze), so without
  it the system prompt is not sent.
- ``poll_interval``: seconds between status polls (default 0.5; Coze asks for at most
  about one poll per second per chat, so raise it for busy bots).
- ``max_wait``: seconds after which polling gives up (default 120), a backstop for
  chains without a ``timeout``; the chain's own timeout cancels sooner.
- ``params``: extra body fields sent unchanged (``meta_data``, ``extra_params``,
  ``publish_status``, ``bot_version``, ``parameters`` …). The fields this provider owns
  (``bot_id``, ``user_id``, ``stream``, ``auto_save_history``, ``additional_messages``,
  ``custom_variables``) are not overridden by them.
- ``model``, ``temperature``, ``max_tokens`` are not sent: the bot picks its model in
  Coze. ``model`` is only reported back as the reply's model.

The conversation: Coze keeps the history (``auto_save_history``) under its
``conversation_id``, returned as ``vendor_conversation_id`` and sent back on the next
turn, when only the new message is sent. A new Coze conversation gets Flowdesk's
context turns (oldest first, as ``question``/``answer`` messages) before the message.
When Coze no longer knows the conversation (error 4002) the chat is started once more
in a new one. ``user_id`` is the request's ``user``, else ``flowdesk-<hash of
Flowdesk's conversation id>``: Coze keeps memory per user, and advises against sending
business user ids.

Errors: Coze reports most failures with HTTP 200 and a non-zero ``code`` in the
``{code, msg, data}`` envelope; they are raised by code (``msg`` is never repeated, it
can echo the request): 4100/4101 invalid or unauthorised token -> Unauthorized;
4008/4009/4020 request limits, 4011/4019/4022 exhausted balance, 4102 risk control ->
RateLimited; 4013 model error, 4016 a chat still running in the conversation, 5xxx ->
Unavailable; other codes -> Rejected. A chat that ends ``failed`` is Unavailable unless
its ``last_error.code`` says otherwise; ``requires_action`` (a local plugin or question
node waiting for input, which this provider cannot give) is Rejected; ``canceled`` is
Unavailable. Code 4014 (the bot cannot answer the question) is a refusal: an empty reply
with ``refused=True``. A chat given up on (the chain's timeout, ``max_wait``, a failed poll) is
cancelled in the background, so that it does not block the conversation's next chat.

``usage`` is the final chat's ``input_count``/``output_count``; Coze gives no
confidence.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from engine.ai.http import bearer, http_client, http_url, post_json, require
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
from engine.errors import FlowdeskError

__all__ = ["CHINA_BASE_URL", "DEFAULT_BASE_URL", "CozeProvider", "create", "error_for_code"]

log = logging.getLogger(__name__)

VENDOR = "coze"
DEFAULT_BASE_URL = "https://api.coze.com"
CHINA_BASE_URL = "https://api.coze.cn"
DEFAULT_POLL_INTERVAL = 0.5
DEFAULT_MAX_WAIT = 120.0

#: Body fields the provider sets itself; extra ``params`` cannot override them.
_OWN_FIELDS = frozenset({"bot_id", "user_id", "stream", "auto_save_history", "additional_messages", "custom_variables"})
#: Chat statuses that are not final yet.
_RUNNING = frozenset({"created", "in_progress"})
#: Coze allows at most 100 additional messages; the current message takes one.
_MAX_CONTEXT = 99

# Coze error codes (developer_guides/coze_error_codes). 700012006 is the gateway's
# "access token invalid" for OAuth tokens.
_UNAUTHORIZED = frozenset({4100, 4101, 700012006})
_RATE_LIMITED = frozenset({4008, 4009, 4011, 4019, 4020, 4022, 4102})
_UNAVAILABLE = frozenset({4013, 4016})
_CANNOT_ANSWER = 4014
_UNKNOWN_CONVERSATION = 4002

#: Background cancellations of abandoned chats (kept so they are not garbage-collected).
_CANCELLATIONS: set[asyncio.Task[None]] = set()


class _Declined(FlowdeskError):
    """Coze's 4014: the bot cannot answer this question (a refusal, not a failure)."""


class _UnknownConversation(Rejected):
    """Coze's 4002: the conversation id is not (or no longer) valid."""


class CozeProvider:
    """A Coze bot behind :class:`~engine.ai.types.AIProvider`; see the module docstring."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        self._api_key = require(params, "api_key", VENDOR)
        self.base_url = _base_url(params)
        self._bot_id = _bot_id(params)
        self._model = params.get("model") if isinstance(params.get("model"), str) else None
        self._variables = _string_map(params, "custom_variables")
        self._system_variable = _system_variable(params)
        self._poll_interval = _seconds(params, "poll_interval", DEFAULT_POLL_INTERVAL, allow_zero=True)
        self._max_wait = _seconds(params, "max_wait", DEFAULT_MAX_WAIT, allow_zero=False)
        extra = params.get("params") or {}
        if not isinstance(extra, Mapping):
            raise ProviderConfigError(f"{VENDOR}: `params` must be a mapping of extra body fields")
        self._extra = {key: value for key, value in extra.items() if key not in _OWN_FIELDS}

    async def reply(self, request: AIRequest) -> AIReply:
        """Start a chat, wait for it to finish and read its answer."""
        started = time.perf_counter()
        client = http_client(self._params)
        conversation_id = request.vendor_conversation_id or None
        try:
            chat = await self._start(client, request, conversation_id)
            conversation_id = chat["conversation_id"]
            chat = await self._wait(client, chat)
            usage = _usage(chat.get("usage"))
            text = await self._answer(client, chat)
        except _Declined:
            return AIReply(
                text="",
                model=self._model,
                latency_ms=_elapsed_ms(started),
                vendor_conversation_id=conversation_id,
                refused=True,
            )
        return AIReply(
            text=text,
            usage=usage,
            model=self._model,
            latency_ms=_elapsed_ms(started),
            vendor_conversation_id=conversation_id,
        )

    # -- the three steps -------------------------------------------------------------

    async def _start(
        self, client: httpx.AsyncClient, request: AIRequest, conversation_id: str | None
    ) -> dict[str, Any]:
        """Create the chat; a conversation Coze no longer knows is replaced by a new one."""
        if conversation_id:
            try:
                return await self._create(client, request, conversation_id)
            except _UnknownConversation:
                pass
        return await self._create(client, request, None)

    async def _create(
        self, client: httpx.AsyncClient, request: AIRequest, conversation_id: str | None
    ) -> dict[str, Any]:
        url = f"{self.base_url}/v3/chat"
        if conversation_id:
            url += "?" + urlencode({"conversation_id": conversation_id})
        answer, _ = await post_json(
            client, url, headers=bearer(self._api_key), body=self._body(request, conversation_id), vendor=VENDOR
        )
        return _chat(_data(answer, "chat"))

    async def _wait(self, client: httpx.AsyncClient, chat: dict[str, Any]) -> dict[str, Any]:
        """Poll until the chat is final; cancel it at Coze if the wait is given up."""
        deadline = time.monotonic() + self._max_wait
        try:
            while chat["status"] in _RUNNING:
                if time.monotonic() >= deadline:
                    raise ProviderTimeout(f"{VENDOR}: the chat did not finish within {self._max_wait:g} s")
                await asyncio.sleep(self._poll_interval)
                chat = _chat(_data(await self._get(client, "/v3/chat/retrieve", chat), "retrieve"))
        except (asyncio.CancelledError, ProviderError):
            # Given up on (timeout, cancelled, a failed poll): a running chat would block
            # the conversation's next chat (error 4016) until it ends by itself.
            self._cancel_soon(client, chat)
            raise
        _raise_for_status(chat)
        return chat

    async def _answer(self, client: httpx.AsyncClient, chat: dict[str, Any]) -> str:
        messages = _data(await self._get(client, "/v3/chat/message/list", chat), "message list")
        if not isinstance(messages, list):
            raise BadResponse(f"{VENDOR}: the message list is not a list")
        texts = [
            message["content"]
            for message in messages
            if isinstance(message, dict)
            and message.get("type") == "answer"
            and message.get("content_type", "text") == "text"  # cards are rendering data, not text
            and isinstance(message.get("content"), str)
            and message["content"].strip()
        ]
        return "\n\n".join(texts)

    async def _get(self, client: httpx.AsyncClient, path: str, chat: Mapping[str, Any]) -> Any:
        query = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
        answer, _ = await post_json(
            client, self.base_url + path, headers=bearer(self._api_key), body=query, vendor=VENDOR, method="GET"
        )
        return answer

    def _cancel_soon(self, client: httpx.AsyncClient, chat: Mapping[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._cancel(client, chat))
        _CANCELLATIONS.add(task)
        task.add_done_callback(_CANCELLATIONS.discard)

    async def _cancel(self, client: httpx.AsyncClient, chat: Mapping[str, Any]) -> None:
        body = {"chat_id": chat["id"], "conversation_id": chat["conversation_id"]}
        try:
            answer, _ = await post_json(
                client, f"{self.base_url}/v3/chat/cancel", headers=bearer(self._api_key), body=body, vendor=VENDOR
            )
            _data(answer, "cancel")
        except (ProviderError, _Declined) as exc:
            # Best effort: the caller has already moved on, and the chat ends by itself.
            log.debug("coze: cancelling an abandoned chat failed: %s", exc)

    # -- the request -----------------------------------------------------------------

    def _body(self, request: AIRequest, conversation_id: str | None) -> dict[str, Any]:
        # A Coze conversation already holds the earlier turns; a new one gets ours.
        turns = () if conversation_id else request.context[-_MAX_CONTEXT:]
        messages = [_message(turn) for turn in turns]
        messages.append({"role": "user", "content": request.message, "content_type": "text"})
        body: dict[str, Any] = {
            **self._extra,
            "bot_id": self._bot_id,
            "user_id": request.end_user,
            "stream": False,
            "auto_save_history": True,  # non-streaming chats can only be read back when saved
            "additional_messages": messages,
        }
        variables = dict(self._variables)
        if self._system_variable and request.system:
            variables[self._system_variable] = request.system
        if variables:
            body["custom_variables"] = variables
        return body


def create(params: Mapping[str, Any]) -> CozeProvider:
    """The ``coze`` provider (``connectors.ai.coze:create``)."""
    return CozeProvider(params)


def error_for_code(code: int, step: str, default: type[ProviderError] = Rejected) -> ProviderError:
    """The error for a Coze error code; the message names the step and the code only."""
    what = f"{VENDOR}: {step} failed with error code {code}"
    if code in _UNAUTHORIZED:
        return Unauthorized(what)
    if code in _RATE_LIMITED:
        return RateLimited(what)
    if code in _UNAVAILABLE or 5000 <= code < 6000:
        return Unavailable(what)
    if code == _UNKNOWN_CONVERSATION:
        return _UnknownConversation(what)
    return default(what)


# -- reading answers -----------------------------------------------------------------


def _data(answer: Any, step: str) -> Any:
    """The ``data`` of Coze's ``{code, msg, data}`` envelope; a non-zero code is raised."""
    if not isinstance(answer, dict) or not isinstance(answer.get("code"), int) or isinstance(answer["code"], bool):
        raise BadResponse(f"{VENDOR}: the {step} answer has no `code`")
    code = answer["code"]
    if code == _CANNOT_ANSWER:
        raise _Declined
    if code != 0:
        raise error_for_code(code, step)
    return answer.get("data")


def _chat(data: Any) -> dict[str, Any]:
    """A chat object with the fields the polling relies on."""
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) and data[key] for key in ("id", "conversation_id", "status")
    ):
        raise BadResponse(f"{VENDOR}: the chat has no `id`, `conversation_id` or `status`")
    return data


def _raise_for_status(chat: Mapping[str, Any]) -> None:
    status = chat["status"]
    if status == "completed":
        return
    if status == "failed":
        last_error = chat.get("last_error")
        code = last_error.get("code") if isinstance(last_error, dict) else None
        if code == _CANNOT_ANSWER:
            raise _Declined
        if isinstance(code, int) and not isinstance(code, bool) and code:
            raise error_for_code(code, "chat", Unavailable)
        raise Unavailable(f"{VENDOR}: the chat failed")
    if status == "requires_action":
        raise Rejected(f"{VENDOR}: the bot waits for a tool result or a choice (requires_action); not supported")
    if status == "canceled":
        raise Unavailable(f"{VENDOR}: the chat was canceled")
    raise BadResponse(f"{VENDOR}: unknown chat status")


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    output = _count(usage.get("output_count"))
    if "input_count" in usage:
        prompt = _count(usage.get("input_count"))
    else:
        prompt = max(_count(usage.get("token_count")) - output, 0)
    return Usage(prompt_tokens=prompt, completion_tokens=output)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _message(turn: Turn) -> dict[str, str]:
    if turn.role == "user":
        return {"role": "user", "content": turn.text, "content_type": "text"}
    # Our assistant and human-agent turns were both answers to the customer.
    return {"role": "assistant", "content": turn.text, "content_type": "text", "type": "answer"}


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# -- configuration -------------------------------------------------------------------


def _base_url(params: Mapping[str, Any]) -> str:
    value = params.get("base_url")
    if value is None:  # left out: Coze's international API
        return DEFAULT_BASE_URL
    # Tolerate a base URL written with the API version, as other vendors' are.
    return http_url(value, VENDOR, f"{DEFAULT_BASE_URL} or {CHINA_BASE_URL}").removesuffix("/v3")


def _bot_id(params: Mapping[str, Any]) -> str:
    value = params.get("bot_id")
    # YAML reads an unquoted bot id as an integer.
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProviderConfigError(
            f"{VENDOR}: `bot_id` is not configured (set it in the AI profile: the number after /bot/ in the bot's URL)"
        )
    return value.strip()


def _string_map(params: Mapping[str, Any], name: str) -> dict[str, str]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ProviderConfigError(f"{VENDOR}: `{name}` must be a mapping of variable names to values")
    # Coze takes string values only.
    return {key: item if isinstance(item, str) else str(item) for key, item in value.items()}


def _system_variable(params: Mapping[str, Any]) -> str | None:
    value = params.get("system_variable")
    if value is None:
        return None
    # Coze prompt variable names are letters and underscores.
    if not isinstance(value, str) or not value or not all(c.isascii() and (c.isalpha() or c == "_") for c in value):
        raise ProviderConfigError(f"{VENDOR}: `system_variable` must be a prompt variable name (letters and _)")
    return value


def _seconds(params: Mapping[str, Any], name: str, default: float, *, allow_zero: bool) -> float:
    value = params.get(name)
    if value is None:
        return default
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not valid or value < 0 or (value == 0 and not allow_zero):
        raise ProviderConfigError(f"{VENDOR}: `{name}` must be a number of seconds (got {value!r})")
    return float(value)
