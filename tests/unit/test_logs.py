"""`log.format: json`: one parseable object per line, with extra fields and the traceback."""

from __future__ import annotations

import json
import logging
import sys

from engine.logs import JsonFormatter, TextFormatter


def test_a_record_is_one_json_line_with_its_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "flowdesk.test", "levelname": "WARNING", "msg": "flow %s: %s", "args": ("echo", "ünïcode")}
    )
    record.conversation = "c1"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "flowdesk.test"
    assert entry["message"] == "flow echo: ünïcode" and entry["conversation"] == "c1"
    assert entry["time"].endswith("+00:00")


def test_an_exception_travels_inside_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"] and entry["message"] == "failed"


def test_a_forged_line_or_terminal_escape_stays_escaped_on_its_line() -> None:
    record = logging.makeLogRecord(
        {
            "name": "engine.server.problems",
            "levelname": "ERROR",
            "msg": "unexpected error on %s %s",
            "args": ("GET", "/ui/x\n2026-01-01 00:00:00 INFO forged: admin logged in\r\x1b[2J\x00"),
        }
    )
    line = TextFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    assert line.endswith("/ui/x\\n2026-01-01 00:00:00 INFO forged: admin logged in\\r\\x1b[2J\\x00")
    entry = JsonFormatter().format(record)
    assert "\x1b" not in entry and json.loads(entry)["message"].endswith("\r\x1b[2J\x00")


def test_a_traceback_keeps_its_lines_but_none_starts_like_an_entry() -> None:
    try:
        raise ValueError("bad path /x\n2026-01-01 INFO forged")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = TextFormatter().format(record).splitlines()
    assert lines[0].endswith("failed") and all(line.startswith("    ") for line in lines[1:])
    assert not any(line.startswith("2026-01-01") for line in lines)
