"""FastGPT apps through FastGPT's OpenAI-style chat endpoint.

Endpoint: ``POST {base_url}/v1/chat/completions`` with ``Authorization: Bearer <app key>``
(FastGPT's OpenAPI chat interface), ``stream: false``, ``detail: false``.

Parameters (the AI profile merged with the flow's):

- ``base_url``: required, the FastGPT API root such as ``https://fastgpt.example.com/api``
  (FastGPT is self-hosted or regional, there is no public default); a root that
  already ends in ``/v1`` is accepted as well.
- ``api_key``: required, the app's own key (the app's *API access* page). An account
  key cannot start a chat.
- ``variables``: optional mapping of the app's global variables (they fill ``{{key}}``
  in its nodes).
- ``params``: extra body fields merged unchanged (``responseChatItemId``...); they
  cannot replace ``chatId``, ``stream``, ``detail`` or ``messages``.

The conversation lives in FastGPT. Each call names it by ``chatId``: the
``vendor_conversation_id`` of the last reply, else ``flowdesk-<hash of Flowdesk's
conversation id>``, so that a lost id still finds the same chat. With a ``chatId``
FastGPT loads the chat's history from its own database and takes the last message
as the question; earlier turns sent along would be appended to that history a
second time. So only the customer's current message is sent. The app's own orchestration sets
the prompt, model and temperature, and FastGPT ignores those fields in the
request: ``system``, ``context``, ``model``, ``temperature`` and ``max_tokens`` are not
sent. ``customUid`` carries ``AIRequest.user`` (FastGPT 4.8.13+ files the chat under it).

The answer is ``choices[0].message.content``, with ``usage`` as FastGPT reports it
(without ``detail`` it reports placeholder counts of 1). An ``error`` with no text
(a node of the app's workflow failed) is :class:`~engine.ai.types.Unavailable`.

FastGPT reports failures in its own envelope ``{code, statusText, message, data}``
with HTTP 500 (HTTP 200 in older versions for key errors), never 401: a wrong key
is ``514 unAuthApiKey``, an account key a 500 whose message says so. The envelope
is therefore read before the status, so that a wrong key is not taken for an
outage and retried.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.ai.openai import base_url, endpoint, extra_body, first_message, message_text, usage_of
from engine.ai.http import bearer, decode_json, http_client, raise_for_status, require
from engine.ai.types import (
    AIReply,
    AIRequest,
    ProviderConfigError,
    ProviderTimeout,
    Rejected,
    Unauthorized,
    Unavailable,
    conversation_token,
)

__all__ = ["FastGPTProvider", "chat_id", "create"]

VENDOR = "fastgpt"
_RESERVED_BODY_KEYS = frozenset({"chatId", "stream", "detail", "messages"})
#: ``statusText`` values for a key that is not accepted (besides every ``unAuth...``).
_AUTH_STATUS_TEXTS = frozenset({"openapiUnExist", "openapiUnAuth"})
_AUTH_CODES = frozenset({403, 514, 506000, 506001})
#: The team's points or the key's limit are used up: retrying soon cannot help.
_QUOTA_STATUS_TEXTS = frozenset({"insufficientQuota", "openapiExceedLimit"})
_QUOTA_CODES = frozenset({510, 506002})
#: FastGPT's message (with no code) when an account key is used for a chat.
_ACCOUNT_KEY_HINT = "use the app key rather than the account key"


def create(params: Mapping[str, Any]) -> FastGPTProvider:
    """The provider for ``use: fastgpt``."""
    return FastGPTProvider(params)


class FastGPTProvider:
    """One FastGPT app; see the module docstring for its parameters."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        root = base_url(params, VENDOR).rstrip("/")
        self._url = endpoint(root if root.endswith("/v1") else f"{root}/v1", "chat/completions")
        self._headers = bearer(require(params, "api_key", VENDOR))
        self._extra = extra_body(params, VENDOR, _RESERVED_BODY_KEYS)
        variables = params.get("variables")
        if variables is not None and not isinstance(variables, Mapping):
            raise ProviderConfigError(f"{VENDOR}: `variables` must be a mapping of the app's variable names to values")
        self._variables = dict(variables) if variables else None

    async def reply(self, request: AIRequest) -> AIReply:
        chat = chat_id(request)
        response, latency_ms = await self._send(self.body(request, chat))
        raise_for_envelope(response)
        raise_for_status(response, VENDOR)
        data = decode_json(response, VENDOR)
        _, message = first_message(data, VENDOR)
        text = message_text(message, VENDOR)
        if not text and data.get("error"):
            raise Unavailable(f"{VENDOR}: the app's workflow failed")
        model = data.get("model")
        return AIReply(
            text=text,
            usage=usage_of(data),
            model=model if isinstance(model, str) and model else None,
            latency_ms=latency_ms,
            vendor_conversation_id=chat,
        )

    def body(self, request: AIRequest, chat: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self._extra,
            "chatId": chat,
            "stream": False,
            "detail": False,
            "messages": [{"role": "user", "content": request.message}],
        }
        if self._variables:
            body["variables"] = self._variables
        if request.user:
            body["customUid"] = request.user
        return body

    async def _send(self, body: dict[str, Any]) -> tuple[httpx.Response, float]:
        """POST the body; network failures mapped as ``engine.ai.http.post_json`` maps them.

        Not ``post_json``: it decides by status alone, and FastGPT's status does not
        tell a wrong key from an outage (see the module docstring).
        """
        started = time.perf_counter()
        try:
            response = await http_client(self._params).post(self._url, headers=self._headers, json=body)
        except httpx.TimeoutException:
            raise ProviderTimeout(f"{VENDOR}: no answer in time") from None
        except httpx.HTTPError as exc:
            # The exception text may contain the URL; name the failure's type only.
            raise Unavailable(f"{VENDOR}: request failed ({type(exc).__name__})") from None
        return response, (time.perf_counter() - started) * 1000


def chat_id(request: AIRequest) -> str:
    """The FastGPT chat of this conversation (see the module docstring)."""
    if request.vendor_conversation_id:
        return request.vendor_conversation_id
    if not request.conversation_id:
        return f"flowdesk-{uuid.uuid4().hex}"  # no conversation to follow: a chat of its own
    # Hashed so that internal ids do not leave Flowdesk, and well within FastGPT's 250 characters.
    return conversation_token(request.conversation_id)


def raise_for_envelope(response: httpx.Response) -> None:
    """Raise the error a FastGPT error envelope stands for, whatever the HTTP status.

    An envelope with another error and a failure status is left to the status.
    The envelope's free-text ``message`` is never repeated: it may echo the request.
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    if not isinstance(body, dict) or "choices" in body or "statusText" not in body:
        return
    status_text, code, message = body.get("statusText"), body.get("code"), body.get("message")
    status_text = status_text if isinstance(status_text, str) else ""
    code = code if isinstance(code, int) else None
    message = message if isinstance(message, str) else ""
    label = status_text if status_text.isidentifier() else str(code or "error")
    what = f"{VENDOR}: HTTP {response.status_code} ({label})"
    if status_text.startswith("unAuth") or status_text in _AUTH_STATUS_TEXTS or code in _AUTH_CODES:
        raise Unauthorized(what)
    if _ACCOUNT_KEY_HINT in message:
        raise Unauthorized(f"{VENDOR}: HTTP {response.status_code} (an account key: use the app's own API key)")
    if status_text in _QUOTA_STATUS_TEXTS or code in _QUOTA_CODES:
        raise Rejected(what)
    if response.status_code < 300:
        raise Unavailable(what)  # an error under a success status: the status cannot classify it
