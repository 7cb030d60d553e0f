"""``outbox``: a channel that writes each reply as one JSON line to a file.

A stand-in for a real messaging API, small enough to read in one go, with the two
things every channel needs: sending is idempotent by the delivery ``key`` (a
retried delivery of a key already written returns ``duplicate`` and writes
nothing), and ``decode`` turns the channel's inbound payload into messages.

Settings (``channels.outbox`` in flowdesk.yaml)::

    channels:
      outbox:
        path: outbox.jsonl      # relative paths: to the worker's working directory

Each line: ``{"key", "conversation_id", "contact", "sender", "text", "choices", "at"}``.

Inbound payloads are JSON objects ``{"id": "...", "text": "...", "from": "..."}``
(or a list of them). Flowdesk's server does not mount webhooks for plugin
channels yet, so ``decode`` is for a program of your own that hands the messages
to ``Conversations.send``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.pipeline.types import Message
from engine.runtime.types import Delivered, DeliverInput


class Outbox:
    """Appends replies to a JSON-lines file; a key already in the file is not written again."""

    name = "outbox"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError("channels.outbox.path is missing: set the file replies go to (or `enabled: false`)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Deliveries run concurrently in the worker's threads; one writer at a time.
        self._lock = threading.Lock()
        # Keys already in the file: a worker restarted mid-retry does not write a reply twice.
        self._keys = {line["key"] for line in self.lines()}

    def lines(self) -> list[dict[str, Any]]:
        """Everything written so far, oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def send(self, message: DeliverInput) -> Delivered:
        # File I/O off the event loop: the worker's other activities keep running.
        written = await asyncio.to_thread(self._append, message)
        return Delivered(message.key, "sent" if written else "duplicate", channel_message_id=message.key)

    def _append(self, message: DeliverInput) -> bool:
        record = {
            "key": message.key,
            "conversation_id": message.conversation_id,
            "contact": message.contact,
            "sender": message.sender,
            "text": message.text,
            "choices": message.choices,
            "at": message.at,
        }
        with self._lock:
            if message.key in self._keys:
                return False
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._keys.add(message.key)
        return True

    def decode(self, raw: Any) -> list[Message]:
        """A JSON payload (text, bytes or already parsed) -> its messages; ValueError says what is wrong."""
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        items = data if isinstance(data, list) else [data]
        return [self._message(item) for item in items]

    def _message(self, item: Any) -> Message:
        if not isinstance(item, Mapping):
            raise ValueError(f"an outbox message is a JSON object, got {type(item).__name__}")
        message_id, text = item.get("id"), item.get("text")
        if not isinstance(message_id, str) or not message_id or not isinstance(text, str):
            raise ValueError('an outbox message needs a string "id" and "text"')
        sender = item.get("from")
        meta = {"from": sender} if isinstance(sender, str) and sender else {}
        return Message(id=message_id, text=text, channel=self.name, meta=meta)
