"""``flowdesk test``: what a person sees when their flow tests pass, fail, or cannot run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Flowdesk = Callable[..., subprocess.CompletedProcess[str]]

GREETER = """\
flow: greeter
steps:
  hello:
    say: "Welcome to {{ settings.brand }}!"
    next: listen
  listen:
    wait: message
    timeout: 30m
    on_timeout: bye
    next: echo
  echo:
    say: "You said: {{ message.text }}"
    next: listen
  bye:
    say: Bye for now.
    end: abandoned
tests:
  - name: welcome
    turns:
      - user: hi
      - bot: /Welcome to/
      - bot: "You said: hi"
  - name: goes quiet
    turns:
      - user: hi
      - bot: /Welcome/
      - bot: "You said: hi"
      - elapse: 30m
      - bot: Bye for now.
      - end: abandoned
"""

FAILING = """\
flow: greeter
tests:
  - name: wrong echo
    turns:
      - user: hi
      - bot: /Welcome/
      - bot: "You said: hello"
"""


def flows_dir(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text, encoding="utf-8")
    return folder


def test_passing_tests(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER)
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "PASS greeter: welcome",
        "PASS greeter: goes quiet",
        "2 passed, 0 failed",
    ]


def test_a_failure_shows_the_turn_and_a_diff(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER, greeter__test__yaml=FAILING)
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[2] == "FAIL greeter: wrong echo"
    assert lines[3] == '    turn 3: bot message "You said: hi" does not match "You said: hello"'
    assert "      - You said: hello" in lines
    assert "      + You said: hi" in lines
    assert "      → echo (say)" in lines
    assert lines[-1] == "2 passed, 1 failed"
    assert "Traceback" not in done.stdout + done.stderr


def test_k_selects_tests(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER, greeter__test__yaml=FAILING)
    done = fx_flowdesk("test", "flows", "-k", "QUIET")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["PASS greeter: goes quiet", "1 passed, 0 failed"]
    nothing = fx_flowdesk("test", "flows", "-k", "nope")
    assert nothing.returncode == 1
    assert "no tests found matching -k 'nope'" in nothing.stderr


def test_settings_reach_the_flow(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(
        tmp_path,
        greeter__yaml=GREETER,
        brand__test__yaml="flow: greeter\ntests:\n  - name: brand\n    turns: [{user: x}, {bot: Welcome to Acme!}, "
        "{bot: 'You said: x'}]\n",
    )
    (tmp_path / "acme.yaml").write_text("brand: Acme\n", encoding="utf-8")
    done = fx_flowdesk("test", "flows", "--settings", "acme.yaml")
    assert done.returncode == 0, done.stdout
    assert "PASS greeter: brand" in done.stdout.splitlines()
    # ./flowdesk.yaml is read when present
    (tmp_path / "flowdesk.yaml").write_text("brand: Acme\n", encoding="utf-8")
    assert fx_flowdesk("test", "flows", "-k", "brand").returncode == 0


def test_bad_settings_are_reported(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER)
    (tmp_path / "flowdesk.yaml").write_text("brand: [1, 2]\n", encoding="utf-8")
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid settings file flowdesk.yaml:")
    assert "flowdesk.yaml:1:8: FD110 error:" in done.stderr


def test_flow_errors_stop_before_testing(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER.replace("next: echo", "next: ecko"))
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 1
    assert done.stdout.startswith("flows/greeter.yaml:10:11: FD201 error: step 'ecko' is not defined")
    assert "hint: did you mean 'echo'?" in done.stdout
    assert "passed" not in done.stdout
    assert "1 error in the flows; fix them before running tests" in done.stderr


def test_no_tests_found(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER.split("tests:", maxsplit=1)[0])
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no tests found" in done.stderr
    (tmp_path / "empty").mkdir()
    empty = fx_flowdesk("test", "empty")
    assert empty.returncode == 1 and "no flow files found in empty" in empty.stderr
    missing = fx_flowdesk("test", "missing.yaml")
    assert missing.returncode == 1 and "missing.yaml:1:1: FD100 error: cannot read the file" in missing.stdout


def test_test_file_for_an_unknown_flow(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER, other__test__yaml=FAILING.replace("flow: greeter", "flow: other"))
    done = fx_flowdesk("test", "flows")
    assert done.returncode == 1
    assert "FAIL other: 1 test(s) in flows/other.test.yaml" in done.stdout
    assert "has tests for flow 'other', which is not among the flows given (known: greeter)" in done.stdout
    assert done.stdout.splitlines()[-1] == "2 passed, 1 failed"


def test_json_format(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER, greeter__test__yaml=FAILING)
    done = fx_flowdesk("test", "flows", "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["ok"], report["passed"], report["failed"]) == (False, 2, 1)
    failed = next(t for t in report["tests"] if not t["passed"])
    assert failed["name"] == "wrong echo" and failed["failure"]["turn"] == 3
    assert "- You said: hello" in failed["failure"]["diff"]


def test_live_reports_as_the_simulator_does(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    # The same report, but played through a test server, a worker and the message path.
    flows_dir(tmp_path, greeter__yaml=GREETER)
    offline = fx_flowdesk("test", "flows")
    live = fx_flowdesk("test", "--live", "flows")
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout == offline.stdout
    assert live.stdout.splitlines()[-1] == "2 passed, 0 failed"
    # Nothing from the Temporal core (its heartbeat-details warning is filtered out).
    assert live.stderr == offline.stderr


def test_live_failure_shows_the_diff(tmp_path: Path, fx_flowdesk: Flowdesk) -> None:
    flows_dir(tmp_path, greeter__yaml=GREETER, greeter__test__yaml=FAILING)
    live = fx_flowdesk("test", "--live", "flows")
    assert live.returncode == 1
    lines = live.stdout.splitlines()
    assert "FAIL greeter: wrong echo" in lines
    assert '    turn 3: bot message "You said: hi" does not match "You said: hello"' in lines
    assert "      - You said: hello" in lines
    assert "      + You said: hi" in lines
    assert lines[-1] == "2 passed, 1 failed"
    assert "Traceback" not in live.stdout + live.stderr
