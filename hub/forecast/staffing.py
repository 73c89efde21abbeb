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
import time
from dataclasses import dataclass, field

from ..core.catalog import COMPREHENSIVE, Catalog
from ..sim.engine import CLOSE, LUNCH, LUNCH_MINUTES, OPEN, SLOT_SECONDS, DayOptions, Engine
from ..sim.metrics import (
    QUEUE_LIMIT,
    DayResult,
    first_call,
    hall_series,
    percentile,
    timed_stats,
)
from ..sim.model import ResidentModel, at_local, calendar_sets, midnight, poisson
from ..sim.policies import Layout, layout
from ..sim.service import ServiceModel
from .admission import can_serve

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
    """Which windows are staffed first: one of each specialised kind, then the others
    interleaved so that any number of staffed windows keeps each kind's share of the
    layout (a day staffing 50 of 52 comprehensive + 4 card + 4 cash windows opens 3-4 of
    each specialised kind, not one)."""
    by_kind: dict[str, list[int]] = {}
    for w in lay.config.windows:
        by_kind.setdefault(w.kind, []).append(w.number)
    first = [ns[0] for k, ns in by_kind.items() if k != COMPREHENSIVE]
    rest: list[tuple[float, int]] = []
    total = len(lay.config.windows)
    for k, ns in by_kind.items():
        skip = 0 if k == COMPREHENSIVE else 1
        for i, n in enumerate(ns[skip:], start=skip):
            rest.append(((i + 0.5) / len(ns) * total, n))
    return tuple(first + [n for _, n in sorted(rest)])


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def lunch_share(slots: list[str], lunches: dict[int, tuple[dt.time, float]] | None = None,
                windows: list[int] | None = None) -> list[float]:
    """Per planning half-hour, the expected share of the staffed windows' time their clerks
    spend at lunch: the engine's usual staggered lunch (half the windows from LUNCH[0], half
    from LUNCH[1], up to 10 minutes later, LUNCH_MINUTES long), or the day's own
    (`lunches`: window -> (start, minutes), over `windows`, the windows that may be staffed;
    an empty dict: no lunch)."""
    out = []
    for label in slots:
        a = _minutes(label)
        b = a + SLOT_SECONDS / 60
        if lunches is None:
            tot = 0.0
            for start in LUNCH:
                m0 = start.hour * 60 + start.minute
                tot += sum(_overlap(a, b, m0 + u, m0 + u + LUNCH_MINUTES)
                           for u in range(11)) / 11
            out.append(tot / 2 / (b - a))
        else:
            nums = windows if windows is not None else list(lunches)
            if not nums:
                out.append(0.0)
                continue
            tot = 0.0
            for n in nums:
                if n in lunches:
                    t, mins = lunches[n]
                    m0 = t.hour * 60 + t.minute
                    tot += _overlap(a, b, m0, m0 + mins)
            out.append(tot / len(nums) / (b - a))
    return out


def max_rate(n: int, s: float, target: float, least: int = 1) -> float:
    """The most arrivals per minute `n` windows take with the plan's targets (Erlang C)."""
    if n < least:
        return 0.0
    lo, hi = 0.0, n / s
    for _ in range(40):
        mid = (lo + hi) / 2
        if erlang_windows(mid, s, target, least=least) <= n:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(slots=True)
