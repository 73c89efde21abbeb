"""Per-ticket wait prediction: learned service times and forward Monte-Carlo from now.

Pure (no I/O, no clock, no global randomness): the caller passes the centre, `now` and a
`version` (the journal position). One simulation serves every waiting ticket of a state, its
paths drawn from a generator seeded by (day, version), so a replayed hub prints the very same
numbers; the learned state changes only in `update`/`issued`, which the app calls for every
journal record in order (live and in replay alike).

* Learning (`update`): each ticket that leaves a window DONE gives one window occupancy,
  call -> complete (walk to the window + service), for its item (`ServiceLearner`: a
  lognormal matched to mean and spread, the mean shrunk toward the catalog's standard
  minutes times a centre-wide learned ratio). A time-of-day profile of the share of open
  windows that are paused (lunch, breaks) is learned alongside.
* Prediction (`forecast`, `predict`, `probe`): `paths` sample paths at once (numpy). Each open
  window is free now (idle), after its resident's remaining occupancy (drawn conditioned on
  the time already spent), or after its pause; the waiting tickets, in dispatch order
  (`dispatch_order`; a specialised window's own items first), each take the first free window
  among those eligible for their item, with a sampled occupancy stretched by the paused share
  at that time of day. A ticket's start times over the paths give its wait: median (point)
  and 10th-90th percentile, recalibrated online (`issued` records each ticket's prediction;
  its first call scores it) per band of the predicted wait so that about 80% of waits fall
  inside. A hypothetical new ticket for an item (the hall's forecast) starts after the queue.
* Baselines for evaluation (evaluate_wait.py): `naive` (people ahead x mean occupancy /
  eligible windows) and `hol_delay` (the wait of the last ticket called from the same queue).
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from ..core.centre import Centre
from ..core.model import Priority, Ticket, TicketState, WindowState

INF = float("inf")
SLOT = 600.0  # s: time-of-day resolution of the learned capacity profile
SLOTS = int(86400 / SLOT)
CALIBRATION_N = 200  # recent calls the interval is calibrated on (about half a day)
CALIBRATION_MIN = 30  # ... and how many it needs before it trusts them
BANDS = (5.0, 15.0, 40.0)  # min: calibration bands of the predicted wait
SLACK = 1.0  # min: an interval's half-width is scaled from (simulated half-width + SLACK)
SIDE_Q = 0.9  # each side aims to miss 10% of the calibration set
# A forecast simulated at one journal position serves later takes and pages while only what
# it already expects happens (EXPECTED), for at most this long and this many records; then
# the queue is simulated again. Anything else (a window opened, closed or paused, a ticket
# skipped, transferred or voided, a priority ticket, a new day) simulates at once.
EXTEND_AGE = 30.0  # s
EXTEND_RECORDS = 100
REUSE_AGE = 5.0  # s: a page asking a few seconds before or after reads the same forecast
EXPECTED = frozenset({
    "take",  # each take is checked in `_extend`: a plain one joins the tail
    "call", "recall", "start", "complete",  # residents served in dispatch order
    "rate", "help", "help_answer", "scan", "card", "reserve", "reprint",  # no queue change
})


@dataclass(frozen=True, slots=True)
class Estimate:
    """Minutes from `now`; all inf when no open window can serve the ticket."""

    median: float
    mean: float
    lo: float  # calibrated 80% interval
    hi: float
    raw_lo: float = 0.0  # 10th and 90th percentiles of the simulated waits
    raw_hi: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.median != INF

    def minutes(self) -> tuple[int, int, int] | None:
        """(point, low, high) whole minutes for screens and tickets; None: no window."""
        if not self.reachable:
            return None
        return round(self.median), math.floor(self.lo), max(math.ceil(self.hi), 1)


NO_WINDOW = Estimate(INF, INF, INF, INF, INF, INF)


@dataclass(slots=True)
class _Item:
    n: int = 0
    mean: float = 0.0  # seconds
    m2: float = 0.0


@dataclass(slots=True)
class ServiceLearner:
    """Online per-item window occupancy: a lognormal matched to the mean and the spread
    (moments on the raw scale, so the mean stays right whatever the true shape), the mean
    shrunk toward the catalog's standard minutes times a centre-wide learned ratio."""

    prior_n: float = 4.0  # weight of the prior mean, in samples
    cv0: float = 0.5  # prior coefficient of variation
    cv_n: float = 20.0  # ... and its weight
    items: dict[str, _Item] = field(default_factory=dict)
    obs_sum: float = 0.0  # seconds observed
    std_sum: float = 0.0  # standard seconds of the same services
    total_n: int = 0
    _cv2: float | None = None

    def observe(self, item: str, standard_minutes: float, seconds: float) -> None:
        if seconds <= 0:
            return
        s = self.items.setdefault(item, _Item())
        s.n += 1
        d = seconds - s.mean
        s.mean += d / s.n
        s.m2 += d * (seconds - s.mean)
        self.obs_sum += seconds
        self.std_sum += standard_minutes * 60.0
        self.total_n += 1
        self._cv2 = None

    def cv2(self) -> float:
        if self._cv2 is None:
            acc = self.cv0 ** 2 * self.cv_n
            dof = self.cv_n
            for s in self.items.values():
                if s.n > 1:
                    acc += s.m2 / s.mean ** 2
                    dof += s.n - 1
            self._cv2 = acc / dof
        return self._cv2

    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv2()))

    def ratio(self) -> float:
        """Observed over standard time, shrunk toward 1."""
        w = 10 * 300.0  # ten five-minute services' worth of prior
        return (self.obs_sum + w) / (self.std_sum + w)

    def mean(self, item: str, standard_minutes: float) -> float:
        prior = standard_minutes * 60.0 * self.ratio()
        s = self.items.get(item)
        if s is None or s.n == 0:
            return prior
        return (prior * self.prior_n + s.mean * s.n) / (self.prior_n + s.n)

    def mu(self, item: str, standard_minutes: float) -> float:
        """Log-seconds location of the item's occupancy."""
        return math.log(self.mean(item, standard_minutes)) - math.log1p(self.cv2()) / 2

    def mean_seconds(self, default: float) -> float:
        return self.obs_sum / self.total_n if self.total_n else default


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


