"""Windows per half-hour: Erlang C with square-root staffing, then checked by simulation.

1. First cut, per half-hour the windows are open (09:00-17:00): the offered load is
   a = lambda x s erlangs, lambda the forecast arrivals per minute (residents who come before
   the windows open are spread over the first hour; the half-hour after the last ticket
   keeps the windows of the one before, to clear the queue), s the mean minutes a window
   spends per resident (`handling_minutes`: the catalog's item mix weighted as residents ask
   for it, ServiceModel's lognormal means, a second item, missing materials, the walk to the
   window, wrap-up, no-shows). The windows are the fewest n > a with, in M/M/n (Erlang C),
   P(wait <= target) >= 90% and the mean queue at most 3 per window; n = a + beta x sqrt(a)
   is the square-root staffing rule and beta is reported.
2. Check: the hub/sim Engine runs the forecast day (Poisson arrivals from the forecast, drawn
   as the simulator draws them) with that schedule on the real core and the centre's skill mix
   (mixed layout: specialised card and cash windows, lunch breaks, no-shows, per-clerk speed)
   for a few seeds. A half-hour misses when the 90th percentile wait of the tickets taken in
   it is over the target or the queue is above 3 per open window more than 10% of its time
   (a resident who came before the windows opened waits from the opening); one window is
   added at the start of each run of missing half-hours and the day is simulated again,
   until none miss.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass, field

from ..core.catalog import COMPREHENSIVE, Catalog
from ..sim.engine import CLOSE, OPEN, SLOT_SECONDS, DayOptions, Engine
from ..sim.metrics import QUEUE_LIMIT, DayResult, first_call, percentile
from ..sim.model import ResidentModel, at_local, calendar_sets, midnight, poisson
from ..sim.policies import Layout, layout
from ..sim.service import ServiceModel

LEVEL = 0.90  # share of waits within the target
SHARE_OVER = 0.10  # of a half-hour, the queue may be over 3 per window


# ---- Erlang C ------------------------------------------------------------------------------

def erlang_b(n: int, a: float) -> float:
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability an arrival waits in M/M/n with offered load a erlangs (1 if n <= a)."""
    if a <= 0:
        return 0.0
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def service_level(n: int, a: float, s: float, t: float) -> float:
    """P(wait <= t) in M/M/n; s the mean service time (same unit as t)."""
    if a <= 0:
        return 1.0
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * t / s)


def mean_queue(n: int, a: float) -> float:
    if a <= 0:
        return 0.0
    if n <= a:
        return math.inf
    return erlang_c(n, a) * a / (n - a)


def erlang_windows(rate: float, s: float, target: float, level: float = LEVEL,
                   queue: float = QUEUE_LIMIT, least: int = 1) -> int:
    """Fewest windows with P(wait <= target) >= level and mean queue <= `queue` per window;
    rate per minute, s and target in minutes."""
    a = rate * s
    n = max(least, math.floor(a) + 1)
    while service_level(n, a, s, target) < level or mean_queue(n, a) > queue * n:
        n += 1
    return n


def sqrt_beta(n: int, a: float) -> float:
    """The square-root staffing safety factor of n windows at load a: n = a + beta sqrt(a)."""
    return (n - a) / math.sqrt(a) if a > 0 else 0.0


def handling_minutes(catalog: Catalog, residents: ResidentModel | None = None,
                     service: ServiceModel | None = None) -> float:
    """Mean minutes a window spends per resident, from the catalog mix and the models."""
    r, s = residents or ResidentModel(), service or ServiceModel()
    items = list(catalog.items.values())
    weights = [r.popularity(i) for i in items]
    total = sum(weights)
    per_item = sum(w / total * s.mean_minutes(i) for w, i in zip(weights, items, strict=True))
    minutes = 0.0
    for w, i in zip(weights, items, strict=True):
        miss = r.missing_chance(i)
        served = s.mean_minutes(i) + r.second_item * 0.8 * per_item
        minutes += w / total * ((1 - miss) * served + miss * s.missing_minutes
                                * math.exp(0.3 ** 2 / 2))
    walk = s.walk_median * math.exp(s.walk_sigma ** 2 / 2)
    absent = r.no_show * 2 * s.absent_wait  # recall, then skip
    return minutes + (walk + s.wrap_up + absent) / 60.0


# ---- the plan for a day ----------------------------------------------------------------------

def plan_slots(open_at: dt.time = OPEN, close_at: dt.time = CLOSE) -> list[str]:
    t = dt.datetime.combine(dt.date(2000, 1, 1), open_at)
    end = dt.datetime.combine(dt.date(2000, 1, 1), close_at)
    out = []
    while t < end:
        out.append(t.strftime("%H:%M"))
        t += dt.timedelta(seconds=SLOT_SECONDS)
    return out


def _minutes(label: str) -> int:
    h, m = label.split(":")
    return int(h) * 60 + int(m)


def window_rates(arrival_slots: list[str], expected: list[float], plan: list[str]
                 ) -> list[float | None]:
    """Arrivals per minute in each planning half-hour (None: no arrivals, clear the queue)."""
    first = _minutes(plan[0])
    load = [0.0] * len(plan)
    seen = [False] * len(plan)
    for label, x in zip(arrival_slots, expected, strict=True):
        m = _minutes(label)
        if m < first:  # before the windows open: spread over the first hour
            for k in range(min(2, len(plan))):
                load[k] += x / min(2, len(plan))
                seen[k] = True
            continue
        k = (m - first) // 30
        if k < len(plan):
            load[k] += x
            seen[k] = True
    return [x / 30.0 if ok else None for x, ok in zip(load, seen, strict=True)]


