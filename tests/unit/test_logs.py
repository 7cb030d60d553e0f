"""`log.format: json`: one parseable object per line, with extra fields and the traceback."""

from __future__ import annotations

import json
import logging
import sys

from engine.logs import JsonFormatter


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
