"""The dashboard's arrivals chart: residents who took a ticket per half-hour today, beside
the forecast for today (hub/forecast/arrivals.py) fitted on the past days' tickets in the
history tables.

* Actual: today's tickets in the core's memory, by the half-hour they were issued in.
* Forecast: the past HISTORY_WEEKS weeks of `history_tickets` counted per day and half-hour
  by SQL (a row per day and slot, not per ticket), then
  - with MIN_MODEL_DAYS open days or more, `ArrivalForecaster` (weekday, the holiday
    calendar: mainland China's unless `calendar_code` names another, recent level; weather
    assumed dry and 20 °C: the hub has no weather feed), its forecast for today per slot;
  - with fewer, the mean per slot of the same weekday's past days (of all past days when
    there is none of that weekday): "mean of N days";
  - with none, no forecast.
  Past days change only when a day closes: the read and the fit run once a day, in a
  worker thread (daily.py), not on every update nor in the hub's loop.

Slots are the centre's opening hours today (hub/core/day_calendar.py) widened to every slot
with a ticket, today or in the forecast. Pure but for the one query (`past_counts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.engine import Engine

from ..core.centre import Centre
from .daily import DailyRead

log = logging.getLogger("onewindow.hub")

SLOT_S = 1800  # a half-hour
HISTORY_WEEKS = 26
MIN_MODEL_DAYS = 10  # ArrivalForecaster.fit's own minimum


def slot_label(k: int) -> str:
    return f"{k * SLOT_S // 3600:02d}:{k * SLOT_S % 3600 // 60:02d}"


def slot_of(ts: float, utc_offset_minutes: int) -> int:
    """The local half-hour of the day (0..47) holding epoch time `ts`."""
    return int((ts + utc_offset_minutes * 60) % 86400 // SLOT_S)


def past_counts(engine: Engine, first: str, last: str, utc_offset_minutes: int
                ) -> dict[str, dict[int, int]]:
    """day (YYYYMMDD) -> {half-hour: tickets issued} over days first..last, by SQL."""
    from ..store.schema import history_tickets as t

    secs = cast(t.c.issued_at, Integer) + utc_offset_minutes * 60
    slot = (secs % 86400) // SLOT_S
    out: dict[str, dict[int, int]] = {}
    with engine.connect() as conn:
        for day, k, n in conn.execute(
                select(t.c.day, slot, func.count()).where(t.c.day.between(first, last))
                .group_by(t.c.day, slot)):
            out.setdefault(str(day), {})[int(k)] = int(n)
    return out


def forecast_today(today: dt.date, past: dict[str, dict[int, int]],
                   calendar_code: str | None = None) -> tuple[dict[int, float], str, int]:
    """(forecast per half-hour, method: "model" | "mean" | "none", days it stands on)."""
    days = sorted((dt.date(int(d[:4]), int(d[4:6]), int(d[6:8])), c) for d, c in past.items()
                  if sum(c.values()) > 0)
    if not days:
        return {}, "none", 0
    if len(days) >= MIN_MODEL_DAYS:
        try:
            return _model(today, days, calendar_code), "model", len(days)
        except (ValueError, ArithmeticError) as e:  # a degenerate history: fall back
            log.warning("arrival forecast not fitted (%s): mean of past days instead", e)
    same = [c for d, c in days if d.weekday() == today.weekday()] or [c for _, c in days]
    total: Counter[int] = Counter()
    for c in same:
        total.update(c)
    return {k: v / len(same) for k, v in total.items()}, "mean", len(same)


def _model(today: dt.date, days: list[tuple[dt.date, dict[int, int]]],
           calendar_code: str | None) -> dict[int, float]:
    from ..forecast.arrivals import ArrivalForecaster, Counts, Day
    from ..forecast.calendars import HolidayCalendar
    from ..sim.model import Weather

    cal = HolidayCalendar.parse(calendar_code)
    ks = sorted({k for _, c in days for k in c})
    rows = []
    for d, c in days:
        f = cal.flags(d)
        rows.append(Day(d, [float(c.get(k, 0)) for k in ks],
                        adjusted_workday=f.adjusted_workday, post_holiday=f.post_holiday,
                        holiday=bool(f.holiday), pre_holiday=f.pre_holiday, bridge=f.bridge,
                        month_start=f.month_start, month_end=f.month_end))
    fc = ArrivalForecaster.fit(Counts([slot_label(k) for k in ks], rows), cal)
    day = fc.day_for(today, Weather())
    if day is None:  # a closed day by the calendar, and yet the dashboard is open: plain
        day = Day(today, [0.0] * len(ks))
    return dict(zip(ks, fc.predict(day), strict=True))


def actual_today(centre: Centre, utc_offset_minutes: int) -> Counter[int]:
    return Counter(slot_of(t.issued_at, utc_offset_minutes) for t in _today(centre))


def _today(centre: Centre) -> Iterable[Any]:
    return (t for t in centre.tickets.values() if t.day == centre.day)


def chart(actual: Counter[int], forecast: dict[int, float], opening: tuple[int, int] | None,
          now_slot: int | None) -> dict[str, Any]:
    """The chart's data: slot labels, actual and forecast per slot (forecast None where
    there is none), today's totals and the forecast up to now."""
    ks = set(actual) | {k for k, v in forecast.items() if v >= 0.05}
    if opening is not None:
        ks |= set(range(opening[0], opening[1]))
    if not ks:
        return {"slots": [], "actual": [], "forecast": [], "now": None,
                "actual_total": 0, "forecast_total": None, "forecast_so_far": None}
    lo, hi = min(ks), max(ks)
    span = range(lo, hi + 1)
    has = bool(forecast)
    return {
        "slots": [slot_label(k) for k in span],
        "actual": [actual.get(k, 0) for k in span],
        "forecast": [round(forecast.get(k, 0.0), 1) if has else None for k in span],
        # the slot now in progress, as an index into `slots` (None: outside them)
        "now": None if now_slot is None or not lo <= now_slot <= hi else now_slot - lo,
        "actual_total": sum(actual.values()),
        "forecast_total": round(sum(forecast.values()), 1) if has else None,
        "forecast_so_far": (round(sum(v for k, v in forecast.items()
                                      if now_slot is not None and k <= now_slot), 1)
                            if has else None),
    }


