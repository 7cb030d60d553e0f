"""The message log's fast path writes exactly what the full ORM path writes.

On SQLite the fast path hands its own SQL and values to the driver; if a column
type's conversion drifted (JSON text, UTC time text), rows written by the two
paths would read back differently. Compared here on the raw stored values, for
the driver path and for the SQLAlchemy Core path other databases take, on SQLite
and on a real PostgreSQL database (see conftest.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.message_log import RecordInput
from engine.store import Store, fastlog
from engine.store.fastlog import record_new
from engine.store.messages import _record

T0 = "2026-01-01T10:00:00+00:00"


@pytest.fixture(name="fx_store", params=["driver", "core", "postgresql"])
def fixture_store(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    if request.param == "postgresql":
        url = request.getfixturevalue("fx_postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'flowdesk.db'}"
    if request.param == "core":
        # The path other databases (PostgreSQL) take, checked against the same rules on SQLite too.
        monkeypatch.setattr(fastlog, "_write_sqlite", fastlog._write_core)
    store = Store(url)
    store.upgrade()
    yield store
    store.close()


def open_conversation(store: Store) -> str:
    contact = store.resolve_contact("webchat", "visitor-1")
    conversation_id = store.open_conversation(contact.id, "webchat")[0].id
    store.start_conversation_flow(conversation_id, "shop", "rev-1")
    return conversation_id


def stored(store: Store, table: str, key: str, value: Any) -> dict[str, Any]:
    """A row as the database holds it, bypassing every type conversion of SQLAlchemy.

    On PostgreSQL through the driver: JSON columns as their stored text, times as the
    driver's aware datetimes (timestamptz holds a moment, not a text).
    """
    if store.engine.dialect.name == "postgresql":
        connection = store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", (table,)
            )
            columns = [f'"{name}"::text AS "{name}"' if kind == "json" else f'"{name}"' for name, kind in cursor]
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = %s", (value,))
            found = cursor.fetchone()
            assert found is not None
            return dict(zip([d[0] for d in cursor.description or ()], found, strict=True))
        finally:
            connection.close()
    path = str(store.engine.url.database)
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
    assert row is not None
    return dict(row)


def assert_time_shapes(*times: Any) -> None:
    """Stored times of the same kind: SQLite's naive UTC text, PostgreSQL's aware moments."""
    for moment in times:
        if isinstance(moment, datetime):
            assert moment.utcoffset() is not None, moment
        else:
            assert shape(moment) == "0000-00-00 00:00:00.000000", moment


def shape(text: str) -> str:
    return re.sub(r"\d", "0", text)


def reply(conversation_id: str, message_id: str) -> RecordInput:
    return RecordInput(
        conversation_id,
        "out",
        "Ihre Bestellung 🚚 kommt morgen",
        "webchat",
        message_id,
        T0,
        status="sent",
        sender="bot",
        flow="shop",
        revision="rev-2",
        meta={"ai": {"provider": "faq", "attempts": [{"ok": True, "ms": 1.5}]}, "note": "ü"},
    )


def test_the_fast_path_stores_what_the_orm_stores(fx_store: Store) -> None:
    conversation_id = open_conversation(fx_store)
    fast = record_new(fx_store._writer, reply(conversation_id, "k-fast"), ["Yes", "Nein"], "raw/1")
    with fx_store._write() as session:
        _record(session, reply(conversation_id, "k-orm"), ["Yes", "Nein"], "raw/1")

    assert fast is not None
    by_fast, by_orm = (stored(fx_store, "message", "message_id", key) for key in ("k-fast", "k-orm"))
    assert by_fast["seq"] == fast.seq
    for row in (by_fast, by_orm):
        del row["seq"], row["message_id"]
    # The same kind of time (on SQLite: the same text), differing only in the moment written.
    assert_time_shapes(by_fast.pop("created_at"), by_orm.pop("created_at"))
    assert by_fast == by_orm
    # And read back through the ORM, the fast row is the row the caller was given.
    [logged] = [m for m in fx_store.transcript(conversation_id) if m.message_id == "k-fast"]
    assert logged == fast.row()
    assert logged.created_at.tzinfo is not None


def test_the_fast_path_moves_the_conversation_along_as_the_orm_does(fx_store: Store) -> None:
    conversation_id = open_conversation(fx_store)
    before = stored(fx_store, "conversation", "id", conversation_id)
    assert record_new(fx_store._writer, reply(conversation_id, "k1"), None, None) is not None
    after = stored(fx_store, "conversation", "id", conversation_id)
    assert (after["flow"], after["revision"], after["status"]) == ("shop", "rev-2", "open")
    assert after["updated_at"] > before["updated_at"]
    assert_time_shapes(after["updated_at"], before["updated_at"])

    # An entry that names no revision leaves the conversation's as it was.
    unnamed = replace(reply(conversation_id, "k2"), flow="", revision="")
    assert record_new(fx_store._writer, unnamed, None, None) is not None
    assert stored(fx_store, "conversation", "id", conversation_id)["revision"] == "rev-2"


def test_what_the_fast_path_leaves_to_the_full_rules(fx_store: Store) -> None:
    conversation_id = open_conversation(fx_store)
    first = reply(conversation_id, "k1")
    assert record_new(fx_store._writer, first, None, None) is not None
    # A repeat, a conversation the store never saw, a handed-off conversation: none written here.
    assert record_new(fx_store._writer, first, None, None) is None
    assert record_new(fx_store._writer, reply("nobody-knows", "k2"), None, None) is None
    fx_store.record(RecordInput(conversation_id, "event", "support", "webchat", "h1", T0, status="handoff"))
    assert record_new(fx_store._writer, reply(conversation_id, "k3"), None, None) is None
    keys = [m.message_id for m in fx_store.transcript(conversation_id)]
    assert keys == ["k1", "h1"]  # the refused attempts rolled back: no half-written rows
