"""A FastGPT app behind ``POST /api/v1/chat/completions``, answering as FastGPT does (``stream``, ``detail`` off).

Point a provider at ``f"{server.url}/api"``. Like FastGPT it keeps each chat's
history by ``chatId`` (``chats``: chatId -> list of ``(role, text)``); a request
without ``chatId`` is answered from its ``messages`` alone and stored nowhere.

The success body is FastGPT's: ``id`` is the chatId, ``model`` is empty and ``usage``
holds placeholder counts of 1. ``workflow_error`` makes the app's last node fail:
the answer then carries ``error`` and empty content.

Errors are FastGPT's envelope ``{code, statusText, message, data}``:

- ``unauthorized`` mode: ``514 unAuthApiKey`` with HTTP ``auth_failure_status``, 500
  as current FastGPT sends (older versions: 200). FastGPT's message is
  "Api Key 不合法"; the emulator appends the presented key so that tests can check
  it goes no further.
- a key in ``account_keys``: the 500 FastGPT gives for an account key used to chat.
- ``rate_limited`` / ``server_error``: the generic envelope with HTTP 429 (FastGPT has
  no 429 of its own; a gateway in front of it may) or 500.
- an unknown path: Next.js's HTML 404 page.
"""

from __future__ import annotations

from typing import Any

from tests.vendors.base import Recorded, Reply, VendorServer

PATH = "/api/v1/chat/completions"
NOT_FOUND_PAGE = b"<!DOCTYPE html><html><head><title>404: This page could not be found</title></head></html>"
ACCOUNT_KEY_MESSAGE = "Key is error. You need to use the app key rather than the account key."


class FastGPTEmulator(VendorServer):
    name = "fastgpt"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reset()

    def reset(self) -> None:
        """A fresh server's behaviour: no requests, chats or scripting."""
        super().reset()
        self.auth_failure_status = 500
        self.account_keys: set[str] = set()
        self.workflow_error: str | None = None
        self.chats: dict[str, list[tuple[str, str]]] = {}

    def answer(self, request: Recorded, text: str) -> Reply:
        if request.method != "POST" or request.path != PATH:
            return Reply(404, NOT_FOUND_PAGE, {"content-type": "text/html; charset=utf-8"})
        if self.presented_key(request) in self.account_keys:
            return Reply(500, _envelope(500, "error", ACCOUNT_KEY_MESSAGE))
        body = request.json
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return Reply(500, _envelope(500, "error", "messages is empty"))
        chat_id = body.get("chatId")
        if self.workflow_error is not None:
            text = ""
        if chat_id:
            # FastGPT takes the last message as the question and the stored chat as its history.
            history = self.chats.setdefault(chat_id, [])
            history += [("user", str(messages[-1].get("content", ""))), ("assistant", text)]
        answer: dict[str, Any] = {
            "id": chat_id or "",
            "model": "",
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 1},
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop", "index": 0}],
        }
        if self.workflow_error is not None:
            answer["error"] = {"message": self.workflow_error}
        return Reply(200, answer)

    def error_body(self, status: int, request: Recorded) -> Any:
        if status == 401:
            return _envelope(514, "unAuthApiKey", f"Api Key 不合法: {self.presented_key(request)}")
        if status == 429:
            return _envelope(429, "error", "Too many requests, please try again later")
        return _envelope(500, "error", "服务器发生错误")

    def _respond(self, request: Recorded) -> Reply:
        reply = super()._respond(request)
        if reply.status == 401:
            # FastGPT never sends 401: a rejected key is an envelope under 500 (or 200).
            return Reply(self.auth_failure_status, reply.body, reply.headers)
        return reply


def _envelope(code: int, status_text: str, message: str) -> dict[str, Any]:
    return {"code": code, "statusText": status_text, "message": message, "data": None}
