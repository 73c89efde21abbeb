"""The Monte-Carlo of the waiting queue behind hub/forecast/wait.py: sample paths of when each
open window frees, the waiting tickets placed in dispatch order, and one more ticket placed
into a forecast already made (a take, in bounded time).

Pure (no I/O, no clock): the caller passes the centre, `now`, the learned model and the
random generator.

* `simulation` runs the whole queue, resumable: everything it reads of the centre is read
  before its first yield, so run in slices it gives the numbers of the state it started
  from, whatever happens between the slices; run in one go, the same numbers.
* `place` puts one ticket into a forecast: at the end of its order from `free` (the windows
  after everyone ahead), or before a given position from the checkpoint kept every CHECK
  tickets (`marks`) and the placements after it (`plan`): at most CHECK - 1 tickets placed
  again, whatever the queue's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from ..core.catalog import COMPREHENSIVE
from ..core.centre import Centre
from ..core.model import Priority, Ticket, WindowState
from ..core.policy import OrderingPolicy

INF = float("inf")
SLOT = 600.0  # s: time-of-day resolution of the learned capacity profile
SLOTS = int(86400 / SLOT)
# `free` is kept before every CHECK-th ticket of a forecast's order: placing a ticket before
# position k replays at most CHECK - 1 placements (~10 us each). Memory: paths x windows x 8
# bytes per checkpoint (48 KB at 200 paths and 30 windows; 63 of them with 1,000 waiting).
CHECK = 16

# One ticket's placement: the columns it may take, its occupancy per path (s), the capacity
# by time of day it is divided by (or that capacity when it is flat, None if not), and the
# time before which no window is free (None: the forecast's own start).
Step = tuple[np.ndarray, np.ndarray, np.ndarray, float | None, float | None]


@dataclass(slots=True)
class Forecast:
    """One simulated future of the queue: start time of each waiting ticket, per path."""

    now: float
    starts: dict[str, np.ndarray]
    free: np.ndarray  # (paths, windows): when each window frees after the whole queue
    cols: dict[int, int]  # window number -> column
    day: str = ""
    # (journal position, time) of the simulation this forecast is, or was extended from
    origin: tuple[int, float] = (0, 0.0)
    # What `place` needs: the tickets in the order they were placed, each one's placement,
    # `free` before every CHECK-th of them, and the local midnight of the day.
    order: list[str] = field(default_factory=list)
    plan: list[Step] = field(default_factory=list)
    marks: list[np.ndarray] = field(default_factory=list)
    midnight: float = 0.0


@dataclass(frozen=True, slots=True)
class Model:
    """What a simulation takes from the predictor, as it was when the simulation began
    (`mu` too: ServiceLearner.mus copies what it reads)."""

    paths: int
    wrap: float  # s after each service before the window calls again
    pause: float  # s: how long a paused window is expected to stay paused
    sigma: float  # log-scale spread of occupancies
    mu: Callable[[str, float], float]  # (item, standard minutes) -> log-seconds location
    capacity: tuple[np.ndarray, np.ndarray]  # (for normal tickets, for the others)


def _slots(ts: np.ndarray, midnight: float) -> np.ndarray:
    # np.clip's own overhead was a third of a placement's cost; the same integers.
    return np.minimum(np.maximum(((ts - midnight) / SLOT).astype(int), 0), SLOTS - 1)


_ROWS: dict[int, np.ndarray] = {}


def _rows(paths: int) -> np.ndarray:
    rows = _ROWS.get(paths)
    if rows is None:
        rows = _ROWS[paths] = np.arange(paths)
        rows.flags.writeable = False
    return rows


def midnight_of(centre: Centre, now: float) -> float:
    local = centre.local_time(now)
    return now - (local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6)


def called_at(t: Ticket) -> float | None:
    for ts, state, _w in reversed(t.history):
        if state == "called":
            return ts
    return None


def order_of(appointment: list[Ticket], priority: list[Ticket], normal: list[Ticket],
             now: float, policy: OrderingPolicy, streak: int) -> list[Ticket]:
    """The dispatch order of the queue's three lists (each in the WaitingQueue's order): due
    appointments, then priority and normal interleaved as the `ratio` policy does (after
    `ratio` priority tickets one normal), or with `aging` all priority first; an appointment
    outside its slot queues as normal (by arrival)."""
    due: list[Ticket] = []
    off: list[Ticket] = []
    early, grace = policy.appointment_early, policy.appointment_grace
    for u in appointment:  # by (appointment time, serial): the due ones' own order
        at = u.appointment_at
        (due if at is not None and at - early <= now <= at + grace else off).append(u)
    if off:
        normal = sorted(normal + off, key=lambda u: u.sort_key)
    if policy.mode != "ratio" or not priority or not normal:
        return due + priority + normal
    out = due
    i = j = 0
    while i < len(priority) and j < len(normal):
        if streak < policy.ratio:
            out.append(priority[i])
            i += 1
            streak += 1
        else:
            out.append(normal[j])
            j += 1
            streak = 0
    return out + priority[i:] + normal[j:]


def dispatch_order(centre: Centre, now: float) -> list[Ticket]:
    """The waiting tickets in the order the windows will likely call them (`order_of`)."""
    q = centre.queue
    return order_of(list(q.appointment), list(q.priority), list(q.normal), now, centre.policy,
                    centre.streak)


def own_window_kinds(centre: Centre) -> frozenset[str]:
    """The kinds of the specialised windows not closed: those serve their own items first
    (hub/core/serving.py `_pick`). O(windows)."""
    closed = WindowState.CLOSED
    return frozenset([w.kind for w in centre.windows.values()
                      if w.kind != COMPREHENSIVE and w.state is not closed])


def goes_first(centre: Centre, item: str, kinds: frozenset[str]) -> bool:
    """Whether tickets for `item` are placed before the others: a specialised item (no
    comprehensive window kind) that a specialised window of its own kind, not closed, serves
    first (`kinds`: `own_window_kinds`). A comprehensive window calls in plain dispatch
    order whatever the item, so where no such window is open (a comprehensive layout, whose
    windows serve every item) a specialised item's ticket waits its turn: placed first, it
    was predicted a few minutes where it waited an hour (on the tuning seeds, a quarter of
    the normal tickets predicted under 5 min with 5 or more waiting per window)."""
    it = centre.catalog.items.get(item)
    return it is not None and it.specialised and not kinds.isdisjoint(it.window_kinds)


def specialised_first(centre: Centre, order: list[Ticket]) -> list[Ticket]:
    """A specialised window serves its own items first: their tickets take it before any
    comprehensive ticket it might help with, so they are placed first (`goes_first`)."""
    kinds = own_window_kinds(centre)
    if not kinds:
        return order
    spec = {i for i in centre.catalog.items if goes_first(centre, i, kinds)}
    first = [u for u in order if u.item in spec]
    if not first:
        return order
    return first + [u for u in order if u.item not in spec]


# Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9).
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)


def ndtri(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    out = np.empty_like(p)
    lo, hi = p < 0.02425, p > 1 - 0.02425
    mid = ~(lo | hi)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
                / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1))
    for mask, sign in ((lo, 1.0), (hi, -1.0)):
        if mask.any():
            pp = p[mask] if sign > 0 else 1 - p[mask]
            q = np.sqrt(-2 * np.log(pp))
            out[mask] = sign * ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4])
                                 * q + _C[5])
                                / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1))
    return out


def put(free: np.ndarray, step: Step, midnight: float) -> np.ndarray:
    """Place one ticket (in place): on each path it takes the first of its windows to free
    and holds it for its occupancy over the capacity at that time of day. Its start times."""
    idx, occ, cap, flat, clip = step
    paths, ncols = free.shape
    if idx.size == 0:
        return np.full(paths, INF)
    rows = _rows(paths)
    if idx.size == ncols > 1:  # every open window may serve it: no subset copy
        col = free.argmin(axis=1)
        st = free[rows, col]
    elif idx.size == 1:
        col = idx[0]
        st = free[:, col].copy()
    else:
        sub = free[:, idx]
        a = sub.argmin(axis=1)
        st = sub[rows, a]
        col = idx[a]
    if clip is not None:  # a window the forecast had free before then is free then
        st = np.maximum(st, clip)
    free[rows, col] = st + (occ / flat if flat is not None else occ / cap[_slots(st, midnight)])
    return st


def columns(fc: Forecast, reach: frozenset[int]) -> np.ndarray:
    return np.array(sorted(fc.cols[n] for n in reach if n in fc.cols), dtype=int)


def place(fc: Forecast, tid: str, step: Step, before: int | None = None) -> np.ndarray:
    """Put ticket `tid` into `fc` (in place) with `step` (its columns in `fc`): at the end of
    the order (`before` None), or before position `before`. Its start times. Placed before
    others, it does not move them: their starts, `free` after the whole queue (which takes
    its occupancy where a last ticket would) and the later checkpoints are then approximate
    until the queue is simulated again; placed at the end, everything stays exact."""
    n = len(fc.order)
    if before is None or before >= n:
        if n % CHECK == 0 and len(fc.marks) * CHECK <= n:
            fc.marks.append(fc.free.copy())
        st = put(fc.free, step, fc.midnight)
        fc.order.append(tid)
        fc.plan.append(step)
    else:
        j = min(before // CHECK, len(fc.marks) - 1)
        free = fc.marks[j].copy()
        for k in range(j * CHECK, before):
            put(free, fc.plan[k], fc.midnight)
        st = put(free, step, fc.midnight)
        put(fc.free, step, fc.midnight)
        fc.order.insert(before, tid)
        fc.plan.insert(before, step)
    fc.starts[tid] = st
    return st


def simulation(centre: Centre, now: float, version: int, model: Model,
               rng: np.random.Generator, chunk: int = 1 << 30,
               fine: bool = False) -> Generator[None, None, Forecast]:
    """The forecast at (`version`, `now`), resumable: it yields after every `chunk` tickets
    placed, and with `fine` also after reading the state, after the windows' draws and
    after ordering the queue (so each step of a background refresh stays well under a
    millisecond). Everything read from
    `centre` is read before the first yield. Each open window is free now (idle), after its
    resident's remaining occupancy (drawn conditioned on the time already spent), or after
    its pause; the waiting tickets, in dispatch order (a specialised window's own items
    first), each take the first free window among those eligible for their item."""
    P, sigma = model.paths, model.sigma
    items = centre.catalog.items
    open_w = [w for w in sorted(centre.windows.values(), key=lambda w: w.number)
              if w.state is not WindowState.CLOSED]
    cols = {w.number: i for i, w in enumerate(open_w)}
    paused: list[tuple[int, float]] = []  # (column, mean seconds of pause left)
    busy: list[int] = []  # columns with a resident at the window, and for each:
    spent: list[float] = []  # seconds since the call
    mus: list[float] = []  # the occupancy's log-location
    f0s: list[float] = []  # the share of occupancies already over
    for i, w in enumerate(open_w):
        if w.state is WindowState.PAUSED:
            paused.append((i, max(60.0, model.pause - (now - w.since))))
            continue
        t = centre.tickets.get(w.ticket) if w.ticket is not None else None
        if t is None or t.item not in items:
            continue
        called = called_at(t)
        elapsed = max(1.0, now - (called if called is not None else w.since))
        mu = model.mu(t.item, items[t.item].minutes)
        busy.append(i)
        spent.append(elapsed)
        mus.append(mu)
        f0s.append(0.5 * (1 + math.erf((math.log(elapsed) - mu) / (sigma * math.sqrt(2)))))
    cap_normal, cap_other = model.capacity
    midnight = midnight_of(centre, now)
    # The queue as it is now (copies: a later slice must not see it move).
    queue = centre.queue
    lists = list(queue.appointment), list(queue.priority), list(queue.normal)
    policy, streak, day = centre.policy, centre.streak, centre.day
    reach = dict(centre._reach)
    targeted = {u.id: centre.reach(u) for part in lists for u in part
                if u.target_window is not None} if queue.targeted else {}
    if fine:  # (what a waiting ticket is taken for never changes while it waits)
        yield
    # Each item's occupancy location (`model.mu` is the learner as it was at the start).
    mu_of = {i: model.mu(i, items[i].minutes) if i in items else math.log(300.0)
             for i in {u.item for part in lists for u in part}}
    # A second item at the same window: its mean occupancy.
    extra_of = {x: 0.8 * math.exp(model.mu(x, items[x].minutes) + sigma ** 2 / 2)
                for x in {x for part in lists for u in part for x in u.extra_items}
                if x in items}
    if fine:
        yield
    free = np.full((P, len(open_w)), now)
    for i, left in paused:
        free[:, i] = now + rng.exponential(left, P)
    if busy:  # every busy window's remaining occupancy in one draw
        f0 = np.array(f0s)
        q = f0 + (1 - f0) * rng.random((P, len(busy)))  # quantiles past the time spent
        total = np.exp(np.array(mus) + sigma * ndtri(q))
        free[:, busy] = now + np.maximum(total - np.array(spent), 1.0) + model.wrap
    if fine:
        yield
    order = specialised_first(centre, order_of(*lists, now, policy, streak))
    if fine:
        yield
    # A capacity the same at every time of day (nothing learned yet) divides alike
    # whatever slot a start falls in: no per-ticket slot lookup then.
    flat = {id(cap): float(cap[0]) if cap.min() == cap.max() else None
            for cap in (cap_normal, cap_other)}
    fc = Forecast(now, {}, free, cols, day, (version, now), midnight=midnight)
    colsets: dict[frozenset[int], np.ndarray] = {}
    for k0 in range(0, len(order), chunk):
        if k0:
            yield
        part = order[k0:k0 + chunk]
        # The part's occupancies in one draw (the same numbers as one draw for the whole
        # queue, or one ticket at a time); the loop does only what is sequential.
        z = rng.standard_normal((len(part), P))
        occs = np.exp(np.array([mu_of[u.item] for u in part]).reshape(-1, 1) + sigma * z)
        occs += model.wrap
        for k, u in enumerate(part):
            r = targeted.get(u.id) if targeted else None
            if r is None:
                r = reach.get(u.item, frozenset())
            idx = colsets.get(r)
            if idx is None:
                idx = colsets[r] = np.array(sorted(cols[n] for n in r if n in cols), dtype=int)
            occ = occs[k]
            for extra in u.extra_items:
                if extra in extra_of:
                    occ = occ + extra_of[extra]
            cap = cap_normal if u.priority is Priority.NORMAL else cap_other
            place(fc, u.id, (idx, occ, cap, flat[id(cap)], None))
    return fc
