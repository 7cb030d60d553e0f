"""The common case of the message log in two statements: a new message in or out.

Every customer message and every reply is logged on the reply path, so the ORM's
read-then-write (a session, a lookup, an insert, a flush, an update, a flush) was
the largest CPU cost of a round trip. Here a new entry is one ``INSERT ... ON
CONFLICT DO NOTHING RETURNING seq`` and one ``UPDATE`` of its conversation, in one
write transaction (the same UPDATE moves the inbox's last message and its time).
Anything else — a repeated entry, an event that moves the conversation's status,
a reply while an agent has the conversation, a conversation the store does not
know — falls back to the full path in
:mod:`engine.store.messages`, which handles every rule.

On SQLite the two statements go straight to the driver: SQLAlchemy's statement
building and execution context cost about 0.8 ms per entry, five times the
database's own work, and held the GIL the worker needs (``bench/roundtrip.py``).
The SQL text is still SQLAlchemy's, compiled once from the table definitions;
only the two value conversions SQLAlchemy would make (JSON columns to text, UTC
times to SQLite's naive text) are done here, and a test checks that both paths
write the same row. Other databases take the Core path.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Engine, Insert, bindparam, case, func, literal_column, null, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from engine.errors import FlowdeskError
from engine.message_log import RecordInput
from engine.store.columns import utcnow
from engine.store.conversations import ENDED, HANDOFF
from engine.store.tables import Conversation, Message

MESSAGES = Message.__table__  # type: ignore[attr-defined]
CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]

#: Values SQLAlchemy would bind as JSON text (JSON columns), and as naive UTC text
#: on SQLite (UTCDateTime columns: the message's created_at, the conversation's updated_at).
_JSON_COLUMNS = ("choices", "meta")
_TIME_VALUES = ("created_at", "now", "last_at")
#: SQLAlchemy's storage format for SQLite datetimes (microseconds always written).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


class NotTheCommonCase(FlowdeskError):
    """Rolls the fast attempt back: the full path takes the entry."""


def eligible(entry: RecordInput) -> bool:
    """Messages in and out take the fast path; events and endings move statuses (full path)."""
    return entry.direction in ("in", "out") and entry.status != ENDED


def entry_columns(entry: RecordInput, choices: list[str] | None, raw_ref: str | None) -> dict[str, Any]:
    """A new message row's columns from a log entry (both write paths build rows with it)."""
    return {
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
        "channel_message_id": entry.channel_message_id or None,
        "flow": entry.flow,
        "revision": entry.revision,
        "at": entry.at,
    }


class Logged(NamedTuple):
    """A new entry as written: its ``seq`` and column values."""

    seq: int
    values: dict[str, Any]

    def row(self) -> Message:
        """The entry as the store's row (built only for callers that use it: a third of a write's time)."""
        return Message.model_validate({**self.values, "seq": self.seq})


def record_new(writer: Engine, entry: RecordInput, choices: list[str] | None, raw_ref: str | None) -> Logged | None:
    """Log a new entry; None when it is not new or its conversation needs the full rules."""
    now = utcnow()
    values = {**entry_columns(entry, choices, raw_ref), "created_at": now}
    # The conversation keeps its flow and revision when the entry names none.
    # The inbox's last message rides on the same UPDATE (no statement more on the hot path).
    touched = {
        "conversation": entry.conversation_id,
        "handoff": HANDOFF,
        "now": now,
        "given_flow": entry.flow,
        "given_revision": entry.revision,
        "last_message": last_message_text(entry.text),
        "last_at": moment(entry.at) or now,
        # An agent's reply takes the fast path in a handed-off conversation too (the full
        # rules would only say what this says: it is held, it no longer waits).
        "agent": entry.sender.removeprefix("agent:") if entry.sender.startswith("agent:") else None,
    }
    try:
        if writer.dialect.name == "sqlite":
            seq = _write_sqlite(writer, values, touched)
        else:
            seq = _write_core(writer, values, touched)
    except (NotTheCommonCase, IntegrityError, sqlite3.IntegrityError):
        # IntegrityError: a conversation the store never saw (its foreign key; the Core path finds no row first)
        return None
    return Logged(seq, values)


