"""``flowdesk test PATH...``: validate flows, then run their tests with scripted AI and HTTP."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.commands.settings_lookup import SKIPPED_NOTE, find_settings
from engine.errors import ConfigError
from engine.flow.validate import ProjectResult, compile_paths
from engine.flowtest.report import TestResult
from engine.flowtest.runner import run_tests
from engine.pipeline.runner import Pipelines
from engine.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "test",
        help="run the tests of flows (`tests:` in flow files and *.test.yaml files)",
        description=(
            "Validate the flows under PATH, then run their tests offline: AI and HTTP steps answer from "
            "each test's `mock:`. Exit status 1 if a flow has errors, a test fails, or there are no tests."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="flow files, test files or directories")
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="settings file (default: flowdesk.yaml beside the flows, else ./flowdesk.yaml)",
    )
    parser.add_argument(
        "-k", dest="keyword", metavar="SUBSTRING", help="run only tests whose 'flow-id: name' contains SUBSTRING"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--live",
        action="store_true",
        help=(
            "run the tests through the real runtime: a time-skipping Temporal test server, a worker and the "
            "server's message path; AI and HTTP mocks answered at the activity boundary"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(find_settings(args.settings, args.paths))
        public = settings.public()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    project = compile_paths(args.paths, installation=settings.installation() if settings.file is not None else None)
    if project.installation is None:
        print(SKIPPED_NOTE, file=sys.stderr)
    errors = [d for d in project.diagnostics if d.is_error]
    if errors or not project.flows:
        return _not_runnable(args, project.diagnostics, bool(project.flows))
    if args.live:
        results = _run_live(project, settings, args.keyword)
    else:
        pipelines = Pipelines(word_lists=settings.word_lists())
        results = run_tests(project, settings=public, keyword=args.keyword, pipelines=pipelines)
    if args.format == "json":
        return _report_json(results)
    return _report_text(results, args.keyword)


def _run_live(project: ProjectResult, settings: Settings, keyword: str | None) -> list[TestResult]:
    from engine.livetest import LiveTests  # noqa: PLC0415 - the Temporal SDK only when running live

    # The context manager stops the worker and the test server before the report is
    # printed, so the process exits (through os._exit) with nothing left running.
    with LiveTests() as live:
        return live.run_tests(project, settings, keyword=keyword)


def _not_runnable(args: argparse.Namespace, diagnostics: list[Any], found: bool) -> int:
    errors = [d for d in diagnostics if d.is_error]
    problem = (
        "no flow files found in " + " ".join(args.paths)
        if not found
        else (f"{len(errors)} error{'s' if len(errors) != 1 else ''} in the flows; fix them before running tests")
    )
    if args.format == "json":
        report = {"ok": False, "error": problem, "diagnostics": [d.to_dict() for d in errors]}
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 1
    for diagnostic in errors:
        print(diagnostic.format())
    print(problem, file=sys.stderr)
    return 1


def _report_text(results: list[TestResult], keyword: str | None) -> int:
    if not results:
        where = f"matching -k {keyword!r}" if keyword else "(add `tests:` to a flow or write a *.test.yaml file)"
        print(f"no tests found {where}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.label}")
        if result.failure is not None:
            for line in result.failure.lines():
                print(f"    {line}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _report_json(results: list[TestResult]) -> int:
    failed = sum(not r.passed for r in results)
    report = {
        "ok": bool(results) and not failed,
        "passed": len(results) - failed,
        "failed": failed,
        "tests": [r.to_dict() for r in results],
    }
    if not results:
        report["error"] = "no tests found"
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0 if report["ok"] else 1
