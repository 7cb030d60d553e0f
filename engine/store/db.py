"""Database engines and schema migrations.

One URL names the database: ``sqlite:///path/flowdesk.db`` (the default, under
``data_dir``) or ``postgresql+psycopg://user@host/db``. The engine is synchronous
and pooled; callers on an event loop use ``asyncio.to_thread``.

SQLite needs care to be a good multi-threaded citizen:

- every connection gets WAL (readers never block the writer), ``synchronous=NORMAL``
  (durable at checkpoints, fast commits), foreign keys (off by default in SQLite)
  and a busy timeout (wait for the write lock instead of failing at once);
- the driver's own transaction handling is switched off and the engine issues
  ``BEGIN`` itself, so that a write session can say ``BEGIN IMMEDIATE``: it takes
  the write lock up front, where the busy timeout applies. A deferred transaction
  that reads and then writes can fail with "database is locked" at once when
  another connection wrote in between, which no timeout cures.

PostgreSQL's text types cannot hold a NUL character, which SQLite stores and a
web-chat frame or a channel's payload can carry; on PostgreSQL every text value
sent to the database has its NULs replaced (``NUL_REPLACEMENT``), so such a
message is logged instead of failing the write.

Migrations are Alembic scripts in ``migrations/`` (inside the package, so they ship
in the wheel), run from code: nobody needs an ``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from engine.errors import ConfigError, FlowdeskError
from engine.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (see the module docstring).
WRITE_OPTION = "flowdesk_write"

#: Drivers people write in URLs that this synchronous engine cannot use, and what it uses instead.
_DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
}

_URL_EXAMPLES = "sqlite:///.flowdesk/flowdesk.db or postgresql+psycopg://user@host/flowdesk"

#: What a NUL character in a text value becomes on PostgreSQL ("PostgreSQL text fields cannot contain NUL").
NUL_REPLACEMENT = "\ufffd"

_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",  # first: switching to WAL may itself have to wait for a lock
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


class DatabaseError(FlowdeskError):
    """The database cannot be reached or refused an operation; the message is one line for people."""


def database_url(settings: Settings, *, data_dir: Path | None = None) -> str:
    """``database.url`` from the settings (``${env:NAME}`` resolved), else SQLite under the data directory.

    ``data_dir`` (a command-line option) wins over the ``data_dir`` setting.
    """
    configured = settings.store.database_url
    if configured:
        return configured
    # Absolute: the same file whatever directory a later command runs in (and what `serve` prints).
    directory = data_dir or settings.store.data_dir
    return f"sqlite:///{(directory / 'flowdesk.db').absolute()}"


def parse_url(url: str) -> URL:
    """The URL this engine connects with; a :class:`ConfigError` that never repeats a password."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"the database URL is not valid; expected something like {_URL_EXAMPLES}") from None
    parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} in the database URL: Flowdesk runs on "
            f"SQLite or PostgreSQL ({_URL_EXAMPLES})"
        )
    return parsed


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid database URL>"


def create_db_engine(url: str) -> Engine:
    """A pooled, thread-safe engine for ``url``; SQLite gets its pragmas and parent directory."""
    parsed = parse_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        options["connect_args"] = {"check_same_thread": False}
        if database in ("", ":memory:"):
            # One shared connection: every new connection to ":memory:" would be another, empty database.
            options["poolclass"] = StaticPool
        elif not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the database directory {folder}: {exc.strerror or exc}") from None
    else:
        options["pool_pre_ping"] = True  # a server restart leaves dead connections in the pool
    try:
        engine = create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as exc:
        if parsed.get_backend_name() == "postgresql":
            raise ConfigError(
                "the PostgreSQL driver is not installed: pip install 'flowdesk[postgres]' (psycopg 3)"
            ) from None
        raise ConfigError(f"cannot load the database driver for {parsed.drivername!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine)
    else:
        _tune_postgresql(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _tune_postgresql(engine: Engine) -> None:
    # Every statement, keys included: a lookup by a text with a NUL must find the row written with it.
    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _on_execute(
        _connection: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        return statement, _without_nul(parameters)


def _without_nul(value: Any) -> Any:
    """Parameters with NUL characters in their texts replaced (dicts, lists and tuples of them too)."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_without_nul(item) for item in value)
    return value  # JSON goes as the driver's Json object: json.dumps writes a NUL as \u0000


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take SQLite's write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code: the packaged scripts, and ``url`` if given.

    For developers adding a migration::

        from alembic import command
        command.revision(alembic_config("sqlite:///scratch.db"), "add x", rev_id="0002")
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError("no migrations found in the package")
    return head


def upgrade(url_or_engine: str | Engine) -> None:
    """Bring the schema to the newest revision. A no-op when it is there; never drops data.

    All migrations run in one transaction (on SQLite too: the engine issues BEGIN
    itself), so a failure leaves the database as it was.
    """
    engine = create_db_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        config = alembic_config()
        with writer(engine).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as exc:
        raise DatabaseError(f"cannot upgrade the database at {display_url(engine.url)}: {describe(exc)}") from exc
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; ``None`` for a database never upgraded."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the database at {display_url(engine.url)}: {describe(exc)}") from exc


def describe(exc: SQLAlchemyError) -> str:
    """The driver's own message, on one line, without SQLAlchemy's SQL and background link."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc).split("\n(Background", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
