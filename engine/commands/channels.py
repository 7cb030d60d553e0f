"""``flowdesk channels list|setup``: which channels the settings configure, and registering webhooks.

``list`` shows each channel account, the URL its vendor must call and what is
missing before ``flowdesk serve`` can serve it (a setting, an environment
variable); it reads the settings and the environment exactly as serve does.
``setup KIND`` points the vendor at this installation (Telegram's setWebhook with
the secret token) for channels that can do that from here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.channels.registry import AccountStatus
    from engine.settings import Settings


_PUBLIC_URL_HELP = "the https URL vendors reach this server at (default: server.public_url)"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "channels",
        help="list configured channels and their webhook URLs; register a webhook with its vendor",
        description="Channels configured under `channels:` in flowdesk.yaml (see docs/channels.md).",
    )
    actions = parser.add_subparsers(dest="channels_action", metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="each channel account, its webhook URL and what is missing",
        description="List channel accounts. Exit status 1 if any configured account cannot be served.",
    )
    _settings_option(listing)
    listing.add_argument("--public-url", metavar="URL", help=_PUBLIC_URL_HELP)
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    listing.set_defaults(func=run_list)
    setup = actions.add_parser(
        "setup",
        help="register this server's webhook with the vendor (telegram)",
        description="Tell the vendor where to send this account's events, with its secret.",
    )
    setup.add_argument("kind", metavar="KIND", help="the channel kind, e.g. telegram")
    setup.add_argument("--account", default="default", help="an account of channels.KIND.accounts (default: default)")
    setup.add_argument("--public-url", metavar="URL", help=_PUBLIC_URL_HELP)
    _settings_option(setup)
    setup.set_defaults(func=run_setup)

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)


def _settings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="FILE", default=None, help="the settings file (default: ./flowdesk.yaml)")


def _load(args: argparse.Namespace) -> Settings | None:
    """The settings, or None when they cannot be read (the error is printed)."""
    from engine.settings import DEFAULT_FILE, Settings  # noqa: PLC0415 - `flowdesk --help` loads every command

    try:
        return Settings.load(args.settings or DEFAULT_FILE)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _base_url(args: argparse.Namespace, settings: Settings) -> str:
    given = args.public_url or settings.server.public_url
    if given:
        return str(given).rstrip("/")
    return f"http://{settings.server.host}:{settings.server.port}"


def run_list(args: argparse.Namespace) -> int:
    from engine.channels.registry import describe_accounts  # noqa: PLC0415
    from engine.channels.types import webhook_path  # noqa: PLC0415

    settings = _load(args)
    if settings is None:
        return 2
    base = _base_url(args, settings)
    statuses = describe_accounts(settings.channels.kinds)
    if not any(s.kind == "webchat" for s in statuses):
        from engine.channels.registry import AccountStatus  # noqa: PLC0415

        statuses.insert(0, AccountStatus("webchat", "default", "ready", webhook=False))
    rows = [_row(s, base, webhook_path(s.kind, s.account)) for s in statuses]
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _print_table(rows, local=not (args.public_url or settings.server.public_url))
    return 1 if any(s.state in ("incomplete", "broken") for s in statuses) else 0


def _row(status: AccountStatus, base: str, path: str) -> dict[str, Any]:
    url = base + path if status.webhook else (base + "/ws/chat" if status.kind == "webchat" else "")
    return {
        "channel": status.address,
        "state": status.state,
        "url": url,
        "problems": list(status.problems),
    }


def _print_table(rows: list[dict[str, Any]], *, local: bool) -> None:
    width = max(len(r["channel"]) for r in rows)
    for row in rows:
        print(f"{row['channel']:<{width}}  {row['state']:<10}  {row['url']}")
        for problem in row["problems"]:
            print(f"{'':<{width}}    - {problem}")
    if local:
        print(
            "\nnote: these URLs are this server's own address; vendors need a public https URL"
            " (set server.public_url, or pass --public-url)",
            file=sys.stderr,
        )


def run_setup(args: argparse.Namespace) -> int:
    from engine.channels.errors import ChannelError  # noqa: PLC0415
    from engine.channels.http import aclose_clients  # noqa: PLC0415
    from engine.channels.registry import build_channels, describe_accounts  # noqa: PLC0415
    from engine.channels.types import SetupChannel, channel_address, webhook_path  # noqa: PLC0415

    settings = _load(args)
    if settings is None:
        return 2
    address = channel_address(args.kind, args.account)
    if args.kind not in settings.channels.kinds:
        print(f"error: no channels.{args.kind} in the settings; docs/channels.md says what to add", file=sys.stderr)
        return 2
    status = next((s for s in describe_accounts(settings.channels.kinds) if s.address == address), None)
    if status is None:
        print(f"error: channels.{args.kind} has no account {args.account!r}", file=sys.stderr)
        return 2
    if status.state != "ready":
        print(f"error: {address} cannot be set up yet:", file=sys.stderr)
        for problem in status.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    base = _base_url(args, settings)
    if not base.startswith("https://"):
        print(f"error: vendors call webhooks over https; {base} is not (pass --public-url https://…)", file=sys.stderr)
        return 2
    url = base + webhook_path(args.kind, args.account)
    channel = build_channels({args.kind: settings.channels.kinds[args.kind]}).get(address)
    if not isinstance(channel, SetupChannel):
        where = "docs/channels.md says where to enter it"
        print(f"error: {args.kind} is set up in the vendor's console: enter {url} there ({where})", file=sys.stderr)
        return 2

    async def register() -> str:
        try:
            return await channel.setup(url)
        finally:
            await aclose_clients()

    try:
        said = asyncio.run(register())
    except ChannelError as exc:
        print(f"error: {args.kind} refused: {exc}", file=sys.stderr)
        return 1
    print(said)
    return 0
