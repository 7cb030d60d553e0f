"""``flowdesk user`` and ``flowdesk token create --role`` as an operator runs them: real subprocesses, a SQLite file.

Passwords go in on standard input only; errors are one sentence and exit status 1
(2 for a usage error), never a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from engine.people.passwords import verify

Flowdesk = Callable[..., subprocess.CompletedProcess[str]]
SECRET = "Quokka-Lantern-4471"


def test_users_from_create_to_disable_and_a_new_password(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    db = tmp_path / "people.db"
    url = ["--database-url", f"sqlite:///{db}"]

    created = fx_flowdesk(
        "user", "create", "Ana@Example.com", "--role", "supervisor", "--name", "Ana Lima", "--language", "zh",
        "--password-stdin", *url, stdin=SECRET + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "ana@example.com (supervisor) created" in created.stdout
    assert SECRET not in created.stdout + created.stderr

    new_bo = ("user", "create", "bo@example.com", "--role", "agent", "--password-stdin", *url)
    short = fx_flowdesk(*new_bo, stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr and "Traceback" not in short.stderr
    empty = fx_flowdesk(*new_bo, stdin="")
    assert empty.returncode == 1 and "no password on standard input" in empty.stderr
    no_stdin_flag = fx_flowdesk("user", "create", "bo@example.com", "--role", "agent", *url, stdin=SECRET)
    assert no_stdin_flag.returncode == 1 and "--password-stdin" in no_stdin_flag.stderr
    dupe = fx_flowdesk("user", "create", "ANA@example.com", "--role", "agent", "--password-stdin", *url, stdin=SECRET)
    assert dupe.returncode == 1 and "already exists" in dupe.stderr and "Traceback" not in dupe.stderr
    bad_role = fx_flowdesk("user", "create", "bo@example.com", "--role", "boss", "--password-stdin", *url, stdin=SECRET)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr

    listed = fx_flowdesk("user", "list", "--format", "json", *url)
    assert listed.returncode == 0, listed.stderr
    [ana] = json.loads(listed.stdout)
    assert (ana["email"], ana["display_name"], ana["role"], ana["language"], ana["disabled"]) == (
        "ana@example.com",
        "Ana Lima",
        "supervisor",
        "zh",
        False,
    )
    assert "hash" not in listed.stdout
    text = fx_flowdesk("user", "list", *url)
    assert text.returncode == 0 and text.stdout.splitlines()[1].startswith("ana@example.com")

    assert fx_flowdesk("user", "disable", "ana@example.com", *url).returncode == 0
    assert "disabled" in fx_flowdesk("user", "list", *url).stdout.splitlines()[1]
    assert json.loads(fx_flowdesk("user", "list", "--format", "json", *url).stdout)[0]["disabled"] is True
    assert fx_flowdesk("user", "enable", "ana@example.com", *url).returncode == 0
    root = fx_flowdesk("user", "create", "root@example.com", "--role", "admin", "--password-stdin", *url, stdin=SECRET)
    assert root.returncode == 0, root.stderr
    last = fx_flowdesk("user", "disable", "root@example.com", *url)
    assert last.returncode == 1 and "last enabled admin" in last.stderr
    missing = fx_flowdesk("user", "disable", "nobody@example.com", *url)
    assert missing.returncode == 1 and "no user with the e-mail address nobody@example.com" in missing.stderr

    changed = fx_flowdesk(
        "user", "set-password", "ana@example.com", "--password-stdin", *url, stdin="another long one\n"
    )
    assert changed.returncode == 0, changed.stderr
    with sqlite3.connect(db) as connection:
        [(stored,)] = connection.execute(
            "SELECT password_hash FROM user_account WHERE email = ?", ("ana@example.com",)
        ).fetchall()
    assert verify(stored, "another long one") and not verify(stored, SECRET)
    assert SECRET.encode() not in db.read_bytes()


def test_tokens_carry_the_role_they_are_created_with(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path / 'tokens.db'}"]
    assert fx_flowdesk("token", "create", "robot", "--role", "agent", *url).returncode == 0
    assert fx_flowdesk("token", "create", "ops", *url).returncode == 0
    rows = fx_flowdesk("token", "list", *url).stdout.splitlines()[1:]
    assert {row.split()[0]: row.split()[1] for row in rows} == {"robot": "agent", "ops": "admin"}
    bad = fx_flowdesk("token", "create", "x", "--role", "root", *url)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_user_commands_on_a_database_that_does_not_exist_say_so(fx_flowdesk: Flowdesk, tmp_path: Path) -> None:
    missing = fx_flowdesk("user", "list", "--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "flowdesk db upgrade" in missing.stderr and "Traceback" not in missing.stderr
    bare = fx_flowdesk("user")
    assert bare.returncode == 2
