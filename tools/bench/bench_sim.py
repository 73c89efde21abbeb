"""Simulator benchmark: simulated visits per second, driving the real dispatch core.

    python -m onewindow.tools.bench.bench_sim [--centres 220] [--visits 2000] [--procs 2]

* one centre's day of about 3,000 visits (target: under 1 s);
* a city day: `--centres` centres x about `--visits` visits, spread over `--procs` processes
  (target: 220 x 2,000 in under 30 s on 2 cores);
* a bare SimPy model of the same size (the same residents and service draws, windows as a
  `simpy.Resource`, no core) for comparison;
* the share of the time spent inside `Centre.apply` (the core) on the one-centre day.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import math
import pstats
import time
from multiprocessing import Pool

import simpy
from rich.console import Console
from rich.table import Table

from ...hub.catalog import load_catalog
from ...hub.core.catalog import Catalog
from ...hub.sim.engine import Engine
from ...hub.sim.model import Weather
from ...hub.sim.policies import layout

DAY = dt.date(2026, 11, 25)  # an ordinary Wednesday
VISITS_PER_WINDOW = 37.0  # windows a centre opens per visit expected (about 85% busy)


@functools.cache
def _catalog() -> Catalog:
    """One catalog per worker process, as a city's hubs share one item list."""
    return load_catalog()


def _windows(visits: float) -> int:
    return max(4, math.ceil(visits / VISITS_PER_WINDOW))


def centre_day(args: tuple[int, float, bool]) -> tuple[int, int, float]:
    """(visits, core operations, seconds) of one centre's day with the real core."""
    seed, visits, timed_core = args
    catalog = _catalog()
    eng = Engine(catalog, layout("mixed", catalog, _windows(visits)), clerk_seed=seed)
    scale = visits / eng.arrivals.base_daily
    core_time = 0.0
    if timed_core:
        real = eng.centre.apply

        def apply(cmd, now):  # type: ignore[no-untyped-def]
            nonlocal core_time
            t0 = time.perf_counter()
            try:
                return real(cmd, now)
            finally:
                core_time += time.perf_counter() - t0

        eng.centre.apply = apply  # type: ignore[method-assign]
    t0 = time.perf_counter()
    r = eng.run_day(DAY, Weather(), seed, scale=scale)
    el = time.perf_counter() - t0
    if timed_core:
        centre_day.core_share = core_time / el  # type: ignore[attr-defined]
    return len(r.visits), r.operations, el


def bare_day(args: tuple[int, float, bool]) -> tuple[int, int, float]:
    """The same residents and service draws through a bare SimPy M/G/c model."""
    seed, visits, _ = args
    catalog = _catalog()
    eng = Engine(catalog, layout("comprehensive", catalog, _windows(visits)), clerk_seed=seed)
    vs = eng.visits_for(DAY, Weather(), seed, visits / eng.arrivals.base_daily)
    clerk, svc, items = eng.clerks[1], eng.service, catalog.items
    t0 = time.perf_counter()
    env = simpy.Environment(initial_time=vs[0].at if vs else 0.0)
    windows = simpy.Resource(env, capacity=_windows(visits))
    events = 0

    def resident(v):  # type: ignore[no-untyped-def]
        nonlocal events
        with windows.request() as req:
            yield req
            yield env.timeout(svc.walk(v.z[2]))
            yield env.timeout(svc.seconds(items[v.item], v.z[0], clerk))
            events += 3

    def arrivals():  # type: ignore[no-untyped-def]
        for v in vs:
            if v.at > env.now:
                yield env.timeout(v.at - env.now)
            env.process(resident(v))

    env.process(arrivals())
    env.run()
    return len(vs), events, time.perf_counter() - t0


def city(fn, centres: int, visits: float, procs: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    jobs = [(seed, visits, False) for seed in range(centres)]
    t0 = time.perf_counter()
    if procs > 1:
        with Pool(procs) as pool:
            out = pool.map(fn, jobs, chunksize=max(1, centres // (procs * 8)))
    else:
        out = [fn(j) for j in jobs]
    return sum(o[0] for o in out), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--centres", type=int, default=220)
    ap.add_argument("--visits", type=float, default=2000)
    ap.add_argument("--one", type=float, default=3000, help="visits of the one-centre day")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="cProfile the one-centre day")
    a = ap.parse_args()
    console = Console(width=120)
    t = Table(title="onewindow sim: simulated visits per second (real core unless 'bare')")
    for col in ("run", "visits", "core ops", "seconds", "visits/s", "target"):
        t.add_column(col, justify="left" if col in ("run", "target") else "right")
    n, ops, el = centre_day((1, a.one, True))
    share = getattr(centre_day, "core_share", 0.0)
    t.add_row(f"one centre's day, {_windows(a.one)} windows", f"{n}", f"{ops}", f"{el:.2f}",
              f"{n / el:,.0f}", f"< 1 s ({'met' if el < 1 else 'missed'}); "
              f"{share:.0%} of it in Centre.apply")
    n, _, el = bare_day((1, a.one, False))
    t.add_row("  same day, bare SimPy", f"{n}", "—", f"{el:.2f}", f"{n / el:,.0f}", "")
    n, el = city(centre_day, a.centres, a.visits, a.procs)
    t.add_row(f"city day: {a.centres} centres × ~{a.visits:.0f}, {a.procs} procs", f"{n}", "",
              f"{el:.1f}", f"{n / el:,.0f}",
              f"< 30 s ({'met' if el < 30 else 'missed'})" if a.centres == 220 else "")
    n, el = city(bare_day, a.centres, a.visits, a.procs)
    t.add_row("  same city, bare SimPy", f"{n}", "—", f"{el:.1f}", f"{n / el:,.0f}", "")
    console.print(t)
    if a.profile:
        cProfile.runctx("centre_day((1, a.one, False))", globals(), locals(), "/tmp/bench_sim.prof")
        pstats.Stats("/tmp/bench_sim.prof").sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
