"""Opening hours ([hours] in centre.toml): parsed strictly, and the calendar's opening of a
day, what admission control, remote takes and booking slots measure against."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.hub.config import ConfigError, from_dict
from onewindow.hub.core.day_calendar import DayCalendar

BASE: dict[str, Any] = {"centre": {"id": "c1"}, "windows": [{"number": 1}]}
CST = dt.timezone(dt.timedelta(hours=8))


def config(hours: dict | None = None, **centre: object):
    data: dict[str, Any] = {**BASE, "centre": {"id": "c1", **centre}}
    if hours is not None:
        data["hours"] = hours
    return from_dict(data).centre


def at(d: dt.date, hhmm: str) -> float:
    return dt.datetime.combine(d, dt.time.fromisoformat(hhmm), CST).timestamp()


def calendar(cfg) -> DayCalendar:
    return DayCalendar(cfg.utc_offset_minutes, cfg.holidays, cfg.workdays, cfg.hours)


MON, SAT, SUN = dt.date(2026, 12, 7), dt.date(2026, 12, 5), dt.date(2026, 12, 6)


def test_by_default_weekdays_nine_to_five_and_weekends_closed() -> None:
    cal = calendar(config())
    assert cal.opening(MON) == (at(MON, "09:00"), at(MON, "17:00"))
    assert cal.opening(SAT) is None and cal.opening(SUN) is None


def test_named_days_override_and_a_worked_weekend_keeps_weekday_hours() -> None:
    cfg = config({"weekdays": "08:30-17:30", "sat": "09:00-12:00", "fri": "closed"},
                 holidays=["2026-12-07"], workdays=["2026-12-06"])
    cal = calendar(cfg)
    assert cal.opening(SAT) == (at(SAT, "09:00"), at(SAT, "12:00"))
    assert cal.opening(SUN) == (at(SUN, "08:30"), at(SUN, "17:30"))  # 调休
    assert cal.opening(MON) is None  # a holiday
    assert cal.opening(dt.date(2026, 12, 11)) is None  # Friday closed
    tue = dt.date(2026, 12, 8)
    assert cal.opening_at(at(tue, "23:59")) == (at(tue, "08:30"), at(tue, "17:30"))


@pytest.mark.parametrize("table, says", [
    ({"weekdays": "17:00-09:00"}, "closes before it opens"),
    ({"weekdays": "9-17"}, 'write "09:00-17:00"'),
    ({"weekdays": "09:00"}, 'write "09:00-17:00"'),
    ({"mon": 9}, 'write "09:00-17:00"'),
    ({"monday": "09:00-17:00"}, "one of weekdays"),
    ({"sat": "09:00-25:00"}, 'write "09:00-17:00"'),
])
def test_bad_hours_are_a_configuration_error_naming_the_key(table, says) -> None:
    with pytest.raises(ConfigError, match=says):
        config(table)


def test_hours_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        from_dict({**BASE, "hours": "09:00-17:00"})


@given(st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)),
       st.integers(0, 23 * 60 - 1), st.integers(1, 60 * 24), st.integers(-12 * 60, 14 * 60))
def test_an_opening_lies_inside_its_local_day_at_any_offset(d, start, length, offset) -> None:
    opens = dt.time(start // 60, start % 60)
    end = min(start + length, 23 * 60 + 59)
    if end <= start:
        return
    hours = ((opens.strftime("%H:%M"), f"{end // 60:02d}:{end % 60:02d}"),) * 7
    cal = DayCalendar(offset, frozenset(), frozenset(), hours)
    o, c = cal.opening(d)  # type: ignore[misc]
    assert o < c
    assert cal.local_date(o) == d and cal.local_date(c - 1e-3) == d
