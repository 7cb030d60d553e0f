"""``flowdesk validate PATH...``: check flow files, compiler style."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.flow.validate import compile_paths


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = compile_paths(args.paths)
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
    print(summary, file=sys.stderr)
    return 1 if failed else 0
