"""Evaluate the wait predictor on simulated days it was not tuned on.

    python -m onewindow.hub.forecast.evaluate_wait [--days 10] [--first-seed 100]

At each ticket's issue, every estimator's prediction is recorded; the actual wait is the
time from issue to the ticket's first call. Two settings:

* the centre simulator (`hub/sim`): the real core, mixed layout, lognormal per-item service,
  priority residents, appointments, no-shows, lunch and breaks; estimators: this predictor
  (`mc`), the naive one (people ahead x mean occupancy / eligible windows) and the
  head-of-line delay (`hol`);
* plain M/M/s (Poisson arrivals, exponential service, identical servers) driven through the
  real core with one item, where the queue-length oracle (knows the true rate: (k+1)/(s mu)
  with k waiting ahead when all servers are busy, else 0) is the reference for relative MSE.

The predictor is driven as the hub drives it: takes are placed into the standing forecast,
which the hub's loop simulates again in the background (hub/forecast/refresh.py) whenever it
turns stale; a centre's operations come seconds apart, so between two of them every refresh
that fell due has run (`Background`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import math
import random
from dataclasses import dataclass, field, fields

import numpy as np

from ..core import commands as c
from ..core.catalog import Catalog
from ..core.centre import Centre
from ..core.centre_config import CentreConfig, WindowSpec
from ..core.effects import TicketIssued
from ..sim.engine import Engine
from ..sim.model import Weather
from ..sim.policies import layout
from .refresh import WaitRefresher
from .wait import REFRESH_AGE, Forecast, Refresh, WaitPredictor


@dataclass(slots=True)
class Rows:
    """One row per ticket: predictions at issue, then the actual wait (minutes)."""

    pred: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> estimator -> min
    actual: dict[str, float] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        ids = [k for k in self.pred if k in self.actual]
        names = next(iter(self.pred.values())).keys() if self.pred else ()
        out = {n: np.array([self.pred[k][n] for k in ids]) for n in names}
        out["actual"] = np.array([self.actual[k] for k in ids])
        return out


class Background:
    """The hub's background refresh (hub/forecast/refresh.py) on the simulated clock: the
    hub's loop is idle between two operations seconds apart, so by the next one every
    refresh that fell due has run: the one an operation made due, at once on the state after
    it, then one every REFRESH_AGE while nothing happens (only the last of those counts: the
    same state, later).

    Cheaper than it reads: a refresh is begun (the state read) and landed where the hub
    would run it, but its paths are drawn only if a take reads it before a newer one lands
    (`eager` runs each one through the hub's refresher instead; the numbers are the same,
    hub/tests/test_wait_refresh.py)."""

    def __init__(self, waits: WaitPredictor, centre: Centre, eager: bool = False) -> None:
        self.waits, self.centre, self.pos = waits, centre, 0
        self.eager = eager
        self.t = 0.0
        self.refresher = WaitRefresher(self, lambda: self.t)
        self.last: float | None = None
        self._pending: tuple[Forecast, Refresh] | None = None

    def before(self, now: float, pos: int, reads: bool = True) -> None:
        """Called before an operation at `now` that will be position `pos` + 1 (`reads`:
        it asks the predictor, a take)."""
        if self.last is not None:
            self.t, self.pos = self.last, pos
            self._run()
            at = self.waits.refresh_at()
            if at <= now:
                self.t = max(self.last, at + REFRESH_AGE * math.floor((now - at) / REFRESH_AGE))
                self._run()
        self.last = now
        if reads and self._pending is not None:
            shell, r = self._pending
            self._pending = None
            try:
                while True:
                    next(r.steps)
            except StopIteration as done:
                for f in fields(Forecast):
                    setattr(shell, f.name, getattr(done.value, f.name))

    def _run(self) -> None:
        if self.eager:
            self.refresher.run_pending()
            return
        waits = self.waits
        if waits.refresh_due(self.centre, self.t):
            r = waits.refresh(self.centre, self.t, self.pos)
            # Landed as a shell (what `refresh_due` and `usable` read is right), filled in
            # if a take reads it.
            shell = Forecast(self.t, {}, np.empty((0, 0)), {}, r.day, (r.version, self.t))
            landed = waits.land(r, shell, self.centre)
            assert landed, "nothing happened since it began"
            self._pending = (shell, r)


class _Engine(Engine):
    def __init__(self, *a, predictor: WaitPredictor, rows: Rows, eager: bool = False,  # type: ignore[no-untyped-def]
                 **kw) -> None:
        super().__init__(*a, **kw)
        self.pred, self.rows = predictor, rows
        self.background = Background(predictor, self.centre, eager)

    def apply(self, cmd, now, dev=None):  # type: ignore[no-untyped-def]
        self.background.centre = self.centre
        self.background.before(now, self.operations, cmd.op == "take")
        effects = super().apply(cmd, now, dev)
        self.pred.update(self.centre, now, cmd.op)
        for e in effects:
            if isinstance(e, TicketIssued) and not e.reprint:
                record(self.pred, self.centre, self.centre.tickets[e.ticket], now,
                       self.operations, self.rows)
        return effects


def record(pred: WaitPredictor, centre: Centre, t, now: float, version: int,  # type: ignore[no-untyped-def]
           rows: Rows, oracle: float | None = None) -> None:
    est = pred.predict(centre, t, now, version)
    if not est.reachable:
        return
    pred.issued(t, est)
    row = {"mc": est.median, "mc_mean": est.mean, "lo": est.lo, "hi": est.hi,
           "naive": pred.naive(centre, t, now), "hol": pred.hol_delay(centre, t)}
    if oracle is not None:
        row["oracle"] = oracle
    rows.pred[t.id] = row


def actual_waits(tickets, rows: Rows) -> None:  # type: ignore[no-untyped-def]
    for t in tickets:
        first = next((ts for ts, s, _ in t.history if s == "called"), None)
        if first is not None and t.id in rows.pred:
            rows.actual[t.id] = (first - t.issued_at) / 60.0


def centre_days(catalog: Catalog, seeds: list[int], windows: int = 8,
                layout_name: str = "mixed", start: dt.date = dt.date(2026, 3, 2),
                warmup: int = 1, eager: bool = False) -> Rows:
    """Consecutive working days (seed k on day k), one predictor learning throughout, as a
    running hub does; the first `warmup` days (seeds -1, -2, ... of the first) are not
    scored: a fresh hub's first day is its cold start."""
    rows, scratch = Rows(), Rows()
    eng = _Engine(catalog, layout(layout_name, catalog, windows),
                  predictor=WaitPredictor(), rows=scratch, eager=eager)
    d = start
    for k, seed in enumerate([seeds[0] - 1 - i for i in range(warmup)] + seeds):
        while d.weekday() >= 5:
            d += dt.timedelta(days=1)
        eng.rows = scratch if k < warmup else rows
        rain = random.Random(seed).random() < 0.3
        day = eng.run_day(d, Weather(rain=rain), seed=seed)
        actual_waits(day.tickets.values(), eng.rows)
        d += dt.timedelta(days=1)
    return rows


