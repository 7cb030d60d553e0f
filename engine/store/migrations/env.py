"""Alembic environment for the store's migrations, run from code (no alembic.ini).

:func:`engine.store.db.upgrade` hands over an open connection in
``config.attributes["connection"]``; the migrations then run inside that
connection's transaction. Run from the ``alembic`` command (a developer writing a
new migration, see :func:`engine.store.db.alembic_config`), the URL comes from the
``sqlalchemy.url`` option instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import engine.store.tables  # noqa: F401 - registers the tables on SQLModel.metadata (for autogenerate)
from engine.store.db import create_db_engine


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection in config.attributes or set sqlalchemy.url")
    db = create_db_engine(url)
    try:
        with db.begin() as connection:
            _run(connection)
    finally:
        db.dispose()


def _offline() -> None:
    # ``upgrade --sql``: the SQL a DBA can review and run by hand.
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _offline()
else:
    _main()
