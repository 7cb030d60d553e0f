"""Anthropic's Messages API as an AI provider (``use: anthropic``).

Endpoint: ``POST {base_url}/v1/messages`` (not streamed), authenticated with the
``x-api-key`` header and pinned to an API version with ``anthropic-version``.

Parameters (the AI profile's settings merged with the flow's):

- ``api_key`` (required): the Anthropic API key.
- ``base_url``: the API root without ``/v1``; default ``https://api.anthropic.com``.
- ``model``: e.g. ``claude-sonnet-4-5``; a per-call ``model`` wins. A call with no
  model at all is a :class:`~engine.ai.types.ProviderConfigError`.
- ``max_tokens``: the answer's length limit, which the API requires; default 1024.
- ``temperature``: sent only when set.
- ``anthropic_version``: the ``anthropic-version`` header; default ``2023-06-01``.
- ``params``: extra body fields (``top_p``, ``stop_sequences``, ``metadata`` …)
  merged in unchanged. The fields this module sets itself (``model``,
  ``max_tokens``, ``temperature``, ``system``, ``messages``) win over the same names.
- ``profile``: the name of the AI profile, which selects the shared HTTP client.

The conversation becomes Anthropic's format: the system prompt is the top-level
``system`` string (the API has no ``system`` role), and ``messages`` holds the
earlier turns, oldest first, then the current message. Human agents' turns are
sent as ``assistant`` turns: they spoke for the business, as the bot does. The API
wants the roles to alternate, starting with ``user``, so consecutive turns of one
role are joined into one (blank line between them), leading ``assistant`` turns
(a greeting the customer has not answered yet) are dropped, and so are blank turns,
which the API rejects.

The answer is the concatenated ``text`` of the ``text`` content blocks (thinking
and tool blocks are not for the customer); ``stop_reason: refusal`` marks a refusal.
Anthropic keeps no conversation state, so there is no vendor conversation id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.ai.http import http_client, http_url, post_json, require
from engine.ai.types import AIReply, AIRequest, BadResponse, ProviderConfigError, Turn, Usage

__all__ = ["DEFAULT_BASE_URL", "AnthropicProvider", "build_messages", "create", "parse_reply"]

VENDOR = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
#: The API has no default answer length; this one fits a chat reply with room to spare.
DEFAULT_MAX_TOKENS = 1024
#: Body fields derived from the request and settings; ``params`` cannot replace them.
_OWN_FIELDS = ("model", "max_tokens", "temperature", "system", "messages")


def create(params: Mapping[str, Any]) -> AnthropicProvider:
    """The provider factory the registry finds as ``connectors.ai.anthropic:create``."""
    return AnthropicProvider(params)


class AnthropicProvider:
    """Answers through Anthropic's Messages API; see the module docstring for its parameters."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        self._api_key = require(params, "api_key", VENDOR)
        self.url = _base_url(params) + "/v1/messages"
        self._version = _optional_str(params, "anthropic_version") or DEFAULT_VERSION
        self._model = _optional_str(params, "model")
        self._max_tokens = _max_tokens(params.get("max_tokens"), DEFAULT_MAX_TOKENS)
        self._temperature = _temperature(params.get("temperature"), None)
        extra = params.get("params") or {}
        if not isinstance(extra, Mapping):
            raise ProviderConfigError(f"{VENDOR}: `params` must be a mapping of extra body fields")
        self._extra = dict(extra)

    async def reply(self, request: AIRequest) -> AIReply:
        """Ask the Messages API once and return its answer."""
        data, latency_ms = await post_json(
            http_client(self._params),
            self.url,
            headers=self._headers(),
            body=self.body(request),
            vendor=VENDOR,
        )
        return parse_reply(data, latency_ms)

    def body(self, request: AIRequest) -> dict[str, Any]:
        """The JSON body for ``request``: settings, then per-call overrides, then the conversation."""
        overrides = request.params
        model = _optional_str(overrides, "model") or self._model
        if model is None:
            raise ProviderConfigError(f"{VENDOR}: `model` is not configured (set it in the AI profile or the flow)")
        body: dict[str, Any] = {key: value for key, value in self._extra.items() if key not in _OWN_FIELDS}
        body["model"] = model
        body["max_tokens"] = _max_tokens(overrides.get("max_tokens"), self._max_tokens)
        temperature = _temperature(overrides.get("temperature"), self._temperature)
        if temperature is not None:
            body["temperature"] = temperature
        if request.system:
            body["system"] = request.system
        body["messages"] = build_messages(request.context, request.message)
        return body

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self._api_key,
            "anthropic-version": self._version,
            "content-type": "application/json",
        }


def build_messages(context: Iterable[Turn], message: str) -> list[dict[str, str]]:
    """Earlier turns and the current message as alternating messages that start with ``user``."""
    turns = [("user" if turn.role == "user" else "assistant", turn.text) for turn in context if turn.text.strip()]
    turns.append(("user", message))
    merged: list[tuple[str, list[str]]] = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            merged[-1][1].append(text)
        elif merged or role == "user":  # the first message must be the customer's
            merged.append((role, [text]))
    return [{"role": role, "content": "\n\n".join(texts)} for role, texts in merged]


def parse_reply(data: Any, latency_ms: float) -> AIReply:
    """An :class:`AIReply` from a Messages API answer; anything else is :class:`BadResponse`."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise BadResponse(f"{VENDOR}: the answer has no `content` list")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    model = data.get("model")
    return AIReply(
        text=_text_of(data["content"]),
        usage=Usage(prompt_tokens=_count(usage, "input_tokens"), completion_tokens=_count(usage, "output_tokens")),
        model=model if isinstance(model, str) else None,
        latency_ms=latency_ms,
        refused=data.get("stop_reason") == "refusal",
    )


def _text_of(blocks: Sequence[Any]) -> str:
    # Thinking, tool-use and other blocks are the model's working, not the answer.
    return "".join(
        block["text"]
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    )


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _base_url(params: Mapping[str, Any]) -> str:
    value = params.get("base_url")
    if value is None or value == "":
        return DEFAULT_BASE_URL
    return http_url(value, VENDOR, DEFAULT_BASE_URL)


def _optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProviderConfigError(f"{VENDOR}: `{name}` must be a string, got {type(value).__name__}")
    return value


def _max_tokens(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProviderConfigError(f"{VENDOR}: `max_tokens` must be a positive whole number, got {value!r}")
    return value


def _temperature(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ProviderConfigError(f"{VENDOR}: `temperature` must be a number from 0 to 1, got {value!r}")
    return value
