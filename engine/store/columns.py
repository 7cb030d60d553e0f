"""Column types shared by the tables: timestamps that stay UTC on every database.

SQLite has no time zone type: it stores the text of a datetime and gives back a
naive value. Storing UTC and re-attaching UTC on the way out makes every row read
the same on SQLite and PostgreSQL (``timestamptz``), so code never compares a
naive datetime with an aware one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine.interfaces import Dialect


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC: the only kind of time the store writes."""
    return datetime.now(UTC)


class UTCDateTime(types.TypeDecorator[datetime]):
    """An aware datetime stored in UTC and returned in UTC."""

    impl = types.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            # A naive time is ambiguous (local? UTC?); refusing it finds the bug at its source.
            raise ValueError(f"the store needs timezone-aware datetimes, got {value!r}")
        moment = value.astimezone(UTC)
        # SQLite would keep a "+00:00" suffix only sometimes; store the plain UTC text there.
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"unexpected stored time {value!r}")
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
