"""The ``flowdesk`` command: one parser, one sub-module per sub-command.

Every sub-command module in :mod:`engine.commands` exposes ``register(subparsers)``
and sets ``func`` on its parser; ``func(args) -> int`` is the exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine.commands import chat, flowtest, validate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowdesk",
        description="Flowdesk: a customer-service engine whose behaviour is YAML flows.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (validate, chat, flowtest):
        module.register(sub)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns its exit status."""
    parser = build_parser()
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
