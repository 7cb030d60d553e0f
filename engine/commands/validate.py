"""``flowdesk validate PATH...``: check flow files, compiler style."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.commands.settings_lookup import SKIPPED_NOTE, find_settings
from engine.errors import ConfigError
from engine.flow.installation import Installation
from engine.flow.validate import compile_paths
from engine.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate",
        help="check flow files and report problems as file:line:col",
        description="Validate flow files (and *.test.yaml files). Exit status 1 if any has an error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="flow files or directories of flows")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--no-hints", action="store_true", help="leave out the fix hint under each problem")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="settings to check calendars, settings.* and AI profiles against"
        " (default: flowdesk.yaml beside the flows, else ./flowdesk.yaml)",
    )
    parser.set_defaults(func=run)


def load_installation(explicit: str | None, paths: list[str]) -> Installation | None:
    """The installation the flows are checked against; None when no settings file was found.

    Raises :class:`ConfigError` for a settings file that is missing (named explicitly) or invalid.
    """
    file = find_settings(explicit, paths)
    return Settings.load(file).installation() if file is not None else None


def run(args: argparse.Namespace) -> int:
    try:
        installation = load_installation(args.settings, args.paths)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = compile_paths(args.paths, installation=installation)
    diagnostics = result.diagnostics
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.format == "json":
        report = {
            "ok": not failed,
            "files": [
                {
                    "file": r.file,
                    "flow": r.flow.name if r.flow else None,
                    "revision": r.flow.revision if r.flow else None,
                }
                for r in result.flows
            ]
            + [{"file": t.file, "tests_for": t.flow_id} for t in result.test_files],
            "errors": errors,
            "warnings": warnings,
            # Whether calendars, settings.* and AI profiles were checked, and against which file.
            "installation": {
                "checked": installation is not None,
                "settings": installation.source if installation is not None else None,
            },
            "diagnostics": [d.to_dict() for d in diagnostics],
        }
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 1 if failed else 0
    for diagnostic in diagnostics:
        print(diagnostic.format(with_hint=not args.no_hints))
    files = len(result.flows) + len(result.test_files)
    if not files:
        print("no flow files found", file=sys.stderr)
        return 1
    summary = f"{files} file{'s' if files != 1 else ''} checked: {errors} error{'s' if errors != 1 else ''}, "
    summary += f"{warnings} warning{'s' if warnings != 1 else ''}"
    if installation is not None:
        summary += f" (settings: {installation.source})"
    else:
        print(SKIPPED_NOTE, file=sys.stderr)
    print(summary, file=sys.stderr)
    return 1 if failed else 0
