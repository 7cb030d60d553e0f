"""The common case of the message log in two statements: a new message in or out.

Every customer message and every reply is logged once or twice on the reply
path, so the ORM's read-then-write (a session, a lookup, an insert, a flush, an
update, a flush) was the largest CPU cost of a round trip. Here a new entry is
one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` and one ``UPDATE`` of its
conversation, in one write transaction. Anything else — a repeated entry, an
event that moves the conversation's status, a reply while an agent has the
conversation, a conversation the store does not know — falls back to the full
path in :mod:`engine.store.messages`, which handles every rule.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from engine.runtime.types import RecordInput
from engine.store.columns import utcnow
from engine.store.conversations import ENDED, HANDOFF
from engine.store.tables import Conversation, Message

MESSAGES = Message.__table__  # type: ignore[attr-defined]
CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]


class NotTheCommonCase(Exception):
    """Rolls the fast attempt back: the full path takes the entry."""


def eligible(entry: RecordInput) -> bool:
    """Messages in and out take the fast path; events and endings move statuses (full path)."""
    return entry.direction in ("in", "out") and entry.status != ENDED


def record_new(writer: Engine, entry: RecordInput, choices: list[str] | None, raw_ref: str | None) -> Message | None:
    """Log a new entry; None when it is not new or its conversation needs the full rules."""
    now = utcnow()
    values: dict[str, Any] = {
        "conversation_id": entry.conversation_id,
        "direction": entry.direction,
        "message_id": entry.message_id,
        "channel": entry.channel,
        "sender": entry.sender,
        "text": entry.text,
        "choices": list(choices or []),
        "status": entry.status,
        "detail": entry.detail,
        "meta": entry.meta,
        "raw_ref": raw_ref,
        "flow": entry.flow,
        "revision": entry.revision,
        "at": entry.at,
        "created_at": now,
    }
    touched: dict[str, Any] = {"updated_at": now}
    if entry.flow:
        touched["flow"] = entry.flow
    if entry.revision:
        touched["revision"] = entry.revision
    try:
        with writer.begin() as connection:
            inserted = connection.execute(_insert(writer).values(**values).returning(*MESSAGES.c)).first()
            if inserted is None:
                raise NotTheCommonCase  # already logged (a repeat): the full path compares statuses
            # A reply while an agent has the conversation may end the hand-off: full rules.
            open_conversation = (CONVERSATIONS.c.id == entry.conversation_id) & (CONVERSATIONS.c.status != HANDOFF)
            if connection.execute(update(CONVERSATIONS).where(open_conversation).values(**touched)).rowcount != 1:
                raise NotTheCommonCase
    except (NotTheCommonCase, IntegrityError):  # IntegrityError: a conversation the store never saw
        return None
    return Message.model_validate(dict(inserted._mapping))


def _insert(engine: Engine) -> Insert:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement: Insert = dialect.insert(MESSAGES).on_conflict_do_nothing()
    return statement
