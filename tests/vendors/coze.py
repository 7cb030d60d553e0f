"""A local Coze: the API v3 chat (non-streaming), with Coze's envelope, chats and errors.

Endpoints: ``POST /v3/chat`` (``?conversation_id=`` optional) creates a chat and
answers ``status: in_progress``; ``GET /v3/chat/retrieve`` walks each chat's state
machine (``in_progress_polls`` retrieves answer ``in_progress``, 1 by default, then
the chat ends as ``outcome``: ``completed``, ``failed`` with ``last_error_code``,
``requires_action`` or ``canceled``); ``GET /v3/chat/message/list`` gives a completed
chat's messages (the ``answer`` with the text, ``extra_answers``, a ``verbose``
"generate_answer_finish" and ``follow_ups``); ``POST /v3/chat/cancel`` cancels a
running chat. The text of a chat is fixed when it is created, so the ``empty`` mode
applies to the whole chat when it hits the create request.

Like Coze, every answer is the envelope ``{"code", "msg", "data", "detail"}``, and
most errors come with HTTP 200 and a non-zero ``code``: a create without ``bot_id``
or ``user_id`` or ``additional_messages`` is 4000, ``stream: false`` without
``auto_save_history: true`` 4007, an unknown conversation 4002, a conversation with
a running chat 4016, an unknown chat 4001, cancelling a finished chat 4104.
``fail_next(code, on=step)`` answers the next request of a step (``chat``,
``retrieve``, ``list``, ``cancel``) with an envelope error; the 4100 message echoes
the presented token, as does the HTTP 401 of the ``unauthorized`` mode, so that
tests can prove it never leaks further. The base modes answer real HTTP 401 (4100),
429 (4020) and 500 (5000) with the same envelope.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.vendors.base import Recorded, Reply, VendorServer

__all__ = ["CozeEmulator"]

_STEPS = {
    ("POST", "/v3/chat"): "chat",
    ("GET", "/v3/chat/retrieve"): "retrieve",
    ("GET", "/v3/chat/message/list"): "list",
    ("POST", "/v3/chat/cancel"): "cancel",
}
_MESSAGES = {
    4000: "invalid param",
    4001: "Invalid chat",
    4002: "invalid conversation",
    4006: "invalid bot",
    4007: "stream false is only allowed when auto save is true",
    4013: "model error",
    4014: "the question cannot be answered",
    4016: "the conversation has a chat in progress",
    4019: "insufficient balance for bot calls",
    4020: "RPM of bot calls exceeded",
    4100: "authentication is invalid",
    4101: "the token you entered does not have permission",
    4104: "the chat cannot be canceled",
    5000: "internal server error",
}
_HTTP_CODES = {401: 4100, 403: 4101, 429: 4020, 500: 5000}
_FINAL = frozenset({"completed", "failed", "requires_action", "canceled"})


@dataclass
class Chat:
    """One chat as the emulator keeps it."""

    id: str
    conversation_id: str
    bot_id: str
    text: str
    polls_left: int
    outcome: str
    last_error_code: int
    answers: tuple[str, ...]
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "in_progress"


class CozeEmulator(VendorServer):
    """Coze's API v3 chat; see the module docstring."""

    name = "coze"

    def __init__(self, *, reply_text: str = "Hello from the emulator.", delay: float = 5.0) -> None:
        super().__init__(reply_text=reply_text, delay=delay)
        self.in_progress_polls = 1
        self.outcome = "completed"
        self.last_error_code = 4013
        self.input_count = 242
        self.output_count = 56
        self.extra_answers: tuple[str, ...] = ()
        self.follow_ups: tuple[str, ...] = ("How long does delivery take?",)
        self.chats: dict[str, Chat] = {}
        self.conversations: dict[str, list[dict[str, Any]]] = {}  # id -> saved messages
        self._failures: dict[str, deque[int]] = {}
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    def __enter__(self) -> CozeEmulator:
        self.start()
        return self

    # -- scripting -----------------------------------------------------------------

    def fail_next(self, code: int, *, on: str = "chat") -> CozeEmulator:
        """Answer the next ``on`` request (in ``ok`` mode) with HTTP 200 and error ``code``."""
        if on not in _STEPS.values():
            raise ValueError(f"unknown step {on!r}")
        with self._state:
            self._failures.setdefault(on, deque()).append(code)
        return self

    def forget_conversations(self) -> None:
        """Make every conversation id unknown, as deleting them in Coze does."""
        with self._state:
            self.conversations.clear()

    # -- the vendor ----------------------------------------------------------------

    def answer(self, request: Recorded, text: str) -> Reply:
        step = _STEPS.get((request.method, request.path))
        if step is None:
            return Reply(404, {"code": 4000, "msg": "not found", "detail": _detail()})
        with self._state:
            failures = self._failures.get(step)
            if failures:
                return Reply(200, self._error(failures.popleft(), request))
            handler = {"chat": self._create, "retrieve": self._retrieve, "list": self._list, "cancel": self._cancel}
            return handler[step](request, text)

    def error_body(self, status: int, request: Recorded) -> Any:
        return self._error(_HTTP_CODES.get(status, 5000), request)

    def _error(self, code: int, request: Recorded) -> dict[str, Any]:
        msg = _MESSAGES.get(code, "request failed")
        if code == 4100:
            # Echo the token, as some vendors do, so that tests can prove it never leaks further.
            msg = f"{msg}: the token {self.presented_key(request)} is incorrect"
        return {"code": code, "msg": msg, "detail": _detail()}

    def _create(self, request: Recorded, text: str) -> Reply:
        body = request.json if request.body else None
        code = _invalid_create(body)
        if code:
            return Reply(200, self._error(code, request))
        assert isinstance(body, dict)
        conversation_id = (request.query.get("conversation_id") or [""])[0]
        if conversation_id:
            if conversation_id not in self.conversations:
                return Reply(200, self._error(4002, request))
            if any(c.conversation_id == conversation_id and c.status not in _FINAL for c in self.chats.values()):
                return Reply(200, self._error(4016, request))
        else:
            conversation_id = self._new_id()
            self.conversations[conversation_id] = []
        chat = Chat(
            id=self._new_id(),
            conversation_id=conversation_id,
            bot_id=body["bot_id"],
            text=text,
            polls_left=self.in_progress_polls,
            outcome=self.outcome,
            last_error_code=self.last_error_code,
            answers=tuple(t for t in (text, *self.extra_answers) if t),
        )
        self.chats[chat.id] = chat
        self.conversations[conversation_id].extend(body["additional_messages"])
        return Reply(200, _envelope(self._chat_data(chat)))

    def _retrieve(self, request: Recorded, text: str) -> Reply:
        chat = self._find(request.query)
        if isinstance(chat, int):
            return Reply(200, self._error(chat, request))
        if chat.status not in _FINAL:
            if chat.polls_left > 0:
                chat.polls_left -= 1
            else:
                self._finish(chat, chat.outcome)
        return Reply(200, _envelope(self._chat_data(chat)))

    def _list(self, request: Recorded, text: str) -> Reply:
        chat = self._find(request.query)
        if isinstance(chat, int):
            return Reply(200, self._error(chat, request))
        if chat.status != "completed":
            return Reply(200, _envelope([]))
        messages = [self._message(chat, "answer", answer) for answer in chat.answers]
        finish = '{"msg_type":"generate_answer_finish","data":"","from_module":null,"from_unit":null}'
        messages.append(self._message(chat, "verbose", finish))
        messages += [self._message(chat, "follow_up", question) for question in self.follow_ups]
        return Reply(200, _envelope(messages))

    def _cancel(self, request: Recorded, text: str) -> Reply:
        body = request.json if request.body else None
        if not isinstance(body, dict):
            return Reply(200, self._error(4000, request))
        query = {"conversation_id": [str(body.get("conversation_id", ""))], "chat_id": [str(body.get("chat_id", ""))]}
        chat = self._find(query)
        if isinstance(chat, int):
            return Reply(200, self._error(chat, request))
        if chat.status in _FINAL:
            return Reply(200, self._error(4104, request))
        self._finish(chat, "canceled")
        return Reply(200, _envelope(self._chat_data(chat)))

    # -- chats ---------------------------------------------------------------------

    def _find(self, query: dict[str, list[str]]) -> Chat | int:
        """The chat a query names, or Coze's error code."""
        conversation_id = (query.get("conversation_id") or [""])[0]
        chat_id = (query.get("chat_id") or [""])[0]
        if not conversation_id or not chat_id:
            return 4000
        chat = self.chats.get(chat_id)
        if chat is None or chat.conversation_id != conversation_id:
            return 4001
        return chat

    def _finish(self, chat: Chat, status: str) -> None:
        chat.status = status
        if status == "completed":
            history = self.conversations.get(chat.conversation_id)
            if history is not None:
                history += [{"role": "assistant", "type": "answer", "content": a} for a in chat.answers]

    def _chat_data(self, chat: Chat) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": chat.id,
            "conversation_id": chat.conversation_id,
            "bot_id": chat.bot_id,
            "created_at": chat.created_at,
            "section_id": chat.conversation_id,
            "status": chat.status,
        }
        if chat.status == "completed":
            data["completed_at"] = chat.created_at + 4
            data["usage"] = {
                "input_count": self.input_count,
                "output_count": self.output_count,
                "token_count": self.input_count + self.output_count,
            }
        elif chat.status == "failed":
            data["failed_at"] = chat.created_at + 2
            data["last_error"] = {"code": chat.last_error_code, "msg": _MESSAGES.get(chat.last_error_code, "failed")}
        elif chat.status == "requires_action":
            data["required_action"] = {
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [
                        {
                            "id": f"call_{chat.id}",
                            "type": "function",
                            "function": {"name": "local_data_assistant", "arguments": '{"location":"Nanjing"}'},
                        }
                    ]
                },
            }
        else:
            data["last_error"] = {"code": 0, "msg": ""}
        return data

    def _message(self, chat: Chat, kind: str, content: str) -> dict[str, Any]:
        return {
            "id": self._new_id(),
            "conversation_id": chat.conversation_id,
            "bot_id": chat.bot_id,
            "chat_id": chat.id,
            "section_id": chat.conversation_id,
            "role": "assistant",
            "type": kind,
            "content": content,
            "content_type": "text",
            "meta_data": {},
            "created_at": chat.created_at + 3,
            "updated_at": chat.created_at + 3,
        }

    def _new_id(self) -> str:
        # Coze ids are 19-digit decimal strings.
        return str(7_381_371_876_397_940_000 + next(self._ids))


def _invalid_create(body: Any) -> int:
    """Coze's error code for a create request it refuses, 0 when it is fine."""
    if not isinstance(body, dict):
        return 4000
    if not isinstance(body.get("bot_id"), str) or not body["bot_id"]:
        return 4000
    if not isinstance(body.get("user_id"), str) or not body["user_id"]:
        return 4000
    if body.get("stream") is not True and body.get("auto_save_history") is not True:
        return 4007
    messages = body.get("additional_messages")
    if not isinstance(messages, list) or not messages:
        return 4000
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return 4000
        if message.get("content_type") not in ("text", "object_string") or not isinstance(message.get("content"), str):
            return 4000
        if message.get("type", "question") == "question" and message["role"] != "user":
            return 4000
    return 0


def _envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "msg": "", "data": data, "detail": _detail()}


def _detail() -> dict[str, str]:
    return {"logid": time.strftime("%Y%m%d%H%M%S") + "467C48D89D6DB2F37A23"}