def _slot(centre: Centre, ts: float) -> int:
    t = centre.local_time(ts)
    return min(SLOTS - 1, int((t.hour * 3600 + t.minute * 60 + t.second) / SLOT))


def _called_at(t: Ticket) -> float | None:
    for ts, state, _w in reversed(t.history):
        if state == "called":
            return ts
    return None


def dispatch_order(centre: Centre, now: float) -> list[Ticket]:
    """The waiting tickets in the order the windows will likely call them: due appointments,
    then priority and normal interleaved as the `ratio` policy does (after `ratio` priority
    tickets one normal), or with `aging` all priority first; arrival order within a class."""
    tiers: dict[int, list[Ticket]] = {0: [], 1: [], 2: []}
    for u in centre.queue:
        tiers[centre._tier(u, now)].append(u)
    prio = sorted(tiers[1], key=lambda u: u.sort_key)
    normal = sorted(tiers[2], key=lambda u: u.sort_key)
    out = sorted(tiers[0], key=lambda u: (u.appointment_at or 0.0, u.serial))
    policy = centre.policy
    if policy.mode != "ratio" or not prio or not normal:
        return out + prio + normal
    i = j = 0
    streak = centre.streak
    while i < len(prio) and j < len(normal):
        if streak < policy.ratio:
            out.append(prio[i])
            i += 1
            streak += 1
        else:
            out.append(normal[j])
            j += 1
            streak = 0
    return out + prio[i:] + normal[j:]


