"""What the runtime needs from the outside world, as small protocols.

Activities write to a :class:`MessageLog` (and deliver through channels,
:mod:`engine.channels`); the store provides the production implementation,
tests provide their own. The file-based log here is the embedded default until
the database store exists.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from engine.message_log import RecordInput


class MessageLog(Protocol):
    """Durable record of every inbound and outbound message of a conversation."""

    def record(self, entry: RecordInput) -> None: ...

    async def write(self, entry: RecordInput) -> None:
        """``record`` for callers on an event loop, without blocking it."""
        ...


class JsonlMessageLog:
    """One JSON line per message under ``<root>/<conversation id>.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Entries written by this process; a restarted worker may still repeat one
        # (the database store keys entries instead).
        self._written: set[tuple[str, str, str, str]] = set()

    def path(self, conversation_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in conversation_id)
        return self.root / f"{safe}.jsonl"

    def record(self, entry: RecordInput) -> None:
        """Append an entry once: a local activity re-run with its workflow task writes it again."""
        # A text revision (the inbound pipeline changed the text) is a new line, not a repeat.
        revision = entry.text if entry.replaces_text else ""
        identity = (entry.conversation_id, entry.message_id, entry.direction, entry.status + revision)
        line = json.dumps(asdict(entry), ensure_ascii=False)
        with self._lock:
            if identity in self._written:
                return
            with self.path(entry.conversation_id).open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            self._written.add(identity)

    async def write(self, entry: RecordInput) -> None:
        await asyncio.to_thread(self.record, entry)

    def entries(self, conversation_id: str) -> list[RecordInput]:
        try:
            lines = self.path(conversation_id).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [RecordInput(**json.loads(line)) for line in lines if line.strip()]
