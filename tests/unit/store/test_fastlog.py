"""The message log's fast path writes exactly what the full ORM path writes.

On SQLite the fast path hands its own SQL and values to the driver; if a column
type's conversion drifted (JSON text, UTC time text), rows written by the two
paths would read back differently. Compared here on the raw stored values, for
the driver path and for the SQLAlchemy Core path other databases take.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.types import RecordInput
from engine.store import Store, fastlog
from engine.store.fastlog import record_new
from engine.store.messages import _record

T0 = "2026-01-01T10:00:00+00:00"


@pytest.fixture(name="fx_store", params=["driver", "core"])
def fixture_store(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    if request.param == "core":
        # The path other databases (PostgreSQL) take, checked against the same rules here.
        monkeypatch.setattr(fastlog, "_write_sqlite", fastlog._write_core)
    store = Store(f"sqlite:///{tmp_path / 'flowdesk.db'}")
    store.upgrade()
    yield store
    store.close()


def open_conversation(store: Store) -> str:
    contact = store.resolve_contact("webchat", "visitor-1")
    conversation_id = store.open_conversation(contact.id, "webchat")[0].id
    store.start_conversation_flow(conversation_id, "shop", "rev-1")
    return conversation_id


def stored(store: Store, table: str, key: str, value: Any) -> dict[str, Any]:
    """A row as the database holds it, bypassing every type conversion of SQLAlchemy."""
    path = str(store.engine.url.database)
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
    assert row is not None
    return dict(row)


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
    # The same text of a time, differing only in the moment written.
    assert shape(by_fast.pop("created_at")) == shape(by_orm.pop("created_at")) == "0000-00-00 00:00:00.000000"
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
    assert shape(after["updated_at"]) == shape(before["updated_at"])

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
