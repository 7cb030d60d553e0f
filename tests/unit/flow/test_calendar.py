"""Business hours: opening intervals, holidays, DST days, next opening."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.flow.calendar import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(wall: str, *, fold: int = 0) -> datetime:
    """Berlin wall-clock time, e.g. ``berlin("2026-06-01 09:00")``."""
    return datetime.fromisoformat(wall).replace(tzinfo=BERLIN, fold=fold)


def utc(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


@pytest.fixture
def shop() -> BusinessCalendar:
    return BusinessCalendar.from_settings(
        {
            "timezone": "Europe/Berlin",
            "weekly": {
                "mon": ["09:00-17:00", "18:00-20:00"],
                "tue": ["09:00-17:00"],
                "wed": ["09:00-17:00"],
                "thu": ["09:00-17:00"],
                "fri": ["09:00-17:00"],
                "sat": "10:00-14:00",
                "sun": ["02:30-04:00"],  # odd hours, to exercise the DST nights
            },
            "holidays": ["2026-12-25", date(2026, 12, 24)],
        }
    )


def test_parses_settings(shop: BusinessCalendar) -> None:
    assert shop.weekly["mon"] == ((540, 1020), (1080, 1200))
    assert shop.weekly["sat"] == ((600, 840),)
    assert shop.holidays == frozenset({"2026-12-24", "2026-12-25"})


def test_intervals_are_half_open(shop: BusinessCalendar) -> None:
    # Monday 2026-06-01
    assert not shop.is_open(berlin("2026-06-01 08:59:59"))
    assert shop.is_open(berlin("2026-06-01 09:00"))
    assert shop.is_open(berlin("2026-06-01 16:59:59"))
    assert not shop.is_open(berlin("2026-06-01 17:00"))
    assert shop.is_open(berlin("2026-06-01 18:30"))
    assert not shop.is_open(berlin("2026-06-02 18:30"))  # Tuesday has one interval


def test_converts_other_zones(shop: BusinessCalendar) -> None:
    # 07:30 UTC is 09:30 in Berlin in summer, 08:30 in winter.
    assert shop.is_open(utc("2026-06-01 07:30"))
    assert not shop.is_open(utc("2026-01-05 07:30"))


def test_holiday_is_closed(shop: BusinessCalendar) -> None:
    assert not shop.is_open(berlin("2026-12-25 11:00"))  # a Friday
    assert shop.next_opening(berlin("2026-12-24 08:00")) == berlin("2026-12-26 10:00")


def test_wall_clock_hours_across_dst(shop: BusinessCalendar) -> None:
    # Monday after the spring change: 09:00 local is 07:00 UTC (was 08:00 UTC the week before).
    assert shop.is_open(utc("2026-03-30 07:00"))
    assert not shop.is_open(utc("2026-03-23 07:00"))
    assert shop.is_open(utc("2026-03-23 08:00"))


def test_spring_forward_gap() -> None:
    # 2026-03-29: clocks jump from 02:00 to 03:00; 02:30-04:00 opens at 03:00 CEST.
    night = BusinessCalendar.from_settings({"timezone": "Europe/Berlin", "weekly": {"sun": ["02:30-04:00"]}})
    opening = night.next_opening(berlin("2026-03-29 00:00"))
    assert opening == utc("2026-03-29 01:00")
    assert opening is not None and (opening.hour, opening.minute) == (3, 0)
    assert night.is_open(utc("2026-03-29 01:59"))  # 03:59 CEST
    assert not night.is_open(utc("2026-03-29 02:00"))  # 04:00 CEST


def test_fall_back_repeats_hours(shop: BusinessCalendar) -> None:
    # 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    assert shop.is_open(berlin("2026-10-25 02:45", fold=0))
    assert shop.is_open(berlin("2026-10-25 02:45", fold=1))
    first = shop.next_opening(utc("2026-10-24 22:00"))  # 00:00 CEST
    assert first is not None and first.astimezone(UTC) == utc("2026-10-25 00:30")  # 02:30 CEST
    # Between the two 02:30s (02:10 CET, after the change): the second one is next,
    # whatever zone `at` is given in.
    for at in (utc("2026-10-25 01:10"), berlin("2026-10-25 02:10", fold=1)):
        second = shop.next_opening(at)
        assert second is not None and second.astimezone(UTC) == utc("2026-10-25 01:30")
    assert not shop.is_open(utc("2026-10-25 03:00"))  # 04:00 CET


def test_next_opening(shop: BusinessCalendar) -> None:
    # Open now: returns the same instant, in the calendar's zone.
    now = utc("2026-06-01 08:00")
    opening = shop.next_opening(now)
    assert opening == now and opening is not None and opening.tzinfo == BERLIN
    assert shop.next_opening(berlin("2026-06-01 17:30")) == berlin("2026-06-01 18:00")
    assert shop.next_opening(berlin("2026-06-05 17:00")) == berlin("2026-06-06 10:00")  # Fri -> Sat


def test_next_opening_none_when_closed_for_two_weeks() -> None:
    closed = BusinessCalendar.from_settings({"timezone": "UTC", "weekly": {}})
    assert closed.next_opening(utc("2026-01-01 00:00")) is None
    mondays = BusinessCalendar.from_settings(
        {"timezone": "UTC", "weekly": {"mon": ["09:00-10:00"]}, "holidays": ["2026-01-05", "2026-01-12", "2026-01-19"]}
    )
    assert mondays.next_opening(utc("2026-01-01 00:00")) is None  # Thursday; next open Mon 26th


def test_24_00_end_and_merging() -> None:
    cal = BusinessCalendar.from_settings({"timezone": "UTC", "weekly": {"mon": ["12:00-24:00", "08:00-12:30"]}})
    assert cal.weekly["mon"] == ((480, 1440),)
    assert cal.is_open(utc("2026-06-01 23:59"))
    assert not cal.is_open(utc("2026-06-02 00:00"))


def test_naive_datetime_is_rejected(shop: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        shop.is_open(datetime(2026, 6, 1, 9, 0))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"weekly": {}}, "timezone"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": "UTC", "weekly": {"monday": ["09:00-17:00"]}}, "unknown weekday"),
        ({"timezone": "UTC", "weekly": {"mon": ["9-17"]}}, "not an interval"),
        ({"timezone": "UTC", "weekly": {"mon": ["22:00-02:00"]}}, "ends before it starts"),
        ({"timezone": "UTC", "weekly": {"mon": ["24:00-24:00"]}}, "invalid time"),
        ({"timezone": "UTC", "weekly": {"mon": ["09:00-24:30"]}}, "invalid time"),
        ({"timezone": "UTC", "weekly": ["09:00-17:00"]}, "weekdays"),
        ({"timezone": "UTC", "holidays": ["25.12.2026"]}, "not a date"),
        ({"timezone": "UTC", "holidays": "2026-12-25"}, "list"),
        ({"timezone": "UTC", "hours": {}}, "unknown business-hours keys"),
    ],
)
def test_bad_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_settings(settings)