MMS_CATALOG = {
    "version": 1, "centre_name": {"zh": "M/M/s", "en": "M/M/s"},
    "window_kinds": [{"id": "comprehensive", "zh": "综合", "en": "comprehensive"}],
    "lines": [{"id": "x", "zh": "x", "en": "x", "prefix": "A"}],
    "items": [{"id": "X", "line": "x", "zh": "x", "en": "x", "kind": "instant",
               "promised_days": 0, "minutes": 5, "weight": 1.0,
               "window_kinds": ["comprehensive"], "materials": [], "related": []}],
}


def mms(seed: int, servers: int = 4, rho: float = 0.9, mean_minutes: float = 5.0,
        hours: float = 8.0, eager: bool = False) -> Rows:
    """Plain M/M/s through the real core (instant walk, no wrap-up): estimators vs oracle."""
    rng = random.Random(f"mms:{seed}")
    centre = Centre(Catalog.from_dict(MMS_CATALOG),
                    CentreConfig("mms", tuple(WindowSpec(n + 1) for n in range(servers))))
    t0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    pred = WaitPredictor(wrap_seconds=0.0, seed=seed)
    background = Background(pred, centre, eager)
    rows, ops = Rows(), 0
    mu = 1.0 / (mean_minutes * 60.0)
    lam = rho * servers * mu
    for n in range(servers):
        centre.apply(c.OpenWindow(n + 1, "k"), t0)
    events: list[tuple[float, int, str, int]] = []  # (time, tie, kind, window)
    tie = 0
    heapq.heappush(events, (t0 + rng.expovariate(lam), tie, "arrive", 0))
    idle = set(range(1, servers + 1))
    end = t0 + hours * 3600

    def start(n: int, now: float) -> None:
        nonlocal tie, ops
        centre.apply(c.CallNext(n, ), now)
        centre.apply(c.Start(n), now)
        ops += 2
        tie += 1
        heapq.heappush(events, (now + rng.expovariate(mu), tie, "done", n))

    while events:
        now, _, kind, n = heapq.heappop(events)
        background.before(now, ops, kind == "arrive")
        if kind == "arrive":
            effects = centre.apply(c.TakeTicket("X"), now)
            ops += 1
            t = centre.tickets[next(e.ticket for e in effects if isinstance(e, TicketIssued))]
            k = len(centre.queue) - 1
            oracle = (k + 1) / (servers * mu) / 60.0 if not idle else 0.0
            pred.update(centre, now, "take")
            record(pred, centre, t, now, ops, rows, oracle)
            if idle:
                start(min(idle), now)
                idle.discard(min(idle))
            if now < end:
                tie += 1
                heapq.heappush(events, (now + rng.expovariate(lam), tie, "arrive", 0))
        else:
            centre.apply(c.Complete(n), now)
            ops += 1
            pred.update(centre, now, "complete")
            if len(centre.queue):
                start(n, now)
            else:
                idle.add(n)
        pred.update(centre, now, "call" if kind == "done" else "take")
    actual_waits(centre.tickets.values(), rows)
    return rows


