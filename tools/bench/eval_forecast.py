"""Arrival forecast accuracy on held-out weeks, and the fitted effects against the known ones.

    python -m onewindow.tools.bench.eval_forecast [--counts arrivals_halfhour.csv] [--weeks 26]

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

from ...hub.forecast.arrivals import (
    ArrivalForecaster,
    counts_from_days,
    evaluate,
    load_counts,
    synthetic_days,
)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=Path, help="half-hourly counts CSV (default: synthetic)")
    ap.add_argument("--weeks", type=int, default=26, help="held-out weeks")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--day-sigma", type=float, default=0.0,
                    help="synthetic: lognormal day-level noise on top of Poisson")
    a = ap.parse_args()
    console = Console(width=150)
    model = ArrivalModel(day_sigma=a.day_sigma)
    t0 = time.perf_counter()
    if a.counts:
        counts = load_counts(a.counts)
    else:
        counts = counts_from_days(synthetic_days(dt.date(2024, 1, 1), dt.date(2026, 11, 23),
                                                 a.seed, model), model)
    ev = evaluate(counts, weeks=a.weeks)
    console.print(accuracy_table(ev))
    fc = ArrivalForecaster.fit(counts)
    t = Table(title=f"Fitted effects ({fc.days} open days)")
    for col in ("effect", "fitted", "known"):
        t.add_column(col, justify="left" if col == "effect" else "right")
    known = truth_effects(model) if not a.counts else {}
    for k, v in fc.effects().items():
        if k in ("weekday_Sat", "weekday_Sun") and k not in known:
            continue
        t.add_row(k, f"{v:.3f}", f"{known[k]:.3f}" if k in known else "—")
    console.print(t)
    console.print(f"{len(ev.weeks)} refits and forecasts in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
