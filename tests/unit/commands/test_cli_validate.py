"""``flowdesk validate`` as a person and a CI job run it: a real subprocess.

Compiler-style text (``file:line:col: CODE severity: message`` plus an indented
``hint:``), exit status 1 on errors (or on warnings with ``--strict``), JSON for
tools, directories searched recursively with non-flow YAML left alone, and a clear
message (never a traceback) for a path that does not exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


def _command() -> list[str]:
    if (REPO / "engine" / "__main__.py").is_file():
        return [sys.executable, "-m", "engine"]
    return [sys.executable, "-c", "import engine.cli as c; c.main()"]


def flowdesk(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("FLOWDESK_CONFIG", None)
    return subprocess.run(
        [*_command(), "validate", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


GOOD = """
    flow: greeting
    steps:
      greet:
        say: "Hi {{ contact.name or 'there' }}!"
      done:
        end: resolved
"""

# one error: a misspelt key on line 5, column 5
BROKEN = """
    flow: refunds
    steps:
      greet:
        say: hi
        nxet: done
      done:
        end: resolved
"""

# warnings only: FD301 (line 6) and FD304 (line 5)
WARNS = """
    flow: returns
    steps:
      done:
        end: resolved
        next: done
      orphan:
        say: nobody gets here
"""

# a knowledge file of the `faq` provider: YAML, but not a flow
KNOWLEDGE = """
    threshold: 0.35
    entries:
      - question: How long does shipping take?
        answer: 1-3 working days.
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A flows directory as a team has it: flows, sub-folders, data files, a test file."""
    write(tmp_path, "flows/greeting.yaml", GOOD)
    write(tmp_path, "flows/billing/refunds.yml", BROKEN)
    write(tmp_path, "flows/billing/deep/er/returns.yaml", WARNS)
    write(tmp_path, "flows/kb/faq.yaml", KNOWLEDGE)
    write(tmp_path, "flows/kb/words.yaml", "- refund\n- 退款\n")
    write(tmp_path, "flows/README.md", "# flows\nnot: yaml: at all\n")
    write(
        tmp_path,
        "flows/greeting.test.yaml",
        """
        flow: greeting
        tests:
          - name: says hi
            turns:
              - user: hello
              - bot: /Hi/
    """,
    )
    return tmp_path


# -- text output --------------------------------------------------------------------------------


def test_error_is_printed_compiler_style_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path, "flows/refunds.yaml", BROKEN)
    proc = flowdesk("flows/refunds.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "flows/refunds.yaml:5:5: FD111 error: unknown key 'nxet' in step 'greet'",
        "    hint: did you mean 'next'?",
    ]
    assert "1 file checked: 1 error, 0 warnings" in proc.stderr


def test_every_diagnostic_line_has_the_compiler_shape(project: Path) -> None:
    proc = flowdesk("flows", cwd=project)
    lines = proc.stdout.splitlines()
    assert lines
    shape = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): FD\d{3} (error|warning): \S.*$")
    for i, line in enumerate(lines):
        if line.startswith("    hint: "):
            assert i > 0 and shape.match(lines[i - 1]), f"hint without a diagnostic above it: {line!r}"
            continue
        match = shape.match(line)
        assert match, f"not file:line:col: CODE severity: message -> {line!r}"
        assert (project / match["file"]).is_file()


def test_no_hints_leaves_the_hint_lines_out(tmp_path: Path) -> None:
    write(tmp_path, "refunds.yaml", BROKEN)
    proc = flowdesk("--no-hints", "refunds.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["refunds.yaml:5:5: FD111 error: unknown key 'nxet' in step 'greet'"]


def test_clean_flow_exits_0_and_prints_only_the_summary(tmp_path: Path) -> None:
    write(tmp_path, "greeting.yaml", GOOD)
    proc = flowdesk("greeting.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "1 file checked: 0 errors, 0 warnings" in proc.stderr


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    write(tmp_path, "returns.yaml", WARNS)
    proc = flowdesk("returns.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[::2] == [
        "returns.yaml:5:5: FD304 warning: step 'done' leaves the flow (end), so its `next` is never taken",
        "returns.yaml:6:3: FD301 warning: step 'orphan' can never run: no step leads to it",
    ]
    assert "0 errors, 2 warnings" in proc.stderr


def test_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    write(tmp_path, "returns.yaml", WARNS)
    proc = flowdesk("--strict", "returns.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "FD301 warning" in proc.stdout


def test_strict_with_a_clean_flow_still_exits_0(tmp_path: Path) -> None:
    write(tmp_path, "greeting.yaml", GOOD)
    assert flowdesk("--strict", "greeting.yaml", cwd=tmp_path).returncode == 0


def test_errors_and_warnings_together_exit_1(tmp_path: Path) -> None:
    write(tmp_path, "refunds.yaml", BROKEN)
    write(tmp_path, "returns.yaml", WARNS)
    proc = flowdesk("refunds.yaml", "returns.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "2 files checked: 1 error, 2 warnings" in proc.stderr


def test_yaml_syntax_error_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "flow: refunds\nsteps:\n  greet:\n\tsay: hi\n")
    proc = flowdesk("bad.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("bad.yaml:4:1: FD101 error: ")
    assert proc.stdout.splitlines()[1] == "    hint: YAML indents with spaces, not tabs"


def test_binary_file_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "logo.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    proc = flowdesk("logo.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.startswith("logo.yaml:1:1: FD100 error: the file is binary")


# -- JSON output --------------------------------------------------------------------------------


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    no_traceback(proc)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_json_lists_diagnostics_with_every_field(tmp_path: Path) -> None:
    write(tmp_path, "refunds.yaml", BROKEN)
    proc = flowdesk("--format", "json", "refunds.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    report = _json(proc)
    assert report["ok"] is False
    assert (report["errors"], report["warnings"]) == (1, 0)
    assert report["diagnostics"] == [
        {
            "file": "refunds.yaml",
            "line": 5,
            "column": 5,
            "code": "FD111",
            "severity": "error",
            "message": "unknown key 'nxet' in step 'greet'",
            "path": "$.steps.greet.nxet",
            "hint": "did you mean 'next'?",
        }
    ]
    assert report["files"] == [{"file": "refunds.yaml", "flow": None, "revision": None}]


def test_json_for_warnings_only_is_ok_and_exits_0(tmp_path: Path) -> None:
    write(tmp_path, "returns.yaml", WARNS)
    proc = flowdesk("--format", "json", "returns.yaml", cwd=tmp_path)
    assert proc.returncode == 0
    report = _json(proc)
    assert report["ok"] is True
    assert (report["errors"], report["warnings"]) == (0, 2)
    assert sorted((d["code"], d["severity"], d["line"], d["column"]) for d in report["diagnostics"]) == [
        ("FD301", "warning", 6, 3),
        ("FD304", "warning", 5, 5),
    ]
    [entry] = report["files"]
    assert entry["flow"] == "returns"
    assert re.fullmatch(r"[0-9a-f]{16,}", entry["revision"])


def test_json_with_strict_and_warnings_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, "returns.yaml", WARNS)
    proc = flowdesk("--format", "json", "--strict", "returns.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert _json(proc)["ok"] is False


def test_json_for_a_project(project: Path) -> None:
    proc = flowdesk("--format", "json", "flows", cwd=project)
    assert proc.returncode == 1
    report = _json(proc)
    for d in report["diagnostics"]:
        assert set(d) >= {"file", "line", "column", "code", "severity", "message", "path", "hint"}
        assert d["severity"] in ("error", "warning")
        assert isinstance(d["line"], int) and d["line"] >= 1
        assert isinstance(d["column"], int) and d["column"] >= 1
        assert d["path"].startswith("$")
    files = {Path(f["file"]).as_posix(): f for f in report["files"]}
    assert files["flows/greeting.test.yaml"]["tests_for"] == "greeting"
    assert files["flows/greeting.yaml"]["flow"] == "greeting"
    assert files["flows/billing/refunds.yml"]["flow"] is None


# -- directories --------------------------------------------------------------------------------


def test_directory_is_searched_recursively_and_data_files_are_skipped(project: Path) -> None:
    proc = flowdesk("flows", cwd=project)
    no_traceback(proc)
    assert proc.returncode == 1
    reported = {line.split(":", 1)[0] for line in proc.stdout.splitlines() if not line.startswith(" ")}
    assert reported == {"flows/billing/refunds.yml", "flows/billing/deep/er/returns.yaml"}
    # greeting.yaml, refunds.yml, returns.yaml and greeting.test.yaml; not the two kb files or README.md.
    # The third warning is FD306: greeting and returns both take every channel at priority 0.
    assert "4 files checked: 1 error, 3 warnings" in proc.stderr
    assert "FD306 warning: flows 'greeting' (flows/greeting.yaml) and 'returns'" in proc.stdout
    # No flowdesk.yaml anywhere: the installation checks are said to be skipped.
    assert "were not checked (pass --settings FILE" in proc.stderr


def test_json_file_list_leaves_data_files_out(project: Path) -> None:
    report = _json(flowdesk("--format", "json", "flows", cwd=project))
    names = sorted(Path(f["file"]).as_posix() for f in report["files"])
    assert names == [
        "flows/billing/deep/er/returns.yaml",
        "flows/billing/refunds.yml",
        "flows/greeting.test.yaml",
        "flows/greeting.yaml",
    ]


def test_broken_yaml_in_a_directory_is_reported_not_skipped(tmp_path: Path) -> None:
    # It cannot be read, so nobody can tell it is a data file: better to say so.
    write(tmp_path, "flows/greeting.yaml", GOOD)
    write(tmp_path, "flows/half-written.yaml", 'flow: refunds\nsteps:\n  greet:\n    say: "Hi\n')
    proc = flowdesk("flows", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.startswith("flows/half-written.yaml:")
    assert " FD101 error: " in proc.stdout


def test_data_file_named_explicitly_is_validated(tmp_path: Path) -> None:
    write(tmp_path, "kb/faq.yaml", KNOWLEDGE)
    proc = flowdesk("kb/faq.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert "FD112 error" in proc.stdout


def test_the_shipped_flows_directory_validates(tmp_path: Path) -> None:
    proc = flowdesk(REPO / "flows", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_directory_without_flows(tmp_path: Path) -> None:
    write(tmp_path, "kb/faq.yaml", KNOWLEDGE)
    proc = flowdesk("kb", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert "no flow files found" in proc.stderr


# -- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["flows/nope.yaml", "nope-dir"])
def test_nonexistent_path_is_a_clear_message(tmp_path: Path, name: str) -> None:
    proc = flowdesk(name, cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    first, *rest = proc.stdout.splitlines()
    assert first == f"{name}:1:1: FD100 error: cannot read the file: No such file or directory"
    # The FD100 catalogue hint is about encodings ("save the file as UTF-8 text"),
    # which sends someone with a typo in a path the wrong way.
    assert rest, "no hint"
    assert "UTF-8" not in rest[0], rest[0]


def test_nonexistent_path_next_to_a_good_one_still_fails(tmp_path: Path) -> None:
    write(tmp_path, "greeting.yaml", GOOD)
    proc = flowdesk("greeting.yaml", "greting.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.startswith("greting.yaml:1:1: FD100 error: ")


def test_no_path_is_a_usage_error(tmp_path: Path) -> None:
    proc = flowdesk(cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


FAQ_BOT = """
    flow: faq-bot
    ai:
      helpdesk:
        providers:
          - { use: faq, knowledge: kb/faq.yaml }
    steps:
      listen: { wait: message }
      answer: { ai: helpdesk, on_error: listen, next: listen }
"""


def test_knowledge_paths_are_checked_from_the_directory_given(tmp_path: Path) -> None:
    """A flow in a sub-folder names its knowledge relative to the flows directory, as the server reads it."""
    write(tmp_path, "flows/support/faq-bot.yaml", FAQ_BOT)
    write(tmp_path, "flows/kb/faq.yaml", KNOWLEDGE)
    assert flowdesk("flows", cwd=tmp_path).returncode == 0

    (tmp_path / "flows/kb/faq.yaml").unlink()
    proc = flowdesk("flows", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith(
        "flows/support/faq-bot.yaml:5:32: FD212 error: knowledge file 'kb/faq.yaml' not found"
    )
