"""OpenAI Chat Completions, and every server that speaks it: Azure's v1 API, DeepSeek, Qwen, Ollama, vLLM.

Endpoint: ``POST {base_url}/chat/completions`` with ``Authorization: Bearer <api_key>``.

Parameters (the AI profile merged with the flow's):

- ``base_url``: the API root, default ``https://api.openai.com/v1``; for a compatible
  server its root as it documents it (``https://api.deepseek.com/v1``,
  ``http://localhost:11434/v1``), used as given; a trailing slash is ignored.
- ``api_key``: required, unless ``api_key_optional: true`` (a local Ollama or vLLM
  without authentication); then it is sent only when set.
- ``model``: required, here or per call (``AIRequest.params["model"]``).
- ``temperature``, ``max_tokens``: sent only when set; per-call values win.
- ``headers``: extra HTTP headers, string to string (Azure's ``api-key``,
  ``OpenAI-Project``).
- ``params``: extra body fields (``top_p``, ``seed``, ``max_completion_tokens``...)
  merged unchanged; they cannot replace ``model``, ``messages`` or ``stream``.

The answer is ``choices[0].message.content``. A ``message.refusal`` or a
``finish_reason`` of ``content_filter`` (Azure, some gateways) marks the reply as
refused, so that the chain falls through to the next provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.ai.http import bearer, http_client, http_url, post_json, require
from engine.ai.types import AIReply, AIRequest, BadResponse, ProviderConfigError, Usage

__all__ = [
    "DEFAULT_BASE_URL",
    "OpenAIProvider",
    "base_url",
    "chat_messages",
    "create",
    "endpoint",
    "extra_body",
    "extra_headers",
    "first_message",
    "message_text",
    "parse_reply",
    "setting",
    "usage_of",
]

VENDOR = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Body fields the provider owns: a streamed answer could not be read as one JSON document.
_RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream"})


def create(params: Mapping[str, Any]) -> OpenAIProvider:
    """The provider for ``use: openai``."""
    return OpenAIProvider(params)


class OpenAIProvider:
    """One Chat Completions endpoint; see the module docstring for its parameters."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        #: where the requests go
        self.url = endpoint(base_url(params, VENDOR, DEFAULT_BASE_URL), "chat/completions")
        self._headers = {**self._auth(params), **extra_headers(params, VENDOR)}
        self._extra = extra_body(params, VENDOR, _RESERVED_BODY_KEYS)

    @staticmethod
    def _auth(params: Mapping[str, Any]) -> dict[str, str]:
        if params.get("api_key_optional") is True and not params.get("api_key"):
            return {}  # a local server without authentication
        return bearer(require(params, "api_key", VENDOR))

    async def reply(self, request: AIRequest) -> AIReply:
        data, latency_ms = await post_json(
            http_client(self._params), self.url, headers=self._headers, body=self.body(request), vendor=VENDOR
        )
        return parse_reply(data, latency_ms)

    def body(self, request: AIRequest) -> dict[str, Any]:
        """The request body: extra fields, then model and messages, then generation settings."""
        body: dict[str, Any] = {**self._extra, "model": self._model(request), "messages": chat_messages(request)}
        for name in ("temperature", "max_tokens"):
            value = setting(request, self._params, name)
            if value is not None:
                body[name] = value
        return body

    def _model(self, request: AIRequest) -> str:
        model = setting(request, self._params, "model")
        if not isinstance(model, str) or not model:
            raise ProviderConfigError(f"{VENDOR}: `model` is not configured (set it in the AI profile or the flow)")
        return model


def parse_reply(data: Any, latency_ms: float) -> AIReply:
    """An :class:`AIReply` from a Chat Completions answer."""
    choice, message = first_message(data, VENDOR)
    refusal = message.get("refusal")
    refused = (isinstance(refusal, str) and bool(refusal.strip())) or choice.get("finish_reason") == "content_filter"
    model = data.get("model")
    return AIReply(
        text=message_text(message, VENDOR),
        usage=usage_of(data),
        model=model if isinstance(model, str) and model else None,
        latency_ms=latency_ms,
        refused=refused,
    )


# -- shared with the other OpenAI-style providers ----------------------------------


def base_url(params: Mapping[str, Any], vendor: str, default: str | None = None) -> str:
    """The configured ``base_url`` (or ``default``), checked to be an http(s) URL."""
    value = params.get("base_url") or default
    if value is None:
        return require(params, "base_url", vendor)  # raises: there is no public default
    return http_url(value, vendor, default or "https://llm.example.com/v1")


def endpoint(root: str, path: str) -> str:
    return f"{root.rstrip('/')}/{path}"


def extra_headers(params: Mapping[str, Any], vendor: str) -> dict[str, str]:
    headers = params.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ProviderConfigError(f"{vendor}: `headers` must map header names to strings")
    return dict(headers)


def extra_body(params: Mapping[str, Any], vendor: str, reserved: frozenset[str]) -> dict[str, Any]:
    extra = params.get("params") or {}
    if not isinstance(extra, Mapping):
        raise ProviderConfigError(f"{vendor}: `params` must be a mapping of extra request fields")
    return {key: value for key, value in extra.items() if key not in reserved}


def setting(request: AIRequest, params: Mapping[str, Any], name: str) -> Any:
    """A generation setting: the call's value, else the configured one."""
    value = request.params.get(name)
    return params.get(name) if value is None else value


def chat_messages(request: AIRequest) -> list[dict[str, str]]:
    """System prompt, earlier turns oldest first, then the customer's message."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    for turn in request.context:
        # A human agent's earlier answer speaks for the business, as the assistant does.
        messages.append({"role": "user" if turn.role == "user" else "assistant", "content": turn.text})
    messages.append({"role": "user", "content": request.message})
    return messages


def first_message(data: Any, vendor: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``choices[0]`` and its ``message``, or :class:`BadResponse`."""
    choices = data.get("choices") if isinstance(data, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BadResponse(f"{vendor}: the answer has no choices")
    message = choices[0].get("message")
    if not isinstance(message, Mapping):
        raise BadResponse(f"{vendor}: the answer's first choice has no message")
    return choices[0], message


def message_text(message: Mapping[str, Any], vendor: str) -> str:
    """The message's text; ``null`` content (a refusal, a tool call) is an empty answer."""
    content = message.get("content")
    if content is None:
        return ""
    if not isinstance(content, str):
        raise BadResponse(f"{vendor}: the answer's content is not text")
    return content


def usage_of(data: Mapping[str, Any]) -> Usage:
    """Token counts from ``usage``; missing or odd counts are 0 (usage is for metrics only)."""
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return Usage()

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    return Usage(prompt_tokens=count("prompt_tokens"), completion_tokens=count("completion_tokens"))