class SlotCheck:
    """One planning half-hour as simulated (pooled over the seeds)."""

    p90_wait: float  # minutes, of the tickets taken in it
    share_over: float  # of its time the queue was over 3 per open window in some pool
    tickets: int
    median_wait: float = 0.0
    hall_mean: float = 0.0  # people waiting in the hall, time-weighted mean
    hall_max: float = 0.0  # ... the most at once (mean over seeds)
    on_duty: float = 0.0  # windows open with their clerk there (not at lunch), mean
    special_p90: float | None = None  # p90 wait of the specialised items' tickets
    general_p90: float | None = None  # ... of the others'
    backlog: float = 0.0  # people waiting in the hall at its start (mean over seeds)
    special_tickets: int = 0  # the specialised items' tickets taken in it (all seeds)

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
    # the plan's targets and what the day allows
    target: float = 20.0
    service_minutes: float = 0.0
    lunch: list[float] = field(default_factory=list)  # share of staffed time at lunch
    cap: int | None = None  # the centre's windows (None: as many as needed)
    expected_total: float = 0.0  # residents forecast for the day
    capacity: int | None = None  # residents `cap` windows can call before closing
    seconds: float = 0.0  # how long the plan took

    @property
    def window_hours(self) -> float:
        return sum(self.windows) * SLOT_SECONDS / 3600.0

    @property
    def missed(self) -> list[int]:
        return [k for k, c in enumerate(self.checks) if not c.met(self.target)]

    @property
    def to_rebook(self) -> int:
        """Residents beyond what the centre's windows can call before closing (admission
        control's `can_serve`, the same windows and minutes per resident): to book onto
        other days. 0 when the day fits or the windows are not capped."""
        if self.capacity is None:
            return 0
        return max(0, math.ceil(self.expected_total - self.capacity))

    def peak_excess(self) -> dict[int, int]:
        """At the cap: per half-hour that misses, the residents above what all the windows
        take within the targets (Erlang C, lunch counted): to move to quieter half-hours or
        other days."""
        if self.cap is None:
            return {}
        out = {}
        for k in self.missed:
            r = self.rates[k]
            if r is None or self.windows[k] < self.cap:
                continue
            m = math.floor(self.cap * (1 - self.lunch[k]))
            most = max_rate(m, self.service_minutes, self.target) * SLOT_SECONDS / 60
            extra = math.ceil(r * SLOT_SECONDS / 60 - most)
            if extra > 0:
                out[k] = extra
        return out

    def specialised_late(self, least: int = 5) -> dict[int, str]:
        """Half-hours that meet the targets as a whole while the specialised items' tickets
        (card, cash, pick-up: only their windows serve them) do not: p90 over the target, of
        at least `least` such tickets."""
        out = {}
        for k, c in enumerate(self.checks):
            if (c.met(self.target) and c.special_p90 is not None
                    and c.special_p90 > self.target and c.special_tickets >= least):
                out[k] = (f"specialised items: p90 {c.special_p90:.0f} min at their windows "
                          f"({c.special_tickets} tickets), {c.general_p90 or 0:.0f} min for "
                          "the others")
        return out

    def reasons(self) -> dict[int, str]:
        """Why each half-hour that misses the targets misses them (the last round's check)."""
        out: dict[int, str] = {}
        for k in self.missed:
            c, w = self.checks[k], self.windows[k]
            why = []
            if self.cap is not None and w >= self.cap:
                why.append(f"all {self.cap} windows staffed")
            if c.on_duty < w - max(1.0, 0.12 * w):
                why.append(f"{'lunch breaks' if self.lunch[k] > 0 else 'breaks'}: "
                           f"{c.on_duty:.1f} of {w} windows on duty")
            if c.special_p90 is not None and c.special_p90 > self.target and (
                    c.general_p90 is None or c.general_p90 <= self.target
                    or c.special_p90 >= 1.5 * c.general_p90):
                why.append(f"specialised items: p90 {c.special_p90:.0f} min at their "
                           f"windows, {c.general_p90 or 0:.0f} min for the others")
            per_target = w * self.target / max(self.service_minutes, 1e-9)
            if k > 0 and c.backlog > 0.5 * per_target:
                why.append(f"backlog: {c.backlog:.0f} waiting at {self.slots[k]}")
            if not why or (self.cap is not None and w >= self.cap):
                r = self.rates[k] or 0.0
                why.append(f"{r * SLOT_SECONDS / 60:.0f} arrivals for {w} windows")
            out[k] = "; ".join(why)
        return out


def _step_at(series: list[tuple[float, int]], t: float) -> int:
    v = 0
    for ts, x in series:
        if ts > t:
            break
        v = x
    return v


