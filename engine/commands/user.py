"""``flowdesk user create|list|disable|enable|set-password``: the people who sign in to the console.

Passwords are read from standard input (``--password-stdin``: the first line), never
from the command line, where ``ps`` and the shell's history would show them; at a
terminal without the option, they are asked for without echo. Only an argon2 hash is
stored. Disabling a user or setting their password ends their sessions at once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from engine.commands.db import add_database_options, guarded
from engine.commands.token import _help, _when, opened
from engine.errors import FlowdeskError

ROLE_CHOICES = ["admin", "supervisor", "agent", "editor"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "user",
        help="create, list, disable and enable console users, set their passwords",
        description="Manage the people who sign in to the console (agents, supervisors, editors, admins).",
    )
    actions = parser.add_subparsers(dest="user_action", metavar="ACTION")
    create = actions.add_parser("create", help="create a user", description="Create a user with a role.")
    create.add_argument("email", metavar="EMAIL", help="the address they sign in with (unique)")
    create.add_argument("--role", required=True, choices=ROLE_CHOICES, help="what they may do")
    create.add_argument("--name", default="", help="display name (default: the part of the address before @)")
    create.add_argument("--language", default="en", choices=["en", "zh"], help="the console's language for them")
    create.add_argument("--capacity", type=int, default=None, help="most conversations held at once")
    _password_option(create)
    add_database_options(create)
    create.set_defaults(func=guarded(run_create))

    listing = actions.add_parser("list", help="list users", description="List users (never their passwords).")
    listing.add_argument("--format", choices=["text", "json"], default="text")
    add_database_options(listing)
    listing.set_defaults(func=guarded(run_list))

    for name, what in (("disable", "disable a user: their sessions end at once"), ("enable", "enable a user again")):
        action = actions.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".")
        action.add_argument("email", metavar="EMAIL")
        add_database_options(action)
        action.set_defaults(func=guarded(run_disable if name == "disable" else run_enable))

    password = actions.add_parser(
        "set-password", help="set a user's password (their sessions end)", description="Set a user's password."
    )
    password.add_argument("email", metavar="EMAIL")
    _password_option(password)
    add_database_options(password)
    password.set_defaults(func=guarded(run_set_password))
    parser.set_defaults(func=_help(parser))


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (its first line), e.g. from a secrets manager",
    )


def read_password(args: argparse.Namespace) -> str:
    """The password from stdin's first line, or asked twice at a terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise FlowdeskError("no password on standard input (--password-stdin reads its first line)")
        return password
    if not sys.stdin.isatty():
        raise FlowdeskError("give the password on standard input with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise FlowdeskError("the two passwords differ")
    return first


def run_create(args: argparse.Namespace) -> int:
    from engine.people.passwords import check_new_password  # noqa: PLC0415

    password = read_password(args)
    check_new_password(password)  # before opening (and maybe creating) the database
    with opened(args, upgrade=True) as store:
        user = store.create_user(
            args.email,
            password,
            role=args.role,
            display_name=args.name,
            language=args.language,
            capacity=args.capacity,
        )
    print(f"user {user.email} ({user.role}) created, id {user.id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with opened(args, upgrade=False) as store:
        users = store.list_users()
    if args.format == "json":
        rows = [
            {
                "id": u.id,
                "email": u.email,
                "display_name": u.display_name,
                "role": u.role,
                "language": u.language,
                "capacity": u.capacity,
                "disabled": u.disabled_at is not None,
                "created_at": u.created_at.isoformat(),
            }
            for u in users
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not users:
        print("no users yet: `flowdesk user create EMAIL --role admin --password-stdin` makes one", file=sys.stderr)
        return 0
    table = [("EMAIL", "NAME", "ROLE", "CREATED", "STATUS")]
    for u in users:
        status = f"disabled {_when(u.disabled_at)}" if u.disabled_at else "active"
        table.append((u.email, u.display_name, u.role, _when(u.created_at), status))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _find(store: Any, email: str) -> Any:
    user = store.get_user_by_email(email)
    if user is None:
        raise FlowdeskError(f"no user with the e-mail address {email.strip().lower()} (see `flowdesk user list`)")
    return user


def run_disable(args: argparse.Namespace) -> int:
    with opened(args, upgrade=False) as store:
        user = _find(store, args.email)
        admins = [u for u in store.list_users(include_disabled=False) if u.role == "admin"]
        if user.role == "admin" and user.disabled_at is None and len(admins) <= 1:
            raise FlowdeskError(f"{user.email} is the last enabled admin: make another admin first")
        store.disable_user(user.id)
    print(f"user {user.email} disabled; their sessions have ended")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    with opened(args, upgrade=False) as store:
        user = _find(store, args.email)
        store.enable_user(user.id)
    print(f"user {user.email} enabled")
    return 0


def run_set_password(args: argparse.Namespace) -> int:
    password = read_password(args)
    with opened(args, upgrade=False) as store:
        user = _find(store, args.email)
        store.set_password(user.id, password)
    print(f"password of {user.email} set; their sessions have ended")
    return 0
