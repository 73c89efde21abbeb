"""Holiday calendars for the arrival forecast: which days a centre opens, and how near a holiday
each day is.

A centre forecasts with its region's calendar, set in centre.toml:

    [forecast]
    holidays = "CN"     # mainland China (default): chinese-calendar, with 调休 working weekends
                        # "HK" Hong Kong, "TW" Taiwan (with its make-up working Saturdays), or
                        # any country code of the `holidays` package ("US", "NZ", "GB", ...),
                        # optionally with a subdivision: "NZ-AUK", "US-NY"

The evaluation of the forecast on foreign series uses the series' own country the same way
(`eval_forecast --holidays US`). What the model learns from a calendar (see `DayFlags`):

- closed: not a working day (weekend or public holiday) unless the data says it was open
  (a pedestrian counter counts every day; a call centre may take calls on a holiday);
- holiday: a public holiday (the level of a day that has counts on a holiday);
- pre_holiday / post_holiday: the working day just before / after a run of days off that holds
  a public holiday (people come before the break, and the backlog comes after it);
- bridge: a working day between a holiday and a weekend (many take it off);
- adjusted_workday: a weekend day worked instead (调休, and Taiwan's make-up Saturdays);
- month_start / month_end: the first 3 and the last working day of a month (pensions and
  benefits paid, monthly declarations due: a bank's calls rise 5–15 % on them).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT = "CN"
REGIONS = {"CN": "中国大陆 mainland China (chinese-calendar, 调休)", "HK": "香港 Hong Kong",
           "TW": "台湾 Taiwan"}


@dataclass(frozen=True, slots=True)
class DayFlags:
    date: dt.date
    workday: bool  # a regular working day (the centre opens)
    holiday: str = ""  # the public holiday's name, if it is one
    pre_holiday: bool = False
    post_holiday: bool = False
    bridge: bool = False
    adjusted_workday: bool = False
    month_start: bool = False  # one of the month's first 3 working days
    month_end: bool = False  # the month's last working day
    pre_name: str = ""  # the holiday after the days off that follow (pre_holiday)
    post_name: str = ""  # the holiday in the days off just before (post_holiday)


class CalendarError(ValueError):
    """An unknown calendar code (said in zh and en)."""


def _holidays_module() -> Any:
    try:
        import holidays
    except ImportError as e:  # a [project] dependency: only a broken install lacks it
        raise CalendarError("需要 holidays 包 / the holidays package is not installed") from e
    return holidays


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """One region's working days and public holidays (see the module docstring)."""

    code: str

    @classmethod
    def parse(cls, code: str | None) -> HolidayCalendar:
        """A calendar by code ("CN", "HK", "TW", "US", "NZ-AUK"); unknown codes are an error."""
        text = (code or DEFAULT).strip().upper()
        country, _, sub = text.partition("-")
        if country != "CN" or sub:
            supported = _holidays_module().list_supported_countries()
            if country not in supported:
                raise CalendarError(
                    f"节假日日历 {code!r} 未知：用 CN、HK、TW 或 holidays 包的国家代码 / "
                    f"holiday calendar {code!r} unknown: CN, HK, TW or a country code of the "
                    f"holidays package (US, NZ, GB, ...)")
            if sub and sub not in supported[country]:
                raise CalendarError(
                    f"节假日日历 {code!r}：{country} 没有地区 {sub} / holiday calendar {code!r}: "
                    f"{country} has no subdivision {sub} ({', '.join(supported[country][:12])}"
                    f"{' ...' if len(supported[country]) > 12 else ''})")
        return cls(text)

    @property
    def label(self) -> str:
        return REGIONS.get(self.code, self.code)

    def _day(self, d: dt.date) -> tuple[bool, str]:
        """(working day, holiday name)."""
        return _lookup(self.code, d)[:2]

    def workday(self, d: dt.date) -> bool:
        return self._day(d)[0]

    def flags(self, d: dt.date) -> DayFlags:
        work, name = self._day(d)

        def run_holiday(step: int) -> tuple[str, int]:
            """The public holiday in the days off next to d (going by step; the nearest), and
            how many days off there are (at most 12 looked at)."""
            k, found, p = 0, "", d + dt.timedelta(days=step)
            while k < 12:
                w, n = self._day(p)
                if w:
                    break
                found = found or holiday_key(n)
                k += 1
                p += dt.timedelta(days=step)
            return found, k

        before_name, before_len = run_holiday(-1)
        after_name, after_len = run_holiday(1)
        before_hol, after_hol = bool(before_name), bool(after_name)
        if not work:
            return DayFlags(d, False, holiday=name)
        # Bridge: off on both sides, a holiday on one side and no more than a weekend on the
        # other (a Friday after a Thursday holiday, a Monday before a Tuesday one).
        bridge = before_len >= 1 and after_len >= 1 and (before_hol or after_hol) and \
            min(before_len, after_len) <= 2
        # The first day after a long closure (3 days or more) counts as after a holiday too:
        # the simulator's and the history files' post_holiday.
        first = d.replace(day=1)
        nth = sum(1 for k in range(d.day - 1) if self._day(first + dt.timedelta(days=k))[0])
        last = True
        p = d + dt.timedelta(days=1)
        while p.month == d.month:
            if self._day(p)[0]:
                last = False
                break
            p += dt.timedelta(days=1)
        return DayFlags(d, True, holiday=name, pre_holiday=after_hol,
                        post_holiday=before_hol or before_len >= 3, bridge=bridge,
                        adjusted_workday=_lookup(self.code, d)[2], month_start=nth < 3,
                        month_end=last, pre_name=after_name, post_name=before_name)