def _quantile(xs: deque[float], q: float) -> float:
    """numpy's default (linear) quantile of a few hundred values, without numpy's overhead
    (it was a tenth of a take's cost: the calibration changes with every call)."""
    v = sorted(xs)
    pos = q * (len(v) - 1)
    k = int(pos)
    if k + 1 >= len(v):
        return v[-1]
    return v[k] + (v[k + 1] - v[k]) * (pos - k)


def _percentiles(v: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """np.percentile's linear interpolation on an already sorted array (np.percentile
    costs ten times more on a take's 200 paths)."""
    out = []
    for q in qs:
        pos = q * (len(v) - 1)
        k = int(pos)
        hi = v[min(k + 1, len(v) - 1)]
        out.append(float(v[k] + (hi - v[k]) * (pos - k)))
    return tuple(out)


def _slots(ts: np.ndarray, midnight: float) -> np.ndarray:
    return np.clip(((ts - midnight) / SLOT).astype(int), 0, SLOTS - 1)


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


class WaitPredictor:
    def __init__(self, paths: int = 200, seed: int = 0, pause_minutes: float = 10.0,
                 wrap_seconds: float = 15.0, learner: ServiceLearner | None = None,
                 extend: bool = True) -> None:
        self.paths = paths
        self.extend = extend  # False: simulate the whole queue for every take (baseline)
        self.seed = seed
        self.pause = pause_minutes * 60.0
        self.wrap = wrap_seconds
        self.learner = learner or ServiceLearner()
        self._at_window: dict[str, str] = {}  # ticket id -> item, as last seen at a window
        self.hol: dict[frozenset[int], float] = {}  # queue (its windows) -> last call's wait
        self._cache: tuple[tuple[int, float], Forecast] | None = None
        # The forecast of the latest journal position a take was answered at (kept apart
        # from the pages' one-entry cache): the next take extends it (`_extend`).
        self._chain: tuple[int, Forecast] | None = None
        self._since = 0  # operations reported to `update` (all EXPECTED) since `_chain`
        # Time of day (SLOT-second slots, summed over the days seen): open-window seconds,
        # paused-window seconds, and the occupancy brought by priority/appointment arrivals
        # (which go ahead of a normal ticket already waiting).
        self.open_s = np.zeros(SLOTS)
        self.paused_s = np.zeros(SLOTS)
        self.prio_s = np.zeros(SLOTS)
        self._last: float | None = None
        self.avail_weight = 1.0
        self.prio_weight = 0.0  # evaluated: future priority arrivals as lost capacity hurt
        # Online calibration of the interval (split-conformal on the waits seen): each
        # ticket's issue-time (median, lo, hi), scored when it is first called.
        self._scales: dict[int, tuple[float, float]] = {}
        self.pending: dict[str, tuple[float, float, float, float]] = {}
        # Per band of the predicted wait (Mondrian): short waits err differently.
        self.score_lo: list[deque[float]] = [deque(maxlen=CALIBRATION_N)
                                             for _ in range(len(BANDS) + 1)]
        self.score_hi: list[deque[float]] = [deque(maxlen=CALIBRATION_N)
                                             for _ in range(len(BANDS) + 1)]
        self._serial = 0

    # ---- learning ------------------------------------------------------------------------
    def update(self, centre: Centre, now: float, op: str | None = None) -> None:
        """Learn from what changed since the last call (O(windows + new tickets)); call it
        after every operation, with the operation's time and its `op` (None: unknown, so
        the next prediction simulates the queue again)."""
        if op not in EXPECTED:
            self._chain = None
        self._since += 1
        self._profile(centre, now)
        now_at = {w.ticket for w in centre.windows.values() if w.ticket is not None}
        items = centre.catalog.items
        for tid in [k for k in self._at_window if k not in now_at]:
            item = self._at_window.pop(tid)
            t = centre.tickets.get(tid)
            if t is None or t.state is not TicketState.DONE or item not in items:
                continue
            called = _called_at(t)
            if called is not None:
                self.learner.observe(item, items[item].minutes, t.history[-1][0] - called)
        for tid in now_at:
            if tid in self._at_window:
                continue
            t = centre.tickets.get(tid)
            if t is None:
                continue
            self._at_window[tid] = t.item
            called = _called_at(t)
            first = next((ts for ts, s, _ in t.history if s == "called"), None)
            if called is not None and first == called and t.item in items:
                # Its first call: the head-of-line delay of its queue.
                self.hol[centre._reach.get(t.item, frozenset())] = called - t.issued_at
            p = self.pending.pop(tid, None)
            if p is not None and called is not None:
                issued, med, lo, hi = p
                y = (called - issued) / 60.0
                b = bisect.bisect(BANDS, med)
                self.score_lo[b].append((med - y) / (med - lo + SLACK))
                self.score_hi[b].append((y - med) / (hi - med + SLACK))
                self._scales.clear()

    def _scale(self, med: float) -> tuple[float, float]:
        """Multipliers of the lower and upper half-widths so that each side misses about
        10% of the recent waits predicted in the same band (1, 1 until there are enough)."""
        b = bisect.bisect(BANDS, med)
        got = self._scales.get(b)
        if got is None:
            lo, hi = self.score_lo[b], self.score_hi[b]
            if len(lo) < CALIBRATION_MIN:
                got = (1.0, 1.0)
            else:
                got = (max(0.0, _quantile(lo, SIDE_Q)), max(0.0, _quantile(hi, SIDE_Q)))
            self._scales[b] = got
        return got

    def issued(self, t: Ticket, est: Estimate) -> None:
        """Remember a ticket's prediction at issue; scored against its wait when called."""
        if est.reachable:
            self.pending[t.id] = (t.issued_at, est.median, est.raw_lo, est.raw_hi)
            while len(self.pending) > 5000:
                self.pending.pop(next(iter(self.pending)))

    def _profile(self, centre: Centre, now: float) -> None:
        last, self._last = self._last, now
        if last is not None and 0 < now - last < 3600:
            n_open = n_paused = 0
            for w in centre.windows.values():
                if w.state is not WindowState.CLOSED:
                    n_open += 1
                    n_paused += w.state is WindowState.PAUSED
            if n_open:
                k = _slot(centre, last)
                self.open_s[k] += n_open * (now - last)
                self.paused_s[k] += n_paused * (now - last)
        if centre.serial < self._serial:
            self._serial = 0
        if centre.serial == self._serial:
            return
        items, sigma = centre.catalog.items, self.learner.sigma()
        for t in reversed(centre.tickets.values()):
            if t.serial <= self._serial:
                break
            if t.priority is not Priority.NORMAL and t.item in items:
                mu = self.learner.mu(t.item, items[t.item].minutes)
                self.prio_s[_slot(centre, t.issued_at)] += math.exp(mu + sigma ** 2 / 2)
        self._serial = centre.serial

    def capacity(self) -> tuple[np.ndarray, np.ndarray]:
        """(for normal tickets, for the others): the learned share of the windows' time
        by time of day that serves the queue already waiting (pauses and lunch out, and for
        normal tickets also the priority residents yet to come)."""
        seen = self.open_s > 0
        avail = np.ones(SLOTS)
        avail[seen] = 1 - self.paused_s[seen] / self.open_s[seen]
        prio = np.zeros(SLOTS)
        prio[seen] = self.prio_s[seen] / self.open_s[seen]
        avail = 1 - self.avail_weight * (1 - avail)
        prio = self.prio_weight * prio
        return np.clip(avail * (1 - np.minimum(prio, 0.5)), 0.2, 1), np.clip(avail, 0.2, 1)

    # ---- prediction ----------------------------------------------------------------------
    def forecast(self, centre: Centre, now: float, version: int) -> Forecast:
        key = (version, now)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        fc = self._simulate(centre, now, version)
        self._cache = (key, fc)
        return fc

    def _rng(self, centre: Centre, version: int) -> np.random.Generator:
        return np.random.default_rng(
            [self.seed, zlib.crc32(f"{centre.day}:{version}".encode()), version])

    def _simulate(self, centre: Centre, now: float, version: int) -> Forecast:
        steps = self.simulation(centre, now, version)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def simulation(self, centre: Centre, now: float, version: int,
                   chunk: int = 1 << 30) -> Generator[None, None, Forecast]:
        """The forecast at (`version`, `now`), resumable: it yields after every `chunk`
        tickets placed, so a caller in the hub's loop can let other work run between
        (hub/web/livewait.py). Everything read from `centre` is read before the first
        yield: the result is the state at `version` whatever happens meanwhile. Run to the
        end in one go it is `_simulate`, the same numbers."""
        rng = self._rng(centre, version)
        P, L = self.paths, self.learner
        items = centre.catalog.items
        sigma = L.sigma()
        open_w = [w for w in sorted(centre.windows.values(), key=lambda w: w.number)
                  if w.state is not WindowState.CLOSED]
        cols = {w.number: i for i, w in enumerate(open_w)}
        free = np.full((P, len(open_w)), now)
        busy: list[int] = []  # columns with a resident at the window, and for each:
        spent: list[float] = []  # seconds since the call
        mus: list[float] = []  # the occupancy's log-location
        f0s: list[float] = []  # the share of occupancies already over
        for i, w in enumerate(open_w):
            if w.state is WindowState.PAUSED:
                left = max(60.0, self.pause - (now - w.since))
                free[:, i] = now + rng.exponential(left, P)
                continue
            t = centre.tickets.get(w.ticket) if w.ticket is not None else None
            if t is None or t.item not in items:
                continue
            called = _called_at(t)
            elapsed = max(1.0, now - (called if called is not None else w.since))
            mu = L.mu(t.item, items[t.item].minutes)
            busy.append(i)
            spent.append(elapsed)
            mus.append(mu)
            f0s.append(0.5 * (1 + math.erf((math.log(elapsed) - mu) / (sigma * math.sqrt(2)))))
        if busy:  # every busy window's remaining occupancy in one draw
            f0 = np.array(f0s)
            q = f0 + (1 - f0) * rng.random((P, len(busy)))  # quantiles past the time spent
            total = np.exp(np.array(mus) + sigma * ndtri(q))
            free[:, busy] = now + np.maximum(total - np.array(spent), 1.0) + self.wrap
        cap_normal, cap_other = self.capacity()
        local = centre.local_time(now)
        midnight = now - (local.hour * 3600 + local.minute * 60 + local.second
                          + local.microsecond / 1e6)
        # A specialised window serves its own items first: their tickets take it before
        # any comprehensive ticket it might help with.
        order = dispatch_order(centre, now)
        order = ([u for u in order if u.item in items and items[u.item].specialised]
                 + [u for u in order if not (u.item in items and items[u.item].specialised)])
        z = rng.standard_normal((len(order), P))
        # Every ticket's occupancy in one draw (the same arithmetic as one ticket at a time:
        # the numbers are identical), so the loop below does only what is sequential: each
        # ticket takes the first free window. 900 waiting: ~45 ms -> ~15 ms here.
        mu_of: dict[str, float] = {}
        for u in order:
            if u.item not in mu_of:
                mu_of[u.item] = (L.mu(u.item, items[u.item].minutes) if u.item in items
                                 else math.log(300.0))
        occs = np.exp(np.array([mu_of[u.item] for u in order]).reshape(-1, 1) + sigma * z)
        occs += self.wrap
        # A capacity the same at every time of day (nothing learned yet) divides alike
        # whatever slot a start falls in: no per-ticket slot lookup then.
        flat = {id(cap): float(cap[0]) if cap.min() == cap.max() else None
                for cap in (cap_normal, cap_other)}
        rows = np.arange(P)
        colsets: dict[frozenset[int], np.ndarray] = {}
        plan: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # id, cols, occ, cap
        for k, u in enumerate(order):
            reach = centre.reach(u)
            idx = colsets.get(reach)
            if idx is None:
                idx = np.array(sorted(cols[n] for n in reach if n in cols), dtype=int)
                colsets[reach] = idx
            occ = occs[k]
            for extra in u.extra_items:  # a second item at the same window
                if extra in items:
                    occ = occ + 0.8 * math.exp(L.mu(extra, items[extra].minutes)
                                               + sigma ** 2 / 2)
            plan.append((u.id, idx, occ,
                         cap_normal if u.priority is Priority.NORMAL else cap_other))
        starts: dict[str, np.ndarray] = {}
        for k, (tid, idx, occ, cap) in enumerate(plan):
            if k and k % chunk == 0:
                yield
            if idx.size == 0:
                starts[tid] = np.full(P, INF)
                continue
            c = flat[id(cap)]
            if idx.size == len(cols) > 1:  # every open window may serve it: no subset copy
                a = free.argmin(axis=1)
                st = free[rows, a]
                free[rows, a] = st + (occ / c if c is not None
                                      else occ / cap[_slots(st, midnight)])
            elif idx.size == 1:
                j = idx[0]
                st = free[:, j].copy()
                free[:, j] = st + (occ / c if c is not None else occ / cap[_slots(st, midnight)])
            else:
                sub = free[:, idx]
                a = sub.argmin(axis=1)
                st = sub[rows, a]
                free[rows, idx[a]] = st + (occ / c if c is not None
                                           else occ / cap[_slots(st, midnight)])
            starts[tid] = st
        return Forecast(now, starts, free, cols, centre.day, (version, now))

    def _summary(self, starts: np.ndarray, now: float) -> Estimate:
        if not np.isfinite(starts).all():
            return NO_WINDOW
        w = np.maximum(starts - now, 0.0) / 60.0
        lo, med, hi = _percentiles(np.sort(w), (0.1, 0.5, 0.9))
        a_lo, a_hi = self._scale(med)
        return Estimate(med, float(w.mean()), max(0.0, med - a_lo * (med - lo + SLACK)),
                        med + a_hi * (hi - med + SLACK), lo, hi)

    def predict(self, centre: Centre, t: Ticket, now: float, version: int) -> Estimate:
        """A waiting ticket's wait from `now` (at state `version`)."""
        fc = self._extend(centre, t, now, version)
        if fc is None:
            fc = self._reuse(version, now)
            if fc is not None and t.id not in fc.starts:
                fc = None  # a ticket it does not know (a take it could not extend to)
        if fc is None:
            fc = self.forecast(centre, now, version)
            if self._chain is None or self._chain[0] <= version:
                self._chain, self._since = (version, fc), 0
        st = fc.starts.get(t.id)
        if st is None:  # not waiting
            return Estimate(0.0, 0.0, 0.0, 0.0)
        return self._summary(st, now)

    def _fresh_chain(self, version: int, now: float) -> Forecast | None:
        """The chained forecast, if it may still stand for the state at `version`, `now`."""
        chain = self._chain
        # Every position since the chained one must have been reported to `update` (a
        # caller that skips it changes the state behind the forecast's back).
        if not self.extend or chain is None or not 0 <= version - chain[0] <= self._since:
            return None
        fc = chain[1]
        if (version - fc.origin[0] > EXTEND_RECORDS
                or not -REUSE_AGE <= now - fc.origin[1] <= EXTEND_AGE):
            return None
        return fc

    def _extend(self, centre: Centre, t: Ticket, now: float, version: int) -> Forecast | None:
        """The forecast at `version` when, since the chained one, only what it expects
        happened (EXPECTED: residents called and served in dispatch order, bookkeeping) and
        `t` joined the END of the dispatch order: then `t` takes the first window free
        after everyone ahead, which the chained forecast already holds (`free`), so a take
        costs O(paths x windows) instead of a simulation of the whole queue (25 ms with ~950
        waiting). The same model as `_simulate`, from the same paths; only `t`'s occupancy
        is drawn anew. None when that does not hold: simulate instead."""
        base = self._fresh_chain(version, now)
        if base is None or self._chain is None or self._chain[0] == version:
            return None
        q, items = centre.queue, centre.catalog.items
        if (t.state is not TicketState.WAITING or t.priority is not Priority.NORMAL
                or t.issued_at != now  # an offline ticket (it may void another) or a reprint
                or t.id in base.starts or base.day != centre.day or now < base.now
                or q.priority or q.appointment or not q.normal or q.normal[-1] is not t
                or t.item not in items or items[t.item].specialised):
            return None
        idx = np.array(sorted(base.cols[n] for n in centre.reach(t) if n in base.cols),
                       dtype=int)
        free = base.free
        if idx.size == 0:
            st = np.full(self.paths, INF)
        else:
            L, sigma = self.learner, self.learner.sigma()
            z = self._rng(centre, version).standard_normal(self.paths)
            occ = np.exp(L.mu(t.item, items[t.item].minutes) + sigma * z) + self.wrap
            for extra in t.extra_items:
                if extra in items:
                    occ = occ + 0.8 * math.exp(L.mu(extra, items[extra].minutes)
                                               + sigma ** 2 / 2)
            cap = self.capacity()[0]
            local = centre.local_time(now)
            midnight = now - (local.hour * 3600 + local.minute * 60 + local.second
                              + local.microsecond / 1e6)
            sub = free[:, idx]
            a = sub.argmin(axis=1)
            rows = np.arange(self.paths)
            # A window the chained forecast had free before `now` is free at `now`.
            st = np.maximum(sub[rows, a], now)
            free = free.copy()
            free[rows, idx[a]] = st + occ / cap[_slots(st, midnight)]
        starts = dict(base.starts)  # the pages' cache may still hold `base`
        starts[t.id] = st
        fc = Forecast(now, starts, free, base.cols, centre.day, base.origin)
        self._chain, self._since = (version, fc), 0
        return fc

    def _reuse(self, version: int, now: float) -> Forecast | None:
        """The chained forecast for a page asking a few seconds apart while only what it
        expects has happened: the same queue needs no second simulation."""
        fc = self._fresh_chain(version, now)
        if fc is None or abs(now - fc.now) > REUSE_AGE:
            return None
        return fc

    def probe(self, centre: Centre, item: str, now: float, version: int) -> Estimate:
        """The wait of a resident who took a ticket for `item` now (after everyone waiting)."""
        fc = self._reuse(version, now) or self.forecast(centre, now, version)
        return self.probe_in(fc, centre, item, now)

    def known(self, version: int, now: float) -> Forecast | None:
        """A forecast that `probe` and `predict` would read at (`version`, `now`) without
        simulating: the cached one, or the chained one still standing."""
        if self._cache is not None and self._cache[0] == (version, now):
            return self._cache[1]
        return self._reuse(version, now)

    def adopt(self, fc: Forecast, version: int, now: float) -> None:
        """A forecast simulated at (`version`, `now`) by a caller running `simulation` in
        steps, `version` still the latest position reported to `update`: later reads find
        it, and chain from it, as if `predict` had simulated it."""
        self._cache = ((version, now), fc)
        if self._chain is None or self._chain[0] <= version:
            self._chain, self._since = (version, fc), 0

    def wait_in(self, fc: Forecast, ticket_id: str, now: float) -> Estimate | None:
        """A waiting ticket's wait read from `fc` (None: `fc` does not know the ticket)."""
        st = fc.starts.get(ticket_id)
        return None if st is None else self._summary(st, now)

    def probe_in(self, fc: Forecast, centre: Centre, item: str, now: float) -> Estimate:
        """`probe` read from a given forecast."""
        idx = [fc.cols[n] for n in centre._reach.get(item, frozenset()) if n in fc.cols]
        if not idx:
            return NO_WINDOW
        return self._summary(fc.free[:, idx].min(axis=1), now)

    # ---- baselines (for the evaluation) -----------------------------------------------------
    def naive(self, centre: Centre, t: Ticket, now: float) -> float:
        """Minutes: people ahead x mean occupancy / eligible windows."""
        reach = centre.reach(t)
        if not reach:
            return INF
        mean = self.learner.mean_seconds(300.0)
        return len(centre.ahead_of(t, now)) * mean / len(reach) / 60.0

    def hol_delay(self, centre: Centre, t: Ticket) -> float:
        """Minutes: the wait of the last ticket called from the same queue (0 if none)."""
        return self.hol.get(centre._reach.get(t.item, frozenset()), 0.0) / 60.0


# ---- snapshot (hub/store/snapshot.py) ----------------------------------------------------
def predictor_to_dict(p: WaitPredictor) -> dict[str, object]:
    """The learned state of a predictor, in insertion order (evictions and sums follow it).
    Left out: the forecast caches (`_cache`, `_chain`, `_scales`), which a replay does not
    fill either and which are recomputed from this state alike."""
    L = p.learner
    return {
        "learner": {"prior_n": L.prior_n, "cv0": L.cv0, "cv_n": L.cv_n,
                    "items": {k: [s.n, s.mean, s.m2] for k, s in L.items.items()},
                    "obs_sum": L.obs_sum, "std_sum": L.std_sum, "total_n": L.total_n},
        "at_window": dict(p._at_window),
        "hol": [[sorted(k), v] for k, v in p.hol.items()],
        "open_s": p.open_s.tolist(), "paused_s": p.paused_s.tolist(),
        "prio_s": p.prio_s.tolist(),
        "last": p._last, "avail_weight": p.avail_weight, "prio_weight": p.prio_weight,
        "pending": {k: list(v) for k, v in p.pending.items()},
        "score_lo": [list(d) for d in p.score_lo], "score_hi": [list(d) for d in p.score_hi],
        "serial": p._serial,
    }


def restore_predictor(p: WaitPredictor, d: dict) -> None:  # type: ignore[type-arg]
    """Load `predictor_to_dict` output into `p` (a fresh predictor of the same settings)."""
    ld = d["learner"]
    learner = ServiceLearner(prior_n=ld["prior_n"], cv0=ld["cv0"], cv_n=ld["cv_n"],
                             items={k: _Item(n, m, m2) for k, (n, m, m2) in ld["items"].items()},
                             obs_sum=ld["obs_sum"], std_sum=ld["std_sum"],
                             total_n=ld["total_n"])
    arrays = [np.array(d[k], dtype=float) for k in ("open_s", "paused_s", "prio_s")]
    if any(a.shape != (SLOTS,) for a in arrays):
        raise ValueError(f"predictor profiles must have {SLOTS} slots")
    if len(d["score_lo"]) != len(BANDS) + 1 or len(d["score_hi"]) != len(BANDS) + 1:
        raise ValueError(f"predictor calibration needs {len(BANDS) + 1} bands")
    p.learner = learner
    p._at_window = dict(d["at_window"])
    p.hol = {frozenset(k): v for k, v in d["hol"]}
    p.open_s, p.paused_s, p.prio_s = arrays
    p._last, p.avail_weight, p.prio_weight = d["last"], d["avail_weight"], d["prio_weight"]
    p.pending = {k: (a, b, c, e) for k, (a, b, c, e) in d["pending"].items()}
    p.score_lo = [deque(x, maxlen=CALIBRATION_N) for x in d["score_lo"]]
    p.score_hi = [deque(x, maxlen=CALIBRATION_N) for x in d["score_hi"]]
    p._serial = d["serial"]
    p._cache = p._chain = None
    p._scales = {}
