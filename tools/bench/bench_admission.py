"""Admission control on the simulator: a day at 120 % of the centre's capacity, off / warn /
stop.

    python -m onewindow.tools.bench.bench_admission [--windows 12] [--seeds 3] [--load 1.2]

The centre's capacity is what its windows call before closing when the queue never empties
(hub/sim/admission.py `capacity`: a day of three times the usual arrivals); the day then
brings `--load` times that many residents. The same residents, clerks and service draws in
each mode (one seed each); the simulator asks the hub's own decision
(hub/forecast/admission.py) on the hub's own wait estimate. In "stop" a refused resident
goes away, offered a booking; in "warn" half of the warned go away (an assumption,
hub/sim/admission.py LEAVE_SHARE).

Target: nobody waits past closing with "stop" (still waiting at closing + served after
closing, summed over the seeds: 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from ...hub.catalog import load_catalog
from ...hub.sim.admission import capacity, overloaded_day
from ...hub.sim.metrics import DayMetrics

DAY = dt.date(2026, 11, 25)  # an ordinary Wednesday, open 09:00-17:00
MODES = ("off", "warn", "stop")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--load", type=float, default=1.2)
    args = ap.parse_args(argv)
    catalog = load_catalog()
    t0 = time.perf_counter()
    rows: dict[str, list[DayMetrics]] = {m: [] for m in MODES}
    caps = []
    for seed in range(args.seeds):
        cap = capacity(catalog, args.windows, DAY, seed)
        caps.append(cap)
        for mode in MODES:
            rows[mode].append(overloaded_day(catalog, args.windows, DAY, mode, args.load,
                                             seed, cap))
    print(f"Admission control, {DAY} (a Wednesday, 09:00-17:00), mixed layout, "
          f"{args.windows} windows; capacity (called before closing with an endless queue) "
          f"{', '.join(map(str, caps))} for seeds 0-{args.seeds - 1}; {args.load:.0%} of it "
          f"arriving; sums over the {args.seeds} days, max wait the longest of them")
    print()
    print("| mode | arrived | tickets issued | turned away (offered booking) | left when "
          "warned | served | still waiting at closing | served after closing | max wait "
          "(min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in MODES:
        ms = rows[mode]

        def total(name: str, ms: list[DayMetrics] = ms) -> int:
            return int(sum(getattr(m, name) for m in ms))

        issued = total("visits") - total("turned_away") - total("left_warned") - total(
            "rejected")
        print(f"| {mode} | {total('visits')} | {issued} | {total('turned_away')} | "
              f"{total('left_warned')} | {total('served')} | {total('waiting_at_close')} | "
              f"{total('served_after_close')} | {max(m.max_wait for m in ms):.0f} |")
    stop = rows["stop"]
    past = int(sum(m.waiting_at_close + m.served_after_close for m in stop))
    print()
    print(f"nobody waits past closing with stop: {past} (still waiting at closing + served "
          f"after closing; off: "
          f"{int(sum(m.waiting_at_close + m.served_after_close for m in rows['off']))})")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
