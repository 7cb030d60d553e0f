"""A local Dify: ``POST /chat-messages`` in blocking mode, with Dify's conversations and errors.

Like Dify it keeps conversations per end user: a request without ``conversation_id``
(or with ``""``) starts one and gets its new id back; a known id continues it; an id
Dify does not know for that ``user`` is a 404 ``not_found`` ("Conversation Not
Exists."). ``forget_conversations()`` makes every id stale, as deleting them in the
Dify console does. A request without ``user`` or ``query``, whose ``inputs`` is not an
object or whose ``conversation_id`` is not a UUID is a 400 ``invalid_param``.

Errors have Dify's body, ``{"code": ..., "message": ..., "status": N}``;
``then_error(status, code)`` answers the next request with one (``app_unavailable``,
``provider_quota_exceeded``, ...) and ``then_reply`` with any raw reply.
``retriever_scores`` adds ``metadata.retriever_resources`` with those scores, as a
knowledge-base answer has.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any

from tests.vendors.base import Recorded, Reply, VendorServer

__all__ = ["DifyEmulator"]

_MESSAGES = {
    401: "Access token is invalid",
    404: "Conversation Not Exists.",
    429: "Too many requests. Please try again later.",
    500: "The server encountered an internal error and was unable to complete your request.",
}
_CODES = {401: "unauthorized", 404: "not_found", 429: "too_many_requests", 500: "internal_server_error"}


class DifyEmulator(VendorServer):
    """Dify's chat-messages API; see the module docstring."""

    name = "dify"

    def __init__(self, *, reply_text: str = "Hello from the emulator.", delay: float = 5.0) -> None:
        super().__init__(reply_text=reply_text, delay=delay)
        self.prompt_tokens = 63
        self.completion_tokens = 17
        self.retriever_scores: list[float | None] = []
        self.conversations: dict[str, str] = {}  # conversation id -> the user who started it
        self._scripted: deque[Reply] = deque()
        self._state = threading.Lock()

    def __enter__(self) -> DifyEmulator:
        self.start()
        return self

    # -- scripting -----------------------------------------------------------------

    def then_reply(self, status: int, body: Any) -> DifyEmulator:
        """Answer the next request (in ``ok`` mode) with this raw reply."""
        self._scripted.append(Reply(status, body))
        return self

    def then_error(self, status: int, code: str, message: str = "Request failed.") -> DifyEmulator:
        """Answer the next request (in ``ok`` mode) with Dify's error body."""
        return self.then_reply(status, {"code": code, "message": message, "status": status})

    def forget_conversations(self) -> None:
        with self._state:
            self.conversations.clear()

    # -- the vendor ----------------------------------------------------------------

    def answer(self, request: Recorded, text: str) -> Reply:
        with self._state:
            if self._scripted:
                return self._scripted.popleft()
            body = request.json if request.body else {}
            invalid = _invalid_param(body)
            if invalid:
                return Reply(400, {"code": "invalid_param", "message": invalid, "status": 400})
            conversation_id = body.get("conversation_id") or ""
            if conversation_id and self.conversations.get(conversation_id) != body["user"]:
                return Reply(404, self.error_body(404, request))
            if not conversation_id:
                conversation_id = str(uuid.uuid4())
                self.conversations[conversation_id] = body["user"]
        return Reply(200, self._message(conversation_id, text))

    def error_body(self, status: int, request: Recorded) -> Any:
        message = _MESSAGES.get(status, "Request failed.")
        if status == 401:
            # Echo the key, as some vendors do, so that tests can prove it never leaks further.
            message = f"{message}: {self.presented_key(request)}"
        return {"code": _CODES.get(status, "unknown"), "message": message, "status": status}

    def _message(self, conversation_id: str, text: str) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        return {
            "event": "message",
            "task_id": str(uuid.uuid4()),
            "id": message_id,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "mode": "chat",
            "answer": text,
            "metadata": {
                "annotation_reply": None,
                "retriever_resources": [_resource(i, score) for i, score in enumerate(self.retriever_scores, 1)],
                "usage": self._usage(),
            },
            "created_at": int(time.time()),
        }

    def _usage(self) -> dict[str, Any]:
        prompt, completion = self.prompt_tokens, self.completion_tokens
        return {
            "prompt_tokens": prompt,
            "prompt_unit_price": "0.001",
            "prompt_price_unit": "0.001",
            "prompt_price": f"{prompt * 0.000001:.7f}",
            "completion_tokens": completion,
            "completion_unit_price": "0.002",
            "completion_price_unit": "0.001",
            "completion_price": f"{completion * 0.000002:.7f}",
            "total_tokens": prompt + completion,
            "total_price": f"{prompt * 0.000001 + completion * 0.000002:.7f}",
            "currency": "USD",
            "latency": 0.768,
        }


def _invalid_param(body: Any) -> str | None:
    """Dify's request validation, as far as a client can trip it."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received or JSON payload is empty."
    if not body.get("user"):
        return "Arg user must be provided."
    if not isinstance(body.get("inputs"), dict):
        return "inputs is required in request body"
    if not isinstance(body.get("query"), str):
        return "query is required"
    conversation_id = body.get("conversation_id")
    if conversation_id:
        try:
            uuid.UUID(str(conversation_id))
        except ValueError:
            return "conversation_id must be a valid UUID"
    return None


def _resource(position: int, score: float | None) -> dict[str, Any]:
    return {
        "position": position,
        "dataset_id": "101b4c97-fc2e-463c-90b1-5261a4cdcafb",
        "dataset_name": "Help centre",
        "document_id": str(uuid.uuid4()),
        "document_name": f"faq-{position}.md",
        "segment_id": str(uuid.uuid4()),
        "score": score,
        "content": "Returns are accepted within 30 days.",
    }
