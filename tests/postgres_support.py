"""A throwaway PostgreSQL server for tests: ``fx_postgres`` and ``fx_postgres_url``.

Registered for every test by ``tests/conftest.py``. The server is started once
per session, only when a test needs it: its own cluster (``initdb``) in a
temporary directory, on a free loopback port, with a non-UTC time zone so that
time conversions are exercised, and removed at the end. It never uses a system
cluster. Each test gets a database of its own.

Without PostgreSQL's binaries or the psycopg driver the PostgreSQL tests are
skipped, saying what to install; in CI (``CI=true``) they fail instead, so that a
green CI run means Flowdesk was tested on PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.net_support import free_port

#: What to install for each missing piece, said by the skip or the failure.
INSTALL_SERVER = "install PostgreSQL's server binaries (Debian: apt-get install -y postgresql)"
INSTALL_DRIVER = "install the driver: pip install -e '.[test]' (it brings psycopg[binary])"
#: The server's own time zone: not UTC, so a time read back unconverted shows.
SERVER_TIMEZONE = "Asia/Shanghai"
_BINARIES = ("initdb", "pg_ctl", "postgres")


def unavailable(reason: str, fix: str = INSTALL_SERVER) -> NoReturn:
    """Skip the PostgreSQL runs here; fail them in CI, where they must run."""
    message = f"PostgreSQL tests cannot run: {reason}; {fix}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: these tests must run in CI)", pytrace=False)
    pytest.skip(message)


def find_binaries() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: from PATH, else Debian's newest version."""
    found = [shutil.which(name) for name in _BINARIES]
    if all(found):
        # PATH may hold symlinks into one version's directory: use that directory's set.
        folders = {Path(path).resolve().parent for path in found if path}
        if len(folders) == 1:
            return folders.pop()
    debian = [folder / "bin" for folder in Path("/usr/lib/postgresql").glob("*")]

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))

    for folder in sorted(debian, key=version, reverse=True):
        if all((folder / name).is_file() for name in _BINARIES):
            return folder
    return None


@dataclass
class PostgresServer:
    """A running throwaway cluster: create databases on it, get their URLs."""

    port: int
    user: str
    _counter: Iterator[int]

    def admin(self) -> Any:
        """An autocommit connection to the maintenance database (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"flowdesk_test_{next(self._counter)}"
        with self.admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin() as connection:
            # FORCE: a test that failed half-way may leave a connection open.
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"


class Cluster:
    """initdb, pg_ctl start and stop, as the ``postgres`` user when running as root (initdb refuses root)."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="flowdesk-pg-"))  # not under pytest's 0700 tmp dirs
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        if self.as_root:
            if shutil.which("runuser") is None:
                unavailable("running as root needs runuser to start PostgreSQL as the 'postgres' user")
            try:
                shutil.chown(self.directory, "postgres", "postgres")
            except (LookupError, OSError) as exc:
                unavailable(f"running as root needs a 'postgres' system user to own the cluster ({exc})")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.binaries / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        # The server must not pick up the caller's libpq settings (PGHOST, PGPORT, ...).
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            command, cwd=self.directory, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def init(self) -> str:
        user = "flowdesk"
        done = self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        return user

    def start(self, port: int) -> bool:
        """Start on ``port``; False if the port was taken meanwhile (the caller picks another)."""
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={self.directory}",
                f"-c timezone={SERVER_TIMEZONE}",
                # A throwaway cluster: nothing needs to survive a crash.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self.log.unlink(missing_ok=True)  # a failed attempt's log must not explain this one
        done = self.run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)
        if done.returncode == 0:
            return True
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        if "could not bind" in log or "Address already in use" in log:
            return False
        raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{log[-3000:]}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data), timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session", name="fx_postgres")
def fixture_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, started on first use."""
    if importlib.util.find_spec("psycopg") is None:
        unavailable("the psycopg driver is not installed", INSTALL_DRIVER)
    binaries = find_binaries()
    if binaries is None:
        unavailable("initdb, pg_ctl and postgres were found neither on PATH nor under /usr/lib/postgresql/*/bin")
    cluster = Cluster(binaries)
    try:
        user = cluster.init()
        for _attempt in range(5):
            port = free_port()
            if cluster.start(port):
                break
        else:
            raise RuntimeError("no free port for PostgreSQL after 5 attempts")
        yield PostgresServer(port=port, user=user, _counter=itertools.count(1))
    finally:
        cluster.stop()


@pytest.fixture(name="fx_postgres_url")
def fixture_postgres_url(fx_postgres: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database for one test (dropped after it)."""
    url = fx_postgres.create_database()
    yield url
    fx_postgres.drop_database(url)
