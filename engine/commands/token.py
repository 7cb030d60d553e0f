"""``flowdesk token create|list|revoke``: API tokens for the admin and agent API, each with a role.

A token's plaintext is printed once, by ``create``; the database keeps only its
SHA-256, so a lost token is revoked and replaced, never recovered.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.commands.db import Command, add_database_options, guarded, missing_sqlite_file, resolve_url

if TYPE_CHECKING:
    from engine.store import Store


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description="Manage API tokens. A token is shown once, when it is created.",
    )
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print it (once)", description="Create a token.")
    create.add_argument("name", metavar="NAME", help="what the token is for, e.g. 'ci' or 'crm-sync' (unique)")
    create.add_argument(
        "--role",
        default="admin",
        choices=["admin", "supervisor", "agent", "editor"],
        help="what the token may do, as a user of that role (default: admin)",
    )
    add_database_options(create)
    create.set_defaults(func=guarded(run_create))
    listing = actions.add_parser("list", help="list tokens (never their values)", description="List tokens.")
    add_database_options(listing)
    listing.set_defaults(func=guarded(run_list))
    revoke = actions.add_parser("revoke", help="revoke a token: it stops working at once", description="Revoke.")
    revoke.add_argument("name", metavar="NAME", help="the token's name")
    add_database_options(revoke)
    revoke.set_defaults(func=guarded(run_revoke))
    parser.set_defaults(func=_help(parser))


@contextmanager
def opened(args: argparse.Namespace, *, upgrade: bool) -> Iterator[Store]:
    """The store, closed after use; upgraded first when creating, else required to be at the newest schema."""
    # Imported here, not at the top: `flowdesk --help` loads every command module.
    from engine.store import DatabaseError, Store, head_revision  # noqa: PLC0415

    url = resolve_url(args)
    if not upgrade and (missing := missing_sqlite_file(url)) is not None:
        raise DatabaseError(f"no database at {missing} yet: `flowdesk db upgrade` creates it")
    store = Store(url)
    try:
        if upgrade:
            store.upgrade()
        elif (revision := store.revision()) != head_revision():
            raise DatabaseError(
                f"the database schema is at revision {revision or 'none'}, this Flowdesk needs "
                f"{head_revision()}: run `flowdesk db upgrade`"
            )
        yield store
    finally:
        store.close()


def run_create(args: argparse.Namespace) -> int:
    with opened(args, upgrade=True) as store:
        plaintext = store.create_token(args.name, role=args.role)
    print(plaintext)
    print(f"token {args.name!r} ({args.role}) created; copy it now: it is not shown again", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with opened(args, upgrade=False) as store:
        tokens = store.list_tokens()
    if not tokens:
        print("no tokens yet: `flowdesk token create NAME` makes one", file=sys.stderr)
        return 0
    rows = [("NAME", "ROLE", "CREATED", "LAST USED", "STATUS")]
    for token in tokens:
        status = f"revoked {_when(token.revoked_at)}" if token.revoked_at else "active"
        rows.append((token.name, token.role, _when(token.created_at), _when(token.last_used_at), status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with opened(args, upgrade=False) as store:
        revoked = store.revoke_token(args.name)
    if not revoked:
        print(f"error: no active token named {args.name!r} (see `flowdesk token list`)", file=sys.stderr)
        return 1
    print(f"token {args.name!r} revoked")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%MZ") if moment is not None else "never"


def _help(parser: argparse.ArgumentParser) -> Command:
    def run(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run
