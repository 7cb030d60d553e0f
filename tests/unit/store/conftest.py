"""The store's databases: ``fx_db_url`` runs a test on a SQLite file and on PostgreSQL.

``fx_store`` is a migrated :class:`Store` on it, closed after the test (a module
may define its own, as test_fastlog.py does for its write paths).

A test that takes it runs once on a fresh SQLite file and once on a fresh
PostgreSQL database (ids ``sqlite`` and ``postgresql``; ``-k postgresql`` picks the
PostgreSQL runs). The PostgreSQL server is ``tests/postgres_support.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Store


@pytest.fixture(name="fx_db_url", params=["sqlite", "postgresql"])
def fixture_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of its own for the test: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'flowdesk.db'}"
    url: str = request.getfixturevalue("fx_postgres_url")
    return url


@pytest.fixture(name="fx_store")
def fixture_store(fx_db_url: str) -> Iterator[Store]:
    store = Store(fx_db_url)
    store.upgrade()
    yield store
    store.close()
