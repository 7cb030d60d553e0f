"""A local server that speaks Anthropic's Messages API (``POST /v1/messages``).

It checks a request the way the real API does before it answers: an ``x-api-key``
(and, when ``expected_key`` is set, the right one), an ``anthropic-version``
header, ``model`` and ``max_tokens`` in the body, and messages whose roles
alternate starting with ``user``. A request that breaks one of these gets the
API's 401 ``authentication_error`` or 400 ``invalid_request_error``.

Besides the common modes (see :mod:`tests.vendors.base`) it has:

- ``overloaded``: 529 ``overloaded_error``, Anthropic's "busy for everyone" status;
- ``invalid_request``: 400 ``invalid_request_error`` (an unknown model, say);
- ``refusal``: a success answer with ``stop_reason: refusal``;
- ``thinking``: a thinking block, then the answer split over two text blocks.

Usage counts words: ``input_tokens`` those of the system prompt and the messages,
``output_tokens`` those of the answer.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.vendors.base import MODES, Recorded, Reply, VendorServer

EXTRA_MODES = ("overloaded", "invalid_request", "refusal", "thinking")

#: The ``error.type`` Anthropic sends with each status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_ids = itertools.count(1)


class AnthropicEmulator(VendorServer):
    """Anthropic's Messages API on a local socket; see the module docstring."""

    name = "anthropic"

    def __init__(self, *, expected_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected_key = expected_key

    # -- scripting -----------------------------------------------------------------

    def then(self, *modes: str) -> AnthropicEmulator:
        """Like :meth:`VendorServer.then`, with this emulator's extra modes allowed."""
        for mode in modes:
            if mode not in MODES + EXTRA_MODES:
                raise ValueError(f"unknown mode {mode!r}")
            self.modes.append(mode)
        return self

    def _respond(self, request: Recorded) -> Reply:
        # The base class handles its own modes; only this emulator's are taken here.
        with self._lock:
            queued = bool(self.modes)
            mode = self.modes[0] if queued else self.mode
            if mode not in EXTRA_MODES:
                mode = ""
            elif queued:
                self.modes.popleft()
        if not mode:
            return super()._respond(request)
        with self._lock:
            self.requests.append(request)
        if mode == "overloaded":
            return Reply(529, self._error(529, "Overloaded"))
        if mode == "invalid_request":
            return Reply(400, self._error(400, "model: unknown model"))
        if mode == "refusal":
            return self._check(request) or self._message(request, [_text_block(self.reply_text)], "refusal")
        return self.answer(request, self.reply_text, thinking=True)

    # -- the vendor's formats ------------------------------------------------------

    def answer(self, request: Recorded, text: str, *, thinking: bool = False) -> Reply:
        """A Messages API answer carrying ``text``, or the error the real API gives the request."""
        invalid = self._check(request)
        if invalid is not None:
            return invalid
        # Anthropic sends an empty ``content`` list, not an empty text block, for no answer.
        blocks: list[dict[str, Any]] = []
        if thinking:
            middle = len(text) // 2
            blocks.append(
                {"type": "thinking", "thinking": "The customer asks a question.", "signature": "EqQBCgIYAhIM"}
            )
            blocks += [_text_block(text[:middle]), _text_block(text[middle:])]
        elif text:
            blocks.append(_text_block(text))
        return self._message(request, blocks, "end_turn")

    def error_body(self, status: int, request: Recorded) -> Any:
        """Anthropic's error body; for 401 it repeats the key it got, so leak tests can bite."""
        if status == 401:
            return self._error(401, f"invalid x-api-key: {self.presented_key(request)}")
        messages = {
            429: "Number of request tokens has exceeded your per-minute rate limit",
            500: "Internal server error",
        }
        return self._error(status, messages.get(status, f"HTTP {status}"))

    def _message(self, request: Recorded, blocks: list[dict[str, Any]], stop_reason: str) -> Reply:
        body = request.json  # checked by _check
        text = "".join(block["text"] for block in blocks if block["type"] == "text")
        return Reply(
            200,
            {
                "id": f"msg_01{next(_ids):022d}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", ""),
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": _words(body.get("system")) + sum(_words(m["content"]) for m in body["messages"]),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": _words(text),
                    "service_tier": "standard",
                },
            },
        )

    def _check(self, request: Recorded) -> Reply | None:
        """The error the real API answers ``request`` with, if any."""
        key = request.headers.get("x-api-key")
        if not key:
            return Reply(401, self._error(401, "x-api-key header is required"))
        if self.expected_key is not None and key != self.expected_key:
            return Reply(401, self.error_body(401, request))
        if not request.headers.get("anthropic-version"):
            return Reply(400, self._error(400, "anthropic-version: header is required"))
        try:
            body = request.json
        except ValueError:
            return Reply(400, self._error(400, "There was an issue with your request body: not valid JSON"))
        if not isinstance(body, dict):
            return Reply(400, self._error(400, "The request body must be a JSON object"))
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return Reply(400, self._error(400, f"{name}: Field required"))
        problem = _messages_problem(body["messages"])
        return Reply(400, self._error(400, problem)) if problem else None

    def _error(self, status: int, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": f"req_01{next(_ids):022d}",
        }


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if any(not isinstance(m, dict) or m.get("role") not in ("user", "assistant") for m in messages):
        return "messages: each message needs a role of user or assistant"
    if messages[0]["role"] != "user":
        return 'messages: first message must use the "user" role'
    for previous, current in itertools.pairwise(messages):
        if previous["role"] == current["role"]:
            return f'messages: roles must alternate between "user" and "assistant", found two "{current["role"]}"'
    if any(_words(m.get("content")) == 0 for m in messages):
        return "messages: text content blocks must contain non-whitespace text"
    return None


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": None}


def _words(content: Any) -> int:
    """Words of a message's content: a string or a list of content blocks."""
    if isinstance(content, list):
        return sum(_words(block.get("text")) for block in content if isinstance(block, dict))
    return len(content.split()) if isinstance(content, str) else 0
