"""How long `onewindow plan` takes for one day, by size (issue 19: "finishes in seconds for
any day up to 3,000 visits").

    python -m onewindow.tools.bench.bench_plan [--sizes 500,1000,2000,2500,3000] [--seeds 3]

Each size is the arrival model's usual half-hour shape scaled to that many residents on an
ordinary Wednesday, planned as `onewindow plan` plans a day (mixed layout, as many windows as
needed, at most 8 rounds of the simulation check). Prints rounds, whether every half-hour
met the target, the most windows and the wall-clock seconds. Not a test: the machine's load
moves the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from ...hub.catalog import load_catalog
from ...hub.forecast.staffing import plan_day
from ...hub.sim.model import ArrivalModel, Weather, day_info

DAY = dt.date(2026, 11, 25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,1000,2000,2500,3000")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    catalog = load_catalog()
    model = ArrivalModel()
    usual = model.expected(day_info(DAY), Weather())
    slots = [t.strftime("%H:%M") for t in model.slots()]
    print("| residents | rounds | met | most windows | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for size in (int(x) for x in a.sizes.split(",")):
        expected = [x * size / sum(usual) for x in usual]
        t0 = time.perf_counter()
        p = plan_day(catalog, DAY, slots, expected, seeds=a.seeds)
        took = time.perf_counter() - t0
        met = "yes" if p.met else "no: " + ", ".join(p.slots[k] for k in p.missed)
        print(f"| {size:,} | {p.rounds} | {met} | {max(p.windows)} | {took:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
