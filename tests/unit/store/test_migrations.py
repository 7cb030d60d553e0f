"""The store's schema comes from hand-written Alembic migrations, run from code.

Upgrading creates every table, upgrading again changes nothing and loses nothing,
and the migrations match the sqlmodel tables exactly: a model changed without a
migration fails here, not in production. Tests that take ``fx_engine`` or ``fx_db_url``
run on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from engine.store import Store, create_db_engine, current_revision, head_revision, upgrade
from engine.store.db import MIGRATIONS, alembic_config, writer
from engine.store.tables import TABLES

TABLE_NAMES = {str(model.__table__.name) for model in TABLES}  # type: ignore[attr-defined]


@pytest.fixture(name="fx_engine")
def fixture_engine(fx_db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fx_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(name="fx_sqlite_engine")
def fixture_sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db' / 'flowdesk.db'}")
    yield engine
    engine.dispose()


def test_upgrade_from_empty_creates_every_table(fx_engine: Engine) -> None:
    assert current_revision(fx_engine) is None
    upgrade(fx_engine)
    assert set(inspect(fx_engine).get_table_names()) == TABLE_NAMES | {"alembic_version"}
    assert current_revision(fx_engine) == head_revision()


def test_sqlite_connections_get_their_pragmas(fx_sqlite_engine: Engine) -> None:
    with fx_sqlite_engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_upgrading_again_is_a_no_op_and_keeps_the_data(fx_db_url: str) -> None:
    url = fx_db_url
    store = Store(url)
    try:
        store.upgrade()
        contact = store.resolve_contact("telegram", "42", name="Ann")
        store.put_revision("abc", "flow: demo\n", flow="demo")
        store.close()
        upgrade(url)  # by URL, as `flowdesk db upgrade` does
        store.upgrade()
        assert store.revision() == head_revision()
        assert store.is_current()
        again = store.resolve_contact("telegram", "42")
        assert (again.id, again.name) == (contact.id, "Ann")
        assert store.revision_source("abc") == "flow: demo\n"
    finally:
        store.close()


def test_the_head_is_the_one_migration_chain_in_the_package() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [head_revision()]
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert Path(MIGRATIONS).is_relative_to(Path(__file__).resolve().parents[3] / "engine")  # ships in the wheel


def test_migrations_match_the_tables(fx_engine: Engine) -> None:
    upgrade(fx_engine)
    inspector = inspect(fx_engine)
    for name in TABLE_NAMES:
        declared = SQLModel.metadata.tables[name]
        assert {c["name"] for c in inspector.get_columns(name)} == {c.name for c in declared.columns}, name
        # PostgreSQL also lists the index behind each unique constraint; those are compared as constraints.
        indexes = {i["name"] for i in inspector.get_indexes(name) if not i.get("duplicates_constraint")}
        assert indexes == {str(i.name) for i in declared.indexes}, name
        uniques = {u["name"] for u in inspector.get_unique_constraints(name)}
        assert uniques == {c.name for c in declared.constraints if type(c).__name__ == "UniqueConstraint"}, name
    # Alembic's own comparison also sees types, nullability, keys and index options.
    with fx_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_the_inbound_index_is_partial(fx_engine: Engine) -> None:
    upgrade(fx_engine)
    query = (
        "SELECT sql FROM sqlite_master WHERE name = 'uq_message_inbound_channel_id'"
        if fx_engine.dialect.name == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_message_inbound_channel_id'"
    )
    with fx_engine.connect() as connection:
        sql = connection.exec_driver_sql(query).scalar()
    assert sql is not None and "UNIQUE" in sql.upper()
    # PostgreSQL shows the condition as ((direction)::text = 'in'::text).
    assert re.search(r"WHERE \(*direction\)*(::text)? = 'in'", sql), sql


def _upgraded_from(engine: Engine, url: str, revision: str, *statements: str) -> Store:
    """A database at migration ``revision`` holding the rows ``statements`` write, upgraded to the head."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for statement in statements:
            connection.exec_driver_sql(statement)
    assert current_revision(engine) == revision
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    return Store(url)


def test_upgrading_a_0001_database_keeps_its_messages(fx_engine: Engine, fx_db_url: str) -> None:
    """0002 adds messages' ``meta``: rows written before it keep everything and read as ``{}``."""
    store = _upgraded_from(
        fx_engine,
        fx_db_url,
        "0001",
        "INSERT INTO contact (id, tags, created_at) VALUES ('c1', '[]', '2026-01-01 00:00:00')",
        "INSERT INTO conversation (id, contact_id, channel, status, flow, revision, created_at, updated_at)"
        " VALUES ('v1', 'c1', 'webchat', 'open', 'demo', 'r1', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        "INSERT INTO message (conversation_id, direction, message_id, channel, sender, text, choices, status,"
        " detail, flow, revision, at, created_at) VALUES ('v1', 'in', 'm1', 'webchat', 'customer', 'hello',"
        " '[]', 'received', '', 'demo', 'r1', '2026-01-01T00:00:00', '2026-01-01 00:00:00')",
    )
    try:
        (row,) = store.transcript("v1")
        assert (row.message_id, row.text, row.status, row.meta) == ("m1", "hello", "received", {})
    finally:
        store.close()


def test_upgrading_a_0002_database_keeps_its_revisions(fx_engine: Engine, fx_db_url: str) -> None:
    """0003 adds revisions' ``knowledge``: revisions stored before it keep their source and have none."""
    store = _upgraded_from(
        fx_engine,
        fx_db_url,
        "0002",
        "INSERT INTO flow_revision (revision, flow, source, author, message, created_at)"
        " VALUES ('r1', 'demo', 'flow: demo', 'ann', 'first', '2026-01-01 00:00:00')",
    )
    try:
        row = store.get_revision("r1")
        assert row is not None
        assert (row.source, row.author, row.knowledge) == ("flow: demo", "ann", {})
        assert store.revision_knowledge("r1") == {}
    finally:
        store.close()
