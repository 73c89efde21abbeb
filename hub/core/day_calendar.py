"""The centre's calendar: local time at its UTC offset, the span and id of a local day,
working days (weekends and holidays off, the weekend days worked instead, 调休, on) and
opening hours (when residents can be served: a closing time is what admission control,
remote takes and booking slots are measured against).

Pure like the rest of the core: it converts the `now` its caller passes, it reads no clock.
"""

from __future__ import annotations

import datetime as dt

Hours = tuple[str, str]  # ("09:00", "17:00"): local opening and closing time
WEEKDAYS_9_TO_5: tuple[Hours | None, ...] = (("09:00", "17:00"),) * 5 + (None, None)


class DayCalendar:
    def __init__(self, utc_offset_minutes: int, holidays: frozenset[str],
                 workdays: frozenset[str],
                 hours: tuple[Hours | None, ...] | None = None) -> None:
        self.tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
        self.holidays = holidays  # ISO dates that are not working days
        self.workdays = workdays  # weekend dates that are working days
        # Monday first; None: closed that weekday. Default Monday-Friday 09:00-17:00.
        week = hours if hours is not None else WEEKDAYS_9_TO_5
        self.hours = tuple(None if h is None else (dt.time.fromisoformat(h[0]),
                                                   dt.time.fromisoformat(h[1]))
                           for h in week)
        # (start, days) -> the date: every promised case asks, and most on the same days
        self._added: dict[tuple[dt.date, int], dt.date] = {}

    def local_time(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, self.tz)

    def local_date(self, now: float) -> dt.date:
        return self.local_time(now).date()

    def day_id(self, now: float) -> str:
        """The local day as tickets carry it: "20261123"."""
        return self.local_date(now).strftime("%Y%m%d")

    def day_of(self, now: float) -> tuple[str, tuple[float, float]]:
        """The local day holding `now`: its id and its [start, end) in epoch seconds."""
        local = self.local_date(now)
        start = dt.datetime.combine(local, dt.time(), self.tz)
        span = (start.timestamp(), (start + dt.timedelta(days=1)).timestamp())
        return local.strftime("%Y%m%d"), span

    def is_workday(self, d: dt.date) -> bool:
        iso = d.isoformat()
        if iso in self.holidays:
            return False
        return d.weekday() < 5 or iso in self.workdays

    def opening(self, d: dt.date) -> tuple[float, float] | None:
        """[open, close) of local date `d` in epoch seconds; None when the centre is closed
        that day (a holiday, or a weekday without hours). A weekend day worked instead
        (调休) keeps Monday's hours, or the first weekday's that has any."""
        iso = d.isoformat()
        if iso in self.holidays:
            return None
        h = self.hours[d.weekday()]
        if h is None and iso in self.workdays:
            h = next((x for x in self.hours if x is not None), None)
        if h is None:
            return None
        return (dt.datetime.combine(d, h[0], self.tz).timestamp(),
                dt.datetime.combine(d, h[1], self.tz).timestamp())

    def opening_at(self, now: float) -> tuple[float, float] | None:
        """Today's [open, close) (local day of `now`), None when closed today."""
        return self.opening(self.local_date(now))

    def add_workdays(self, start: dt.date, days: int) -> dt.date:
        """The date `days` working days after `start` (a promised case's due day)."""
        key = (start, days)
        hit = self._added.get(key)
        if hit is None:
            hit = self._added[key] = self._count_workdays(start, days)
        return hit

    def _count_workdays(self, start: dt.date, days: int) -> dt.date:
        d = start
        while days > 0:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                days -= 1
        return d