def merge(parts: list[Rows]) -> Rows:
    out = Rows()
    for i, p in enumerate(parts):
        out.pred.update({f"{i}:{k}": v for k, v in p.pred.items()})
        out.actual.update({f"{i}:{k}": v for k, v in p.actual.items()})
    return out


def scores(rows: Rows) -> dict[str, float]:
    a = rows.arrays()
    y = a["actual"]
    out: dict[str, float] = {"n": float(len(y)), "mean_wait": float(y.mean())}
    for name in ("mc", "mc_mean", "naive", "hol", "oracle"):
        if name in a:
            out[f"mae_{name}"] = float(np.abs(a[name] - y).mean())
            out[f"mse_{name}"] = float(((a[name] - y) ** 2).mean())
    out["coverage"] = float(((a["lo"] <= y + 1e-9) & (y <= a["hi"] + 1e-9)).mean())
    out["width"] = float((a["hi"] - a["lo"]).mean())
    return out


def main(argv: list[str] | None = None) -> None:
    from ..catalog import load_catalog

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--windows", type=int, default=8)
    args = ap.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.days))
    catalog = load_catalog()
    print(f"Wait prediction, {args.days} simulated days (seeds {seeds[0]}-{seeds[-1]}, after "
          f"one unscored warm-up day), mixed layout, {args.windows} windows")
    s = scores(centre_days(catalog, seeds, args.windows))
    print(f"tickets {int(s['n'])}, mean actual wait {s['mean_wait']:.1f} min")
    print("| estimator | MAE (min) | vs naive | 80% interval coverage | mean width (min) |")
    print("|---|---|---|---|---|")
    for name, label in (("mc", "Monte-Carlo median (ours)"), ("mc_mean", "Monte-Carlo mean"),
                        ("naive", "naive (ahead x mean / windows)"), ("hol", "head-of-line")):
        cov = f"{s['coverage']:.1%}" if name == "mc" else "-"
        width = f"{s['width']:.1f}" if name == "mc" else "-"
        print(f"| {label} | {s['mae_' + name]:.2f} | "
              f"{s['mae_' + name] / s['mae_naive'] - 1:+.0%} | {cov} | {width} |")
    print()
    print("M/M/s (exponential service 5 min, Poisson arrivals), relative MSE vs the oracle:")
    print("| servers | load | tickets | oracle MSE | MC mean / oracle | MC median / oracle "
          "| HOL / oracle | MC coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for servers, rho in ((4, 0.9), (8, 0.95)):
        m = scores(merge([mms(seed, servers, rho) for seed in seeds]))
        print(f"| {servers} | {rho} | {int(m['n'])} | {m['mse_oracle']:.1f} | "
              f"{m['mse_mc_mean'] / m['mse_oracle']:.2f} | {m['mse_mc'] / m['mse_oracle']:.2f} | "
              f"{m['mse_hol'] / m['mse_oracle']:.2f} | {m['coverage']:.1%} |")


if __name__ == "__main__":
    main()
