"""Arrival forecast accuracy on held-out weeks, and the fitted effects against the known ones.

    python -m onewindow.tools.bench.eval_forecast [--counts counts.csv --holidays US] [--weeks N]

With --counts (a real series, tools/bench/real_counts.py): the rolling-origin backtest
(hub/forecast/backtest.py) over the held-out year (the last 52 weeks, or every week with 40
open days before it on a shorter series) against the same-weekday mean of the previous 8
weeks and the seasonal naive forecast: WAPE per day and per slot, the worst run of 8 weeks
against each baseline, the 80 % intervals' coverage, and the days the model loses most on.
--level-weeks 0 / --half-life 0 switch the recent level / the recency weighting off.

Without --counts: synthetic history drawn from the simulator's ArrivalModel (known weekday,
holiday, adjusted-workday, post-holiday, rain and temperature effects), 2024-01-01 to
2026-11-23, Poisson counts per half-hour; the noise floor then uses the true means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ...hub.forecast import backtest
from ...hub.forecast.arrivals import (
    ArrivalForecaster,
    Counts,
    counts_from_days,
    evaluate,
    load_counts,
    synthetic_days,
)
from ...hub.forecast.calendars import CalendarError, HolidayCalendar
from ...hub.forecast.plan_cli import accuracy_table
from ...hub.sim.model import WEEKDAY_NAMES, ArrivalModel


def truth_effects(m: ArrivalModel) -> dict[str, float]:
    wed = m.weekday[2]
    out = {"base_daily": m.base_daily * wed}
    for k in range(5):
        out[f"weekday_{WEEKDAY_NAMES[k]}"] = m.weekday[k] / wed
    out.update(adjusted_workday=m.adjusted_workday * m.weekday[5] / wed,
               post_holiday=m.post_holiday, rain=m.rain, heat_per_deg=1 - m.heat_per_deg,
               cold_per_deg=1 - m.cold_per_deg)
    return out


def backtest_tables(name: str, counts: Counts, cal: HolidayCalendar, weeks: int | None,
                    level_weeks: int | None, half_life: float | None) -> list[Table]:
    res = backtest.run(counts, cal, weeks, fit=lambda h: ArrivalForecaster.fit(
        h, cal, half_life_weeks=half_life, level_weeks=level_weeks))
    s = backtest.summarize(res)
    t = Table(title=f"{name}: rolling origin, {s.weeks} weeks, {s.days} days "
                    f"({s.first} … {s.last}), calendar {cal.code}")
    for col in ("level", *backtest.METHODS, "model / same-weekday", "model / seasonal naive"):
        t.add_column(col, justify="left" if col == "level" else "right")
    for lv in ("day", "slot"):
        m, b, n = (s.wape[x, lv] for x in backtest.METHODS)
        t.add_row(f"WAPE per {lv}", f"{m:.1%}", f"{b:.1%}", f"{n:.1%}", f"{m / b:.2f}×",
                  f"{m / n:.2f}×")
    for base, w in (("same-weekday mean", s.worst), ("seasonal naive", s.worst_snaive)):
        if w is not None:
            t.add_row(f"worst 8 weeks vs {base}", f"{w[1]:.1%}", *(
                (f"{w[2]:.1%}", "") if base == "same-weekday mean" else ("", f"{w[2]:.1%}")),
                f"{(w[1] - w[2]) * 100:+.1f} pt from {w[0]}", "")
    t.caption = (f"80 % prediction intervals hold {s.coverage[0]:.0%} of day totals and "
                 f"{s.coverage[1]:.0%} of slot counts")
    lose = Table(title=f"{name}: days the model loses most on against the same-weekday mean")
    for col in ("date", "actual", "model", "same-weekday mean"):
        lose.add_column(col, justify="left" if col == "date" else "right")
    for d, a, m, b in s.losing_days:
        lose.add_row(f"{d} {WEEKDAY_NAMES[d.weekday()]}", f"{a:.0f}", f"{m:.0f}", f"{b:.0f}")
    return [t, lose]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=Path, help="half-hourly counts CSV (default: synthetic)")
    ap.add_argument("--weeks", type=int, default=None,
                    help="held-out weeks (default: 52 with --counts, else 26)")
    ap.add_argument("--holidays", default="CN", help="the series' holiday calendar: CN, HK, "
                    "TW or a country code of the holidays package (US, NZ-AUK, ...)")
    ap.add_argument("--level-weeks", type=int, default=None, help="recent-level window "
                    "(0: off; default the model's)")
    ap.add_argument("--half-life", type=float, default=None, help="recency half-life of the "
                    "fit in weeks (0: off; default the model's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--day-sigma", type=float, default=0.0,
                    help="synthetic: lognormal day-level noise on top of Poisson")
    a = ap.parse_args()
    console = Console(width=150)
    try:
        cal = HolidayCalendar.parse(a.holidays)
    except CalendarError as e:
        raise SystemExit(f"--holidays: {e}") from None
    model = ArrivalModel(day_sigma=a.day_sigma)
    t0 = time.perf_counter()
    if a.counts:
        counts = load_counts(a.counts, cal)
        for t in backtest_tables(a.counts.name, counts, cal, a.weeks, a.level_weeks,
                                 a.half_life):
            console.print(t)
        fc = ArrivalForecaster.fit(counts, cal)
        console.print("Fitted on all days: " + ", ".join(
            f"{k} {v:.3f}" for k, v in fc.effects().items() if abs(v - 1) > 1e-9))
        console.print(f"in {time.perf_counter() - t0:.1f} s")
        return
    counts = counts_from_days(synthetic_days(dt.date(2024, 1, 1), dt.date(2026, 11, 23),
                                             a.seed, model), model)
    ev = evaluate(counts, weeks=a.weeks or 26)
    console.print(accuracy_table(ev))
    fc = ArrivalForecaster.fit(counts)
    t = Table(title=f"Fitted effects ({fc.days} open days)")
    for col in ("effect", "fitted", "known"):
        t.add_column(col, justify="left" if col == "effect" else "right")
    known = truth_effects(model)
    for k, v in fc.effects().items():
        if k in ("weekday_Sat", "weekday_Sun") and k not in known:
            continue
        t.add_row(k, f"{v:.3f}", f"{known[k]:.3f}" if k in known else "—")
    console.print(t)
    console.print(f"{len(ev.weeks)} refits and forecasts in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
