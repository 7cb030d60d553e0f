"""The ``flowdesk`` command: one parser, one sub-module per sub-command.

Every sub-command module in :mod:`engine.commands` exposes ``register(subparsers)``
and sets ``func`` on its parser; ``func(args) -> int`` is the exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

#: sub-command -> module; a module is imported only when its command runs (or for --help),
#: so `flowdesk validate` does not pay for what `flowdesk try` needs.
COMMANDS = {
    "validate": "engine.commands.validate",
    "try": "engine.commands.chat",
    "test": "engine.commands.flowtest",
    "worker": "engine.commands.worker",
    "serve": "engine.commands.serve",
    "db": "engine.commands.db",
    "token": "engine.commands.token",
    "user": "engine.commands.user",
    "channels": "engine.commands.channels",
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowdesk",
        description="Flowdesk: a customer-service engine whose behaviour is YAML flows.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, module in COMMANDS.items():
        if chosen in COMMANDS and name != chosen:
            sub.add_parser(name)  # known, but not loaded: another command runs
        else:
            import_module(module).register(sub)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return status


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point.

    Exits through ``os._exit`` after flushing: the Temporal SDK's native threads can
    abort the interpreter during normal shutdown (temporalio/sdk-python#300), which
    would turn a clean run into a random crash.
    """
    status = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