class ArrivalsView:
    """Today's arrivals beside the forecast. The forecast is read and fitted once a day in a
    worker thread (daily.py: the web runs in the hub's loop); until it is there the chart
    says so ("pending"), and `changed` is called (in the loop) once it is, so the floor's
    viewers get it without waiting for the next event."""

    def __init__(self, engine: Engine | None, utc_offset_minutes: int,
                 calendar_code: str | None = None,
                 changed: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.offset = utc_offset_minutes
        self.calendar_code = calendar_code
        self.changed = changed
        self._loop: asyncio.AbstractEventLoop | None = None
        self.past = DailyRead(self._read, "arrival forecast", on_read=self._poke)
        # today's counts, kept while no ticket is added (a walk of 3,000 was 0.5 ms a build)
        self._actual: tuple[tuple[str, int], Counter[int]] = (("", -1), Counter())

    def _read(self, today: dt.date) -> tuple[dt.date, dict[int, float], str, int]:
        assert self.engine is not None
        first = (today - dt.timedelta(weeks=HISTORY_WEEKS)).strftime("%Y%m%d")
        last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
        return (today, *forecast_today(today, past_counts(self.engine, first, last,
                                                          self.offset), self.calendar_code))

    def _poke(self) -> None:
        """In the worker thread, the forecast in place: the floor's viewers rebuild."""
        loop, changed = self._loop, self.changed
        if loop is not None and changed is not None and not loop.is_closed():
            loop.call_soon_threadsafe(changed)

    def forecast(self, today: dt.date) -> tuple[dict[int, float], str, int]:
        if self.engine is None:  # no journal (unit tests of the pages): no past days
            return {}, "none", 0
        if self._loop is None:
            with contextlib.suppress(RuntimeError):  # called outside a loop: no poke
                self._loop = asyncio.get_running_loop()
        got = self.past.get(today)
        if got is None or got[0] != today:
            return {}, "pending", 0
        return got[1], got[2], got[3]

    def view(self, centre: Centre, now: float) -> dict[str, Any]:
        today = centre.local_date(now)
        forecast, method, basis = self.forecast(today)
        opening = centre.calendar.opening(today)
        span = None
        if opening is not None:
            first = slot_of(opening[0], self.offset)
            span = (first, first + max(1, -(-int(opening[1] - opening[0]) // SLOT_S)))
        key = (centre.day, len(centre.tickets))  # tickets are only added within a day
        if self._actual[0] != key:
            self._actual = (key, actual_today(centre, self.offset))
        out = chart(self._actual[1], forecast, span, slot_of(now, self.offset))
        out.update(method=method, basis_days=basis)
        return out
