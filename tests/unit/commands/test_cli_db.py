"""``flowdesk db`` and ``flowdesk token`` as an operator runs them: real subprocesses on a SQLite file.

Each run costs an interpreter start, so each test tells a whole story.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from engine.store.db import head_revision

Flowdesk = Callable[..., subprocess.CompletedProcess[str]]


def test_db_upgrade_and_current_on_the_default_database(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    before = fx_flowdesk("db", "current")
    assert (before.returncode, before.stdout.strip()) == (0, "none"), before.stderr
    assert not (tmp_path / ".flowdesk").exists()  # looking does not create the database

    first = fx_flowdesk("db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert f"revision {head_revision()}" in first.stdout and "upgraded" in first.stdout
    assert (tmp_path / ".flowdesk" / "flowdesk.db").is_file()  # sqlite:///<data_dir>/flowdesk.db

    again = fx_flowdesk("db", "upgrade")
    assert again.returncode == 0 and "up to date" in again.stdout

    current = fx_flowdesk("db", "current")
    assert (current.returncode, current.stdout.strip(), current.stderr) == (0, head_revision(), "")


def test_tokens_from_create_to_revoke(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    (tmp_path / "flowdesk.yaml").write_text("data_dir: state\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'tokens.db'}"

    created = fx_flowdesk("token", "create", "ci", "--database-url", url)  # upgrades the new database first
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.strip()
    assert plaintext.startswith("fd_") and "not shown again" in created.stderr

    duplicate = fx_flowdesk("token", "create", "ci", "--database-url", url)
    assert duplicate.returncode == 1 and duplicate.stdout == ""
    assert "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr

    # Settings choose the database when no URL is given: data_dir from flowdesk.yaml.
    other = fx_flowdesk("token", "create", "crm", "--config", "flowdesk.yaml")
    assert other.returncode == 0 and (tmp_path / "state" / "flowdesk.db").is_file()

    assert fx_flowdesk("token", "revoke", "ci", "--database-url", url).returncode == 0
    listed = fx_flowdesk("token", "list", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    [header, row] = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ROLE", "CREATED"] and row.startswith("ci ") and "revoked" in row
    assert row.split()[1] == "admin"  # the default role
    assert plaintext not in listed.stdout

    again = fx_flowdesk("token", "revoke", "ci", "--database-url", url)
    assert again.returncode == 1 and "no active token named 'ci'" in again.stderr

    with sqlite3.connect(tmp_path / "tokens.db") as db:
        [(stored,)] = db.execute("SELECT token_hash FROM api_token").fetchall()
    assert stored != plaintext and len(stored) == 64


def test_bad_databases_are_one_line_errors(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    (tmp_path / "garbage.db").write_text("not a database at all, " * 100, encoding="utf-8")
    cases = {
        "not a url": "the database URL is not valid",
        "mysql://user:secret@localhost/db": "unsupported database 'mysql'",
        f"sqlite:///{tmp_path / 'garbage.db'}": "file is not a database",
    }
    for url, expected in cases.items():
        result = fx_flowdesk("db", "upgrade", "--database-url", url)
        assert result.returncode == 1, (url, result.stdout)
        assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "secret" not in result.stderr

    missing = fx_flowdesk("token", "list", "--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