def slot_checks(results: list[DayResult], d: dt.date, slots: list[str],
                catalog: Catalog | None = None) -> list[SlotCheck]:
    """Per planning half-hour, pooled over seeds: waits (minutes) of the tickets taken in it
    (before opening: the first; a resident who came before the windows opened waits from the
    opening), share of its time the queue was over 3 per open window, people waiting in the
    hall, windows on duty, the specialised items' waits apart."""
    open_at = at_local(d, dt.time.fromisoformat(slots[0]))
    n = len(slots)
    waits: list[list[float]] = [[] for _ in range(n)]
    special: list[list[float]] = [[] for _ in range(n)]
    general: list[list[float]] = [[] for _ in range(n)]
    over = [0.0] * n
    hall_mean = [0.0] * n
    hall_max = [0.0] * n
    duty = [0.0] * n
    backlog = [0.0] * n
    spec = {i.id for i in catalog.items.values() if i.specialised} if catalog else set()
    for r in results:
        for t in r.tickets.values():
            fc = first_call(t)
            k = min(n - 1, max(0, int((t.issued_at - open_at) // SLOT_SECONDS)))
            w = ((fc if fc is not None else r.closed) - max(t.issued_at, open_at)) / 60.0
            waits[k].append(w)
            (special if t.item in spec else general)[k].append(w)
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
        hall = hall_series(r.monitor)
        wins_s = [(ts, wins) for ts, _, wins in series]
        for k in range(n):
            a = open_at + k * SLOT_SECONDS
            b = a + SLOT_SECONDS
            mean, _, _, most = timed_stats(hall, a, b)
            hall_mean[k] += mean
            hall_max[k] += most
            duty[k] += (timed_stats(wins_s, a, b)[0]
                        - timed_stats(r.monitor.breaks, a, b)[0])
            backlog[k] += _step_at(hall, a)
    m = max(1, len(results))
    return [SlotCheck(percentile(w, 90), over[k] / (SLOT_SECONDS * m), len(w),
                      median_wait=percentile(w, 50), hall_mean=hall_mean[k] / m,
                      hall_max=hall_max[k] / m, on_duty=duty[k] / m,
                      special_p90=percentile(special[k], 90) if special[k] else None,
                      general_p90=percentile(general[k], 90) if general[k] else None,
                      backlog=backlog[k] / m, special_tickets=len(special[k]))
            for k, w in enumerate(waits)]


def simulate(catalog: Catalog, lay: Layout, d: dt.date, arrival_slots: list[str],
             expected: list[float], schedule: list[int], seeds: int,
             lunches: dict[int, tuple[dt.time, float]] | None = None,
             order: tuple[int, ...] | None = None,
             residents: ResidentModel | None = None) -> list[DayResult]:
    out = []
    order = order or staff_order(lay)
    for seed in range(seeds):
        eng = Engine(catalog, lay, clerk_seed=seed, residents=residents)
        rng = random.Random(f"plan:{seed}:{d.isoformat()}")
        times: list[float] = []
        for label, lam in zip(arrival_slots, expected, strict=True):
            t0 = _minutes(label) * 60
            k = poisson(rng, lam)
            times.extend(t0 + rng.random() * 1800 for _ in range(k))
        times.sort()
        visits = eng.population.visits(times, rng, midnight(d))
        out.append(eng.run_day(d, seed=seed, visits=visits, options=DayOptions(
            schedule=tuple(schedule), staff_order=order, lunches=lunches)))
    return out


def capacity(windows: int, d: dt.date, service_minutes: float,
             lunch_minutes: float = LUNCH_MINUTES) -> int:
    """Residents `windows` windows can call from opening to closing, each losing its lunch:
    admission control's `can_serve` (hub/forecast/admission.py) at the opening, every window
    free after its lunch's length, `service_minutes` per resident."""
    open_ts, close_ts = at_local(d, OPEN), at_local(d, CLOSE)
    return can_serve(open_ts, close_ts, [open_ts + lunch_minutes * 60] * windows,
                     service_minutes * 60)


def plan_day(catalog: Catalog, d: dt.date, arrival_slots: list[str], expected: list[float], *,
             target: float = 20.0, seeds: int = 3, max_rounds: int = 8,
             layout_name: str = "mixed", service_minutes: float | None = None,
             first_cut: list[int] | None = None, max_windows: int | None = None,
             lay: Layout | None = None,
             lunches: dict[int, tuple[dt.time, float]] | None = None,
             residents: ResidentModel | None = None) -> DayPlan:
    """The windows per half-hour for one open day (see the module docstring). `lay`: the
    centre's own windows (at most all of them are staffed, in `staff_order`); else
    `layout_name` with as many windows as needed, at most `max_windows` when given.
    `lunches`: the day's own lunch breaks (DayOptions.lunches); `residents`: the day's mix
    of items (a scenario's [arrivals.lines])."""
    started = time.perf_counter()
    slots = plan_slots()
    s = service_minutes or handling_minutes(catalog, residents)
    rates = window_rates(arrival_slots, expected, slots)
    cap = len(lay.config.windows) if lay is not None else max_windows
    probe = lay or layout(layout_name, catalog, 12)
    least = 1 + len({w.kind for w in probe.config.windows if w.kind != COMPREHENSIVE})
    if cap is not None:
        least = min(least, cap)
    order = staff_order(probe) if lay is not None else None
    share = lunch_share(slots, lunches, list(order) if order else None)
    erl: list[int] = []
    for r in rates:
        erl.append(erl[-1] if r is None and erl else
                   erlang_windows(r or 0.0, s, target, least=least))
    beta = [sqrt_beta(n, (r or 0.0) * s) for n, r in zip(erl, rates, strict=True)]
    # staffed windows: enough that those not at lunch are the Erlang number
    staffed = [max(n, math.ceil(n / (1 - x))) if x < 0.9 else n for n, x in zip(
        erl, share, strict=True)]
    windows = list(first_cut or staffed)
    if cap is not None:
        windows = [min(cap, w) for w in windows]
    hol, work = calendar_sets(d - dt.timedelta(days=7), d + dt.timedelta(days=30))
    plan = DayPlan(d, slots, rates, list(erl), windows, beta, target=target,
                   service_minutes=s, lunch=share, cap=cap,
                   expected_total=sum(expected))
    if cap is not None:
        lunch_len = (LUNCH_MINUTES if lunches is None else
                     sum(m for _, m in lunches.values()) / max(1, cap))
        plan.capacity = capacity(cap, d, s, lunch_len)
    def check(schedule: list[int]) -> tuple[list[SlotCheck], float, float]:
        nonlocal lay
        need = max(schedule)
        if lay is None or (cap is None and len(lay.config.windows) < need + 2):
            lay = layout(layout_name, catalog, cap if cap is not None else need + 4,
                         holidays=hol, workdays=work)
        results = simulate(catalog, lay, d, arrival_slots, expected, schedule, seeds,
                           lunches, order, residents)
        opened = at_local(d, OPEN)
        waits = [(first_call(t) or r.closed) - max(t.issued_at, opened) for r in results
                 for t in r.tickets.values()]
        return (slot_checks(results, d, slots, catalog), percentile(waits, 90) / 60.0,
                sum(waits) / len(waits) / 60.0 if waits else 0.0)

    first = list(windows)
    for rnd in range(max_rounds + 1):
        checks, plan.p90_wait, plan.mean_wait = check(windows)
        plan.checks, plan.rounds = checks, rnd
        miss = [not c.met(target) for c in checks]
        plan.met = not any(miss)
        if plan.met or rnd == max_rounds:
            break
        grew = False
        capped_run = False  # in a run of misses that already has every window staffed
        for k, bad in enumerate(miss):
            if not bad:
                capped_run = False
                continue
            if capped_run and cap is not None:
                # the backlog of a half-hour at the cap: every window until it clears
                grew = grew or windows[k] < cap
                windows[k] = cap
                continue
            if cap is not None and windows[k] >= cap:
                capped_run = True
                continue
            # more where the run of missing half-hours starts (the queue builds there)
            step = max(1, math.ceil(0.05 * windows[k]))
            if k == 0 or not miss[k - 1]:
                step *= 2
            if k > 0 and not miss[k - 1] and checks[k].backlog > QUEUE_LIMIT * windows[k - 1]:
                windows[k - 1] += step // 2
            new = windows[k] + step if cap is None else min(cap, windows[k] + step)
            grew = grew or new > windows[k]
            windows[k] = new
            capped_run = cap is not None and new >= cap
        if cap is not None:
            windows = [min(cap, w) for w in windows]
        if not grew:  # every half-hour that misses has all the windows already
            break
    # Windows added for a backlog that has cleared: back to the first cut where a half-hour
    # met the targets and started with little waiting, kept if no other half-hour misses.
    if windows != first and first_cut is None:
        trial = list(windows)
        for k, c in enumerate(plan.checks):
            light = c.backlog <= 0.25 * windows[k] * target / max(s, 1e-9)
            if c.met(target) and light and trial[k] > first[k] and (
                    k == 0 or plan.checks[k - 1].met(target)):
                trial[k] = first[k]
        if trial != windows:
            before = set(plan.missed)
            got, p90, mean = check(trial)
            after = {k for k, c in enumerate(got) if not c.met(target)}
            if after <= before:
                windows, plan.checks, plan.p90_wait, plan.mean_wait = trial, got, p90, mean
                plan.met = not after
    plan.windows = windows
    plan.seconds = time.perf_counter() - started
    return plan