def _write_sqlite(writer: Engine, values: dict[str, Any], touched: dict[str, Any]) -> int:
    insert_sql, update_sql = _sqlite_statements()
    connection = writer.raw_connection()
    try:
        cursor = connection.cursor()
        # The engine's connections run without the driver's transactions (see engine.store.db):
        # take the write lock up front, as every write transaction of the store does.
        cursor.execute("BEGIN IMMEDIATE")
        try:
            inserted = cursor.execute(insert_sql, _sqlite_values(values)).fetchone()
            if inserted is None:
                raise NotTheCommonCase  # already logged (a repeat): the full path compares statuses
            # A reply while an agent has the conversation may end the hand-off: full rules.
            if cursor.execute(update_sql, _sqlite_values(touched)).rowcount != 1:
                raise NotTheCommonCase
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        return int(inserted[0])
    finally:
        connection.close()  # back to the pool


def _sqlite_values(values: dict[str, Any]) -> dict[str, Any]:
    """Column values as SQLAlchemy would bind them on SQLite (JSON and UTCDateTime columns)."""
    bound = dict(values)
    for name in _JSON_COLUMNS:
        if name in bound:
            bound[name] = json.dumps(bound[name])
    for name in _TIME_VALUES:
        if bound.get(name) is not None:
            bound[name] = bound[name].astimezone(UTC).strftime(_SQLITE_TIME)
    return bound


@cache
def _sqlite_statements() -> tuple[str, str]:
    """The SQL of the insert and the update for the SQLite driver, compiled once from the tables."""
    dialect = sqlite.dialect(paramstyle="named")
    insert = _insert(sqlite).values({c.name: bindparam(c.name) for c in MESSAGES.c if c.name != "seq"})
    return (
        str(insert.returning(MESSAGES.c.seq).compile(dialect=dialect)),
        str(_touch_conversation().compile(dialect=dialect)),
    )


def _write_core(writer: Engine, values: dict[str, Any], touched: dict[str, Any]) -> int:
    dialect = postgresql if writer.dialect.name == "postgresql" else sqlite
    with writer.begin() as connection:
        # The conversation first: its row lock makes writers of one conversation take turns
        # (PostgreSQL runs them side by side), so seqs are drawn in commit order and a
        # client's "after seq N" cursor never passes an entry still uncommitted. An unknown
        # or handed-off conversation updates no row: the full rules take the entry.
        if connection.execute(_touch_conversation(), touched).rowcount != 1:
            raise NotTheCommonCase
        inserted = connection.execute(_insert(dialect).values(**values).returning(MESSAGES.c.seq)).first()
        if inserted is None:
            raise NotTheCommonCase  # already logged (a repeat): the full path compares statuses
    return int(inserted[0])


def _insert(dialect: Any) -> Insert:
    statement: Insert = dialect.insert(MESSAGES).on_conflict_do_nothing()
    return statement


@cache
def _touch_conversation() -> Any:
    """Move an open conversation's activity time (and flow, revision when given) along."""
    columns = CONVERSATIONS.c
    # Parameters named apart from the columns: SQLAlchemy reserves those names in SET.
    keep_unless_given = {
        name: func.coalesce(func.nullif(bindparam(f"given_{name}"), literal_column("''")), columns[name])
        for name in ("flow", "revision")
    }
    agent = bindparam("agent", type_=columns.assigned_agent.type)
    handed_off = columns.status == bindparam("handoff")
    return (
        update(CONVERSATIONS)
        .where((columns.id == bindparam("conversation")) & (~handed_off | agent.is_not(None)))
        .values(
            updated_at=bindparam("now", type_=columns.updated_at.type),
            last_message=bindparam("last_message"),
            last_message_at=bindparam("last_at", type_=columns.last_message_at.type),
            # An agent's reply to a conversation nobody holds yet claims it (as the workflow does);
            # one over another's claim (a supervisor stepping in) leaves the holder as it is.
            assigned_agent=case(
                (handed_off & agent.is_not(None), func.coalesce(columns.assigned_agent, agent)),
                else_=columns.assigned_agent,
            ),
            waiting_since=case((handed_off & agent.is_not(None), null()), else_=columns.waiting_since),
            **keep_unless_given,
        )
    )


#: How much of a message the inbox row keeps as its preview.
LAST_MESSAGE_CHARS = 500


def last_message_text(text: str) -> str:
    """A message's preview for the inbox: its text, cut to LAST_MESSAGE_CHARS."""
    return text[:LAST_MESSAGE_CHARS]


def moment(at: str) -> datetime | None:
    """An entry's ISO time as an aware datetime (UTC when it names no offset); None if unreadable."""
    try:
        parsed = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
