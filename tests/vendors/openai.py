"""An OpenAI Chat Completions server: ``POST /v1/chat/completions`` as api.openai.com answers it.

Point a provider at ``f"{server.url}/v1"``. Besides the common modes
(:mod:`tests.vendors.base`) a test can script what the model says:

- ``refusal``: the answer is a refusal (``content: null``, ``message.refusal`` set),
  as structured-output models answer a request they decline;
- ``finish_reason``: ``content_filter`` for an answer the content filter cut
  (Azure and some gateways send it with a ``null`` or partial content).

Errors have OpenAI's body ``{"error": {"message", "type", "param", "code"}}``: 401
``invalid_api_key``, 429 ``rate_limit_exceeded``, 500 ``server_error``, 404 for an
unknown path and 400 for a body without ``model`` or ``messages``. The 401 message
echoes the presented key in full (OpenAI masks its middle) so that tests can check
it goes no further.

Usage is counted as words: each message's words plus 4 framing tokens, plus 3
for the reply's priming; the answer's words are the completion tokens.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.vendors.base import Recorded, Reply, VendorServer

PATH = "/v1/chat/completions"
#: OpenAI answers with the dated snapshot of the model it was asked for.
SNAPSHOT_SUFFIX = "-2024-08-06"


class OpenAIEmulator(VendorServer):
    name = "openai"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reset()

    def reset(self) -> None:
        """A fresh server's behaviour: no requests, no scripting, no refusal."""
        super().reset()
        self.refusal: str | None = None
        self.finish_reason = "stop"

    def answer(self, request: Recorded, text: str) -> Reply:
        problem = self._invalid(request)
        if problem is not None:
            return problem
        body = request.json
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if self.refusal is not None:
            message.update(content=None, refusal=self.refusal)
        prompt_tokens = 3 + sum(len(str(m.get("content", "")).split()) + 4 for m in body["messages"])
        completion_tokens = len((message["content"] or message["refusal"] or "").split())
        return Reply(
            200,
            {
                "id": f"chatcmpl-{secrets.token_urlsafe(22)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body['model']}{SNAPSHOT_SUFFIX}",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": f"fp_{secrets.token_hex(5)}",
            },
            {"x-request-id": f"req_{secrets.token_hex(16)}", "openai-processing-ms": "412"},
        )

    def _invalid(self, request: Recorded) -> Reply | None:
        """OpenAI's answer to a wrong path or an incomplete body, if it is one."""
        if request.method != "POST" or request.path != PATH:
            return Reply(404, _error(f"Invalid URL ({request.method} {request.path})", "invalid_request_error"))
        body = request.json
        if not isinstance(body, dict) or not body.get("model"):
            return Reply(400, _error("you must provide a model parameter", "invalid_request_error"))
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return Reply(
                400,
                _error("[] is too short - 'messages'", "invalid_request_error", param="messages", code="invalid_value"),
            )
        return None

    def error_body(self, status: int, request: Recorded) -> Any:
        if status == 401:
            key = self.presented_key(request)
            return _error(
                f"Incorrect API key provided: {key}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if status == 429:
            return _error(
                "Rate limit reached for gpt-4o-mini in organization org-emulator on requests per min (RPM): "
                "Limit 3, Used 3, Requested 1. Please try again in 20s.",
                "requests",
                code="rate_limit_exceeded",
            )
        return _error("The server had an error while processing your request. Sorry about that!", "server_error")


def _error(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