def holiday_key(name: str) -> str:
    """A holiday's name the same every year: "Christmas Day (observed)" and "Christmas Day"
    are one holiday; of two on one day ("A; B") the first."""
    return re.sub(r"\s*\(.*?\)", "", name.split(";")[0]).strip()


@functools.lru_cache(maxsize=65536)
def _lookup(code: str, d: dt.date) -> tuple[bool, str, bool]:
    """(working day, holiday name, a working day on the region's weekend: 调休)."""
    if code == "CN":
        try:
            import chinese_calendar as cc

            holiday, name = cc.get_holiday_detail(d)
            return not holiday, str(name or "") if holiday else "", \
                not holiday and d.weekday() >= 5
        except (NotImplementedError, ImportError):  # a year chinese-calendar does not cover
            pass
    h = _country(code, d.year)
    work = bool(h.is_working_day(d))
    # Hong Kong's weekend is Sunday only: a working Saturday there is no make-up day.
    return work, str(h.get(d) or ""), work and d.weekday() in h.weekend


@functools.lru_cache(maxsize=512)
def _country(code: str, year: int) -> Any:
    country, _, sub = code.partition("-")
    return _holidays_module().country_holidays(country, subdiv=sub or None, years=year)


def from_config(path: Path | str | None) -> HolidayCalendar:
    """The calendar of centre.toml's [forecast] holidays (default CN when absent)."""
    if path is None:
        return HolidayCalendar.parse(DEFAULT)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return from_table(data.get("forecast", {}))


def from_table(section: Any) -> HolidayCalendar:
    """The calendar of a [forecast] table (hub/config.py reads it for the dashboard's
    arrival forecast; `onewindow plan --config` through from_config)."""
    if not isinstance(section, dict):
        raise CalendarError("[forecast] 须为表 / [forecast] must be a table")
    unknown = set(section) - {"holidays"}
    if unknown:
        raise CalendarError(f"[forecast]: 未知的键 / unknown key(s) {', '.join(sorted(unknown))}; "
                            f"known: holidays")
    code = section.get("holidays", DEFAULT)
    if not isinstance(code, str):
        raise CalendarError(f"[forecast] holidays = {code!r}: 须为代码字符串 / a code like "
                            f"\"CN\", \"HK\", \"TW\"")
    return HolidayCalendar.parse(code)
