"""Business hours: weekly opening intervals in one time zone, minus holidays.

Settings shape (one calendar)::

    timezone: Europe/Berlin
    weekly: {mon: ["09:00-17:00", "18:00-20:00"], sat: "10:00-14:00"}   # missing day = closed
    holidays: ["2026-12-25"]

Times are wall-clock times in the calendar's zone: "09:00" means nine on the local
clock on every day, across DST changes. Intervals are half-open (``17:00`` is
closed). Wall times skipped by a DST change do not exist and so are never open;
wall times repeated by one are open both times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WEEKDAYS", "BusinessCalendar"]

#: Weekday keys, in ``date.weekday()`` order.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far :meth:`BusinessCalendar.next_opening` looks ahead.
LOOKAHEAD = timedelta(days=14)

_INTERVAL_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DAY_MINUTES = 24 * 60

Interval: TypeAlias = tuple[int, int]


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours: ``weekly[day]`` holds sorted ``(start, end)`` minutes of the day."""

    timezone: str
    weekly: Mapping[str, tuple[Interval, ...]] = field(hash=False)
    holidays: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        weekly: dict[str, tuple[Interval, ...]] = {}
        for day, intervals in self.weekly.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}: use one of {', '.join(WEEKDAYS)}")
            for start, end in intervals:
                if not 0 <= start < end <= _DAY_MINUTES:
                    raise ValueError(f"{day}: interval {start}-{end} (minutes) is not within one day")
            weekly[day] = tuple(sorted(intervals))
        # Sorted, read-only copy: next_opening relies on order, and the object is frozen.
        object.__setattr__(self, "weekly", MappingProxyType(weekly))
        for holiday in self.holidays:
            if _parse_date(holiday) != holiday:
                raise ValueError(f"holiday {holiday!r} is not a date like 2026-12-25")

    @classmethod
    def from_settings(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Build a calendar from its settings mapping; raise ValueError on bad shapes."""
        if not isinstance(data, Mapping):
            raise ValueError(f"business hours must be a mapping, got {type(data).__name__}")
        unknown = set(data) - {"timezone", "weekly", "holidays"}
        if unknown:
            raise ValueError(f"unknown business-hours keys: {', '.join(sorted(map(str, unknown)))}")
        zone_name = data.get("timezone")
        if not isinstance(zone_name, str) or not zone_name:
            raise ValueError("business hours need `timezone`, e.g. Europe/Berlin")
        weekly_data = data.get("weekly", {})
        if not isinstance(weekly_data, Mapping):
            raise ValueError("`weekly` must map weekdays (mon..sun) to lists of 'HH:MM-HH:MM'")
        weekly = {str(day): _parse_day(str(day), spec) for day, spec in weekly_data.items()}
        raw_holidays = data.get("holidays") or []
        if not isinstance(raw_holidays, list):
            raise ValueError("`holidays` must be a list of dates like 2026-12-25")
        holidays = frozenset(_parse_date(h) for h in raw_holidays)
        return cls(timezone=zone_name, weekly=weekly, holidays=holidays)

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return _zone(self.timezone)

    def is_open(self, at: datetime) -> bool:
        """Whether the business is open at the aware datetime ``at``."""
        local = _aware(at).astimezone(self.zone)
        if local.date().isoformat() in self.holidays:
            return False
        # Intervals hold whole minutes, so the floored minute decides half-openness exactly.
        minute = local.hour * 60 + local.minute
        day = WEEKDAYS[local.weekday()]
        return any(start <= minute < end for start, end in self.weekly.get(day, ()))

    def next_opening(self, at: datetime) -> datetime | None:
        """The first instant at or after ``at`` when the business is open, in the
        calendar's zone; ``at`` itself if open now; None if closed for the next 14 days.

        Compare results with ``.astimezone(UTC)``: Python says a datetime inside a
        repeated DST hour is never ``==`` to one in another zone.
        """
        # Instants are compared in UTC: comparing two datetimes of the same zone
        # ignores `fold`, which would confuse the two 02:30s of a fall-back night.
        at = _aware(at).astimezone(UTC)
        zone = self.zone
        if self.is_open(at):
            return at.astimezone(zone)
        local = at.astimezone(zone)
        limit = at + LOOKAHEAD
        for offset in range(LOOKAHEAD.days + 1):
            day = local.date() + timedelta(days=offset)
            if day.isoformat() in self.holidays:
                continue
            # On the first day, wall times well before `at` cannot be after it; the
            # 3-hour margin covers wall times a DST change repeats.
            earliest = local.hour * 60 + local.minute - 180 if offset == 0 else 0
            for start, end in self.weekly.get(WEEKDAYS[day.weekday()], ()):
                opening = _first_instant(day, max(start, earliest), end, zone, at)
                if opening is not None:
                    return opening if opening.astimezone(UTC) <= limit else None
        return None


def _first_instant(day: date, start: int, end: int, zone: ZoneInfo, after: datetime) -> datetime | None:
    """Earliest instant >= ``after`` (UTC) whose wall time on ``day`` is in [start, end)."""
    for minute in range(start, end):
        # A wall time repeated by a DST change has two instants (fold 0 and 1); one
        # skipped by it has none, so the first existing minute after the gap opens.
        instants = (_instant(day, minute, zone, fold) for fold in (0, 1))
        later = [i for i in instants if i is not None and i.astimezone(UTC) >= after]
        if later:
            return min(later, key=lambda i: i.astimezone(UTC))
    return None


def _instant(day: date, minute: int, zone: ZoneInfo, fold: int) -> datetime | None:
    if minute >= _DAY_MINUTES:
        return None
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).replace(fold=fold)
    back = wall.astimezone(UTC).astimezone(zone)
    # A wall time inside a DST gap does not survive the round trip through UTC.
    return back if back.replace(tzinfo=None, fold=0) == wall.replace(tzinfo=None, fold=0) else None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business hours need an aware datetime (with a time zone)")
    return at


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name like Europe/Berlin") from exc


def _parse_day(day: str, spec: Any) -> tuple[Interval, ...]:
    if day not in WEEKDAYS:
        raise ValueError(f"unknown weekday {day!r} in `weekly`: use one of {', '.join(WEEKDAYS)}")
    if spec is None:
        return ()
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, list):
        raise ValueError(f"weekly.{day} must be a list of 'HH:MM-HH:MM' strings")
    intervals = sorted(_parse_interval(day, item) for item in items)
    # Overlapping or touching intervals are merged so each day is a clean sorted list.
    merged: list[Interval] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _parse_interval(day: str, item: Any) -> Interval:
    match = _INTERVAL_RE.fullmatch(item) if isinstance(item, str) else None
    if match is None:
        raise ValueError(f"weekly.{day}: {item!r} is not an interval like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"weekly.{day}: {item!r} has an invalid time (00:00 to 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise ValueError(
            f"weekly.{day}: {item!r} ends before it starts; split overnight hours, "
            "e.g. mon: 22:00-24:00 and tue: 00:00-02:00"
        )
    return start, end


def _parse_date(value: Any) -> str:
    # YAML 1.1 loaders (yaml.safe_load) turn an unquoted 2026-12-25 into a date.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError(f"holiday {value!r} is not a date like 2026-12-25")
