"""``flowdesk db upgrade|current``: the database schema.

``upgrade`` applies the store's migrations (creating the database if it is a new
SQLite file); ``current`` says which migration the database is at. The database
is ``--database-url``, else ``database.url`` from the settings (or
``FLOWDESK_DATABASE_URL``), else ``sqlite:///<data_dir>/flowdesk.db``.

The store is imported inside the commands: ``flowdesk --help`` loads every command
module, and SQLAlchemy plus Alembic cost a good part of a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import FlowdeskError
from engine.settings import Settings

Command = Callable[[argparse.Namespace], int]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "db",
        help="create or upgrade the database schema",
        description="Manage the database schema (SQLite by default, PostgreSQL through its URL).",
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        help="apply every migration the database lacks (creates a new SQLite database)",
        description="Bring the database schema to the newest revision. Safe to run again: data is never lost.",
    )
    add_database_options(upgrade)
    upgrade.set_defaults(func=guarded(run_upgrade))
    current = actions.add_parser(
        "current", help="print the schema revision of the database", description="Print the schema revision."
    )
    add_database_options(current)
    current.set_defaults(func=guarded(run_current))
    parser.set_defaults(func=_help(parser))


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--database-url``: shared by every command that opens the database."""
    parser.add_argument(
        "--config",
        "--settings",
        dest="config",
        metavar="FILE",
        help="settings file (default: ./flowdesk.yaml if present)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database to use (default: database.url from the settings, else sqlite:///<data_dir>/flowdesk.db)",
    )


def resolve_url(args: argparse.Namespace) -> str:
    """The database URL: the option, else the settings, else the SQLite default."""
    from engine.store.db import database_url  # noqa: PLC0415 - see the module docstring

    if args.database_url:
        return str(args.database_url)
    return database_url(Settings.load(args.config))


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL whose file does not exist (reading must not create it); else None."""
    from engine.store.db import parse_url  # noqa: PLC0415

    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return None if path.exists() else path


def guarded(command: Command) -> Command:
    """Run ``command``; a configuration or database problem becomes one line on stderr and status 1."""

    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

        from engine.store.db import describe  # noqa: PLC0415

        try:
            return command(args)
        except FlowdeskError as exc:
            message = str(exc)
        except SQLAlchemyError as exc:
            message = f"database error: {describe(exc)}"
        except OSError as exc:
            message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        print(f"error: {message}", file=sys.stderr)
        return 1

    return run


def run_upgrade(args: argparse.Namespace) -> int:
    from engine.store.db import create_db_engine, current_revision, display_url, upgrade  # noqa: PLC0415

    url = resolve_url(args)
    engine = create_db_engine(url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"{display_url(url)}: at revision {after}, up to date")
    else:
        print(f"{display_url(url)}: upgraded from {before or 'an empty database'} to revision {after}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    from engine.store.db import create_db_engine, current_revision, head_revision  # noqa: PLC0415

    url = resolve_url(args)
    missing = missing_sqlite_file(url)
    if missing is not None:
        print("none")
        print(f"no database at {missing} yet: `flowdesk db upgrade` creates it", file=sys.stderr)
        return 0
    engine = create_db_engine(url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    print(revision or "none")
    if revision != head:
        print(f"the newest revision is {head}: run `flowdesk db upgrade`", file=sys.stderr)
    return 0


def _help(parser: argparse.ArgumentParser) -> Command:
    def run(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run