def staff_order(lay: Layout) -> tuple[int, ...]:
    """Which windows are staffed first: one of each specialised kind, then the comprehensive
    windows, then the other specialised ones."""
    first, comp, rest, kinds = [], [], [], set()
    for w in lay.config.windows:
        if w.kind == COMPREHENSIVE:
            comp.append(w.number)
        elif w.kind not in kinds:
            kinds.add(w.kind)
            first.append(w.number)
        else:
            rest.append(w.number)
    return tuple(first + comp + rest)


@dataclass(slots=True)
class SlotCheck:
    p90_wait: float
    share_over: float
    tickets: int

    def met(self, target: float) -> bool:
        return self.p90_wait <= target and self.share_over <= SHARE_OVER


@dataclass(slots=True)
class DayPlan:
    date: dt.date
    slots: list[str]  # planning half-hours
    rates: list[float | None]  # arrivals per minute
    erlang: list[int]  # the first cut
    windows: list[int]  # after the simulation check
    beta: list[float]
    checks: list[SlotCheck] = field(default_factory=list)
    rounds: int = 0
    met: bool = True
    p90_wait: float = 0.0
    mean_wait: float = 0.0

    @property
    def window_hours(self) -> float:
        return sum(self.windows) * SLOT_SECONDS / 3600.0


def slot_checks(results: list[DayResult], d: dt.date, slots: list[str]) -> list[SlotCheck]:
    """Per planning half-hour, pooled over seeds: p90 wait (minutes) of the tickets taken in
    it (before opening: the first), share of its time the queue was over 3 per open window."""
    open_at = at_local(d, dt.time.fromisoformat(slots[0]))
    n = len(slots)
    waits: list[list[float]] = [[] for _ in range(n)]
    over = [0.0] * n
    for r in results:
        for t in r.tickets.values():
            fc = first_call(t)
            k = min(n - 1, max(0, int((t.issued_at - open_at) // SLOT_SECONDS)))
            waits[k].append(((fc if fc is not None else r.closed)
                             - max(t.issued_at, open_at)) / 60.0)
        series = r.monitor.series
        for (ts, waiting, wins), nxt in itertools.pairwise(series):
            if waiting <= QUEUE_LIMIT * max(1, wins):
                continue
            a, b = max(ts, open_at), nxt[0]
            while a < b:
                k = int((a - open_at) // SLOT_SECONDS)
                if k >= n:
                    break
                end = min(b, open_at + (k + 1) * SLOT_SECONDS)
                over[k] += end - a
                a = end
    m = max(1, len(results))
    return [SlotCheck(percentile(w, 90), over[k] / (SLOT_SECONDS * m), len(w))
            for k, w in enumerate(waits)]


def simulate(catalog: Catalog, lay: Layout, d: dt.date, arrival_slots: list[str],
             expected: list[float], schedule: list[int], seeds: int) -> list[DayResult]:
    out = []
    order = staff_order(lay)
    for seed in range(seeds):
        eng = Engine(catalog, lay, clerk_seed=seed)
        rng = random.Random(f"plan:{seed}:{d.isoformat()}")
        times: list[float] = []
        for label, lam in zip(arrival_slots, expected, strict=True):
            t0 = _minutes(label) * 60
            k = poisson(rng, lam)
            times.extend(t0 + rng.random() * 1800 for _ in range(k))
        times.sort()
        visits = eng.population.visits(times, rng, midnight(d))
        out.append(eng.run_day(d, seed=seed, visits=visits, options=DayOptions(
            schedule=tuple(schedule), staff_order=order)))
    return out


def plan_day(catalog: Catalog, d: dt.date, arrival_slots: list[str], expected: list[float], *,
             target: float = 20.0, seeds: int = 3, max_rounds: int = 8,
             layout_name: str = "mixed", service_minutes: float | None = None,
             first_cut: list[int] | None = None) -> DayPlan:
    """The windows per half-hour for one open day (see the module docstring)."""
    slots = plan_slots()
    s = service_minutes or handling_minutes(catalog)
    rates = window_rates(arrival_slots, expected, slots)
    probe = layout(layout_name, catalog, 12)
    least = 1 + len({w.kind for w in probe.config.windows if w.kind != COMPREHENSIVE})
    erl: list[int] = []
    for r in rates:
        erl.append(erl[-1] if r is None and erl else
                   erlang_windows(r or 0.0, s, target, least=least))
    beta = [sqrt_beta(n, (r or 0.0) * s) for n, r in zip(erl, rates, strict=True)]
    windows = list(first_cut or erl)
    hol, work = calendar_sets(d - dt.timedelta(days=7), d + dt.timedelta(days=30))
    plan = DayPlan(d, slots, rates, list(erl), windows, beta)
    lay = None
    for rnd in range(max_rounds + 1):
        need = max(windows)
        if lay is None or len(lay.config.windows) < need + 2:
            lay = layout(layout_name, catalog, need + 4, holidays=hol, workdays=work)
        results = simulate(catalog, lay, d, arrival_slots, expected, windows, seeds)
        checks = slot_checks(results, d, slots)
        plan.checks, plan.rounds = checks, rnd
        opened = at_local(d, OPEN)
        waits = [(first_call(t) or r.closed) - max(t.issued_at, opened) for r in results
                 for t in r.tickets.values()]
        plan.p90_wait = percentile(waits, 90) / 60.0
        plan.mean_wait = sum(waits) / len(waits) / 60.0 if waits else 0.0
        miss = [not c.met(target) for c in checks]
        plan.met = not any(miss)
        if plan.met or rnd == max_rounds:
            break
        for k, bad in enumerate(miss):
            if bad and (k == 0 or not miss[k - 1]):
                windows[k] += 1
    plan.windows = windows
    return plan
