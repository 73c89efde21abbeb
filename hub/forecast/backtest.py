"""Rolling-origin backtest of the arrival forecast against two baselines, on any counts file.

Every week of the held-out period the model is refitted on all days before its Monday and
forecasts the week's open days; so does each baseline, from the same past:

- same-weekday mean: per slot, the mean of the same weekday's days in the 8 weeks before the
  day (what a supervisor does by hand; `arrivals.same_weekday_mean`);
- seasonal naive: the last same weekday before the week (one week back, further if it is
  missing).

Scores (`Backtest`): WAPE = sum |actual - forecast| / sum actual, per day total and per slot;
the worst run of 8 consecutive held-out weeks, model minus same-weekday mean in WAPE points;
and how often the model's 80 % prediction intervals hold the actual count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .arrivals import ArrivalForecaster, Counts, Day, same_weekday_mean
from .calendars import HolidayCalendar

METHODS = ("model", "same-weekday mean", "seasonal naive")
WINDOW_WEEKS = 8


@dataclass(slots=True)
class DayResult:
    date: dt.date
    monday: dt.date  # the forecast origin
    actual: list[float]
    forecast: dict[str, list[float]]  # per method, per slot
    day_interval: tuple[float, float] = (0.0, 0.0)
    slot_interval: list[tuple[float, float]] = field(default_factory=list)


def seasonal_naive(history: list[Day], d: dt.date) -> list[float]:
    """The counts of the last day before history's end with d's weekday (none: the last day)."""
    for x in reversed(history):
        if x.date.weekday() == d.weekday():
            return list(x.counts)
    return list(history[-1].counts)


def held_out_mondays(counts: Counts, weeks: int | None, min_history_days: int) -> list[dt.date]:
    """The Mondays of the held-out weeks: the last `weeks` whole weeks (None: the last 52, or
    every week with enough history before it when the series is shorter)."""
    days = counts.days
    if not days:
        raise ValueError("no open days")
    last = days[-1].date
    end_monday = last - dt.timedelta(days=last.weekday())
    if (last - end_monday).days < 4:  # the last week is not whole enough: leave it out
        end_monday -= dt.timedelta(weeks=1)
    n = weeks if weeks is not None else 52
    mondays = [end_monday - dt.timedelta(weeks=k) for k in range(n - 1, -1, -1)]
    mondays = [m for m in mondays if sum(1 for x in days if x.date < m) >= min_history_days]
    if not mondays:
        raise ValueError(f"need {min_history_days} open days of history before a held-out week")
    return mondays


def run(counts: Counts, calendar: HolidayCalendar | None = None, weeks: int | None = None,
        min_history_days: int = 40, coverage: float = 0.8,
        fit: Callable[[Counts], ArrivalForecaster] | None = None) -> list[DayResult]:
    """Forecast every open day of the held-out weeks from the origin of its week."""
    days = counts.days
    fitter = fit or (lambda c: ArrivalForecaster.fit(c, calendar))
    out = []
    for monday in held_out_mondays(counts, weeks, min_history_days):
        past = [x for x in days if x.date < monday]
        fc = fitter(Counts(counts.slots, past))
        for x in (x for x in days if monday <= x.date < monday + dt.timedelta(days=7)):
            day_iv, slot_iv = fc.interval(x, coverage)
            out.append(DayResult(x.date, monday, list(x.counts), {
                "model": fc.predict(x),
                "same-weekday mean": same_weekday_mean(past, x.date),
                "seasonal naive": seasonal_naive(past, x.date)}, day_iv, slot_iv))
    return out


def wape(results: list[DayResult], method: str, level: str = "day") -> float:
    """sum |actual - forecast| / sum actual over the results' day totals or slots."""
    if level == "day":
        err = sum(abs(sum(r.actual) - sum(r.forecast[method])) for r in results)
    else:
        err = sum(abs(a - f) for r in results
                  for a, f in zip(r.actual, r.forecast[method], strict=True))
    act = sum(sum(r.actual) for r in results)
    return err / act if act else float("nan")


def windows(results: list[DayResult], weeks: int = WINDOW_WEEKS, base: str = "same-weekday mean"
            ) -> list[tuple[dt.date, float, float]]:
    """(first Monday, model day WAPE, baseline day WAPE) of every run of `weeks` consecutive
    held-out weeks."""
    mondays = sorted({r.monday for r in results})
    out = []
    for k in range(max(0, len(mondays) - weeks + 1)):
        span = set(mondays[k:k + weeks])
        sub = [r for r in results if r.monday in span]
        out.append((mondays[k], wape(sub, "model"), wape(sub, base)))
    return out


def worst_window(results: list[DayResult], weeks: int = WINDOW_WEEKS,
                 base: str = "same-weekday mean") -> tuple[dt.date, float, float] | None:
    """The window where the model does worst against the baseline (largest difference)."""
    ws = windows(results, weeks, base)
    return max(ws, key=lambda w: w[1] - w[2]) if ws else None


def interval_coverage(results: list[DayResult]) -> tuple[float, float]:
    """Share of day totals, and of slot counts, inside their prediction intervals."""
    if not results:
        return float("nan"), float("nan")
    day = np.mean([r.day_interval[0] <= sum(r.actual) <= r.day_interval[1] for r in results])
    slot = np.mean([lo <= a <= hi for r in results
                    for a, (lo, hi) in zip(r.actual, r.slot_interval, strict=True)])
    return float(day), float(slot)


@dataclass(slots=True)
class Summary:
    days: int
    weeks: int
    first: dt.date
    last: dt.date
    wape: dict[tuple[str, str], float]  # (method, level)
    worst: tuple[dt.date, float, float] | None  # vs the same-weekday mean
    worst_snaive: tuple[dt.date, float, float] | None
    coverage: tuple[float, float]
    losing_days: list[tuple[dt.date, float, float, float]]  # date, actual, model, baseline


def summarize(results: list[DayResult], top: int = 5) -> Summary:
    if not results:
        raise ValueError("no held-out days")
    w = {(m, lv): wape(results, m, lv) for m in METHODS for lv in ("day", "slot")}

    def loss(r: DayResult) -> float:
        a = sum(r.actual)
        return abs(a - sum(r.forecast["model"])) - abs(a - sum(r.forecast["same-weekday mean"]))

    worst_days = sorted(results, key=loss, reverse=True)[:top]
    return Summary(len(results), len({r.monday for r in results}), results[0].date,
                   results[-1].date, w, worst_window(results),
                   worst_window(results, base="seasonal naive"), interval_coverage(results),
                   [(r.date, sum(r.actual), sum(r.forecast["model"]),
                     sum(r.forecast["same-weekday mean"])) for r in worst_days])
