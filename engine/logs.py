"""How Flowdesk commands log: text for people, or one JSON object per line (``log.format: json``)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

#: LogRecord attributes that are not the caller's extra fields.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


#: Characters that could end a log line early, forge another, or drive a terminal (ANSI
#: escapes): C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\n``, ``\\x1b``), so it stays on its line."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """``time level logger: message``; request paths and user strings in it cannot break the line.

    A traceback keeps its lines, each indented, so no line of it starts like a log entry.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        lines = super().formatException(ei).splitlines()
        return "\n".join("    " + escape_control(line) for line in lines)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes C0 controls; DEL, C1 controls and U+2028/9 would pass raw.
        return _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", json.dumps(entry, ensure_ascii=False))


def configure_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr, as text or JSON, at ``level`` (debug, info, warning, error)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The ASGI server's access log is one line per request: useful when debugging only.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING if level != "debug" else logging.DEBUG)
