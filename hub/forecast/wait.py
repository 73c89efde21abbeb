"""Per-ticket wait prediction: learned service times and forward Monte-Carlo from now.

Pure (no I/O, no clock, no global randomness): the caller passes the centre, `now` and a
`version` (the journal position). One simulation serves every waiting ticket of a state, its
paths drawn from a generator seeded by (day, version), so the same state, position and time
give the very same numbers. A take's numbers depend also on which forecast stood when it
came (refreshed in the background), so they are journaled with it and a replayed hub prints
them again. The learned state changes only in `update`/`issued`, which the app calls for
every journal record in order (live and in replay alike).

* Learning (`update`): each ticket that leaves a window DONE gives one window occupancy,
  call -> complete (walk to the window + service), for its item (`ServiceLearner`: a
  lognormal matched to mean and spread, the mean shrunk toward the catalog's standard
  minutes times a centre-wide learned ratio). A time-of-day profile of the share of open
  windows that are paused (lunch, breaks) is learned alongside.
* Prediction (`predict`, `probe`): `paths` sample paths of the whole queue at once
  (hub/forecast/paths.py: each waiting ticket, in dispatch order, takes the first window
  free among those eligible for its item, with a sampled occupancy stretched by the paused
  share at that time of day). A ticket's start times over the paths give its wait: median
  (point) and 10th-90th percentile, widened into a calibrated 80% interval: per band of
  the predicted wait, both half-widths (plus SLACK) are multiplied by one factor, the lower
  end floored at 0. The factors are data (wait_factors.json), per kind of layout
  (`layout_kind`: comprehensive, mixed, dedicated), class of its size (`SIZE_EDGES`: the
  windows configured) and class of the centre's load at that moment (`LOAD_EDGES`: people
  waiting per open window, whatever their line: at the same predicted wait a heavy day
  errs more, which the band alone cannot see), learned by split conformal calibration on
  the simulator's tuning seeds across window counts and loads
  (python -m onewindow.hub.forecast.evaluate_wait --tune): per size, band and load class,
  the 81st percentile (evaluate_wait.TUNE_TARGET) of the factor each tuning wait needed to
  fall inside; the evaluation reports on held-out seeds. That table is where a hub starts:
  on top of it, one log-offset of the factor (both ends, every band) is calibrated online,
  a day at a time (adaptive conformal inference, Gibbs & Candes 2021, with the day as the
  step: a centre's waits within a day miss together, one slow morning moves hundreds of
  tickets, so a step per ticket chases that day's shock into the afternoon and the next
  morning; `eta` 0: the table alone). `issued` records each ticket's printed interval, and
  each end is settled as soon as its outcome is known (the first call; or, while the
  ticket still waits, its time passing: an upper end passed is a miss known then, not a
  wait later, and counted even if the ticket is never called); the day's settled ends are
  summed, and the first record of the next day steps the offset by
  eta x (the day's misses - END_MISS per end) / (the tickets settled on a mean day of this
  hub). Summed over D days that is (offset now - offset then) / eta = (misses - 20 % of
  the tickets) / the mean day's tickets: the share of this hub's waits outside the interval
  comes to 20 % within |offset| / (eta D), whatever its layout, size or load, which no
  fixed table does (a centre's own error differs from the grid's by a few points: the load
  gap in docs/forecast.md). The offset moves the interval printed and shown
  (`Estimate.lo`, `hi`) only; the table's alone stays beside it (`Estimate.table_lo`,
  `table_hi`), and admission control judges on that one (hub/forecast/admission.py), so its
  verdicts do not move with it. The offset and the day's sums are a function of the
  journaled takes (their printed interval is in the record) and the times of the records:
  snapshot == replay. A take reads its factor (a lookup and an exp): nothing is computed
  per take. (Until stage 13 the factor was a quantile of the recent calls'
  scores, learned online: those lag the queue by a wait, and at the morning's start are the
  previous afternoon's; it covered 67-88% across the grid's cells.) The first call also
  scores the prediction (`recent_scores`).
  A hypothetical new ticket for an item (the hall's forecast) starts after the queue.
* A take never simulates the queue: the new ticket is placed into the standing forecast in
  bounded time (hub/forecast/chain.py), which the hub simulates again in the background, in
  slices between its messages (`refresh`, `land`; the loop's side is
  hub/forecast/refresh.py). Only a predictor with no forecast of today to place it into
  (just started or rebuilt, before the refresher's first run; or one nothing refreshed for
  minutes: a tool without the refresher) simulates for a take.
* Baselines for evaluation (evaluate_wait.py): `naive` (people ahead x mean occupancy /
  eligible windows) and `hol_delay` (the wait of the last ticket called from the same queue).

Why one module of some 800 lines: what is left here (the simulation is hub/forecast/paths.py, the
standing forecast hub/forecast/chain.py) is the predictor's learned state (the occupancy
learner, the time-of-day profile, the interval calibration), the methods that read it, and
`predictor_to_dict`/`restore_predictor`, which must list every field of that state: apart, a
field added to the predictor could be left out of the snapshot unseen.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ..core.catalog import COMPREHENSIVE
from ..core.centre import Centre
from ..core.centre_config import CentreConfig
from ..core.model import Priority, Ticket, TicketState, WindowState
from .chain import (
    EXPECTED,
    EXTEND_AGE,
    EXTEND_RECORDS,
    REFRESH_AGE,
    REFRESH_RECORDS,
    REUSE_AGE,
    ForecastChain,
    Refresh,
    Take,
    successor,
)
from .paths import (
    INF,
    SLOT,
    SLOTS,
    Forecast,
    Model,
    called_at,
    dispatch_order,
    simulation,
)

__all__ = [
    "EXPECTED", "EXTEND_AGE", "EXTEND_RECORDS", "FACTORS", "INF", "LOAD_EDGES", "NO_WINDOW",
    "REFRESH_AGE", "REFRESH_RECORDS", "REUSE_AGE", "SIZE_EDGES", "SLOT", "SLOTS", "Estimate",
    "Forecast", "Refresh", "ServiceLearner", "WaitPredictor", "dispatch_order",
    "predictor_to_dict", "restore_predictor", "size_class",
]

CALIBRATION_N = 200  # recent calls' scores kept per band (about half a day)
BANDS = (5.0, 15.0, 40.0)  # min: calibration bands of the predicted wait
# People waiting (every line) per open window (paused ones included) when the interval is
# read: the classes of the centre's load the table's factors are conditioned on, beside the
# band. Cheap (a queue length and the windows), and it tells a heavy day from a light one at
# the same predicted wait: with the band alone, load 0.8 days over-covered (82 %) and load
# 1.0 days under-covered (75 %) (docs/forecast.md). Chosen on the tuning seeds only.
LOAD_EDGES = (1.5, 3.0, 5.0)
# Windows in the centre's configuration: the classes of its size the table's factors are
# conditioned on too (4, 8, 12, 16 windows in the tuning grid). At the same band and load
# class a big centre's heavy day erred more than a small one's (held out over 10 days the
# cells' coverage had 1.7 pt^2 of variance beyond the days' noise, big centres at load 1.0
# under, at load 0.8 over; with the size class 0.1). Chosen on the tuning seeds only.
SIZE_EDGES = (6, 10, 14)  # classes: up to 5 windows, 6-9, 10-13, 14 and more
SLACK = 1.0  # min: an interval's half-width is scaled from (simulated half-width + SLACK)
# Online calibration (adaptive conformal inference, a day at a time): one log-offset on the
# table's factor, both ends and every band, stepped at the first record of each new day by
# ETA x (the day's settled misses - END_MISS per settled end) / (the tickets settled on a
# mean day of this hub). The offset moves the printed interval only: admission control
# judges on the table's (`Estimate.table_alone`), so that its verdicts do not move with
# this hub's past days. ETA was chosen on tuning seeds only: 5000-5029 (one warm-up day,
# then 30), every cell of the grid, the day's step replayed over the tickets' simulated
# percentiles and actual waits (docs/forecast.md "A day at a time"): the cells' coverage
# over the 30 days was within 78-82 % in 18 of 36 with the table alone (rms from 80 %
# 2.44 points), 36 of 36 at ETA 0.5, 1, 2 or 3 (rms 0.63, 0.39, 0.31, 0.35), 36 of 36
# over the first 10 days too from 1 on; a single day's coverage strays from 80 % by 5.14
# points on average with the table alone, 5.29 at 1, 5.89 at 2: 1 keeps a resident's day
# as it was and still brings each centre to 80 % within weeks. A step per ticket (tried
# before, per band and end, eta 0.05-0.4) under-covered: 16 of 36 held out.
ETA = 1.0
END_MISS = 0.1  # the share of waits each end of the 80% interval should leave outside
OFFSET_CAP = 3.0  # |log-offset| at most: the factor stays within 1/20..20x the table's
LOWER, UPPER = 1, 2  # bits of a pending prediction's ends not yet settled


FACTORS_FILE = "wait_factors.json"
LAYOUT_KINDS = ("comprehensive", "mixed", "dedicated")


Table = tuple[tuple[float, ...], ...]  # [band][load class]


def _factors() -> dict[str, tuple[Table, ...]]:
    """Per kind of layout (`layout_kind`), class of its size (`SIZE_EDGES`), band of the
    predicted wait and class of the load (`LOAD_EDGES`): the factor of the simulated
    half-widths (+ SLACK) that makes the 80% interval, tuned on the simulator's tuning seeds
    (never the evaluation's held-out ones): evaluate_wait --tune --write."""
    doc = json.loads(resources.files(__package__).joinpath(FACTORS_FILE).read_text())
    if (tuple(doc["bands"]) != BANDS or tuple(doc.get("load_edges", ())) != LOAD_EDGES
            or tuple(doc.get("size_edges", ())) != SIZE_EDGES
            or set(doc["factors"]) != set(LAYOUT_KINDS)
            or any(len(v) != len(SIZE_EDGES) + 1
                   or any(len(t) != len(BANDS) + 1
                          or any(len(r) != len(LOAD_EDGES) + 1 for r in t) for t in v)
                   for v in doc["factors"].values())):
        raise ValueError(f"{FACTORS_FILE} does not match the predictor's sizes {SIZE_EDGES}, "
                         f"bands {BANDS}, load classes {LOAD_EDGES} and layouts "
                         f"{LAYOUT_KINDS}")
    return {k: tuple(tuple(tuple(max(0.0, float(x)) for x in r) for r in t) for t in v)
            for k, v in doc["factors"].items()}


def size_class(config: CentreConfig) -> int:
    """The class of a centre's size (`SIZE_EDGES`): the windows it is configured with."""
    return bisect.bisect(SIZE_EDGES, len(config.windows))


FACTORS = _factors()


def layout_kind(config: CentreConfig) -> str:
    """'comprehensive' (every window may serve every item: 一窗通办), 'dedicated' (every
    window serves only its own lines or items) or 'mixed' (anything between: comprehensive
    windows beside card, cash or pick-up ones)."""
    ws = config.windows
    if all(w.kind == COMPREHENSIVE and (w.skills is None or "*" in w.skills) for w in ws):
        return "comprehensive"
    if all(w.skills is not None and "*" not in w.skills for w in ws):
        return "dedicated"
    return "mixed"
REFRESH_SLICE = 8  # tickets placed per step of a background refresh (~10-20 us each)


Pending = tuple[float, float, float, float, float, float, int]


@dataclass(frozen=True, slots=True)
class Estimate:
    """Minutes from `now`; all inf when no open window can serve the ticket."""

    median: float
    mean: float
    lo: float  # calibrated 80% interval: the one printed and shown
    hi: float
    raw_lo: float = 0.0  # 10th and 90th percentiles of the simulated waits
    raw_hi: float = 0.0
    # The same interval with the table's factor alone, without this hub's online offset
    # (`WaitPredictor.offset`): what admission control judges on (`table_alone`), so that
    # its verdicts do not move with them. None: the same as lo and hi (an estimate read
    # back from a record, or made without a predictor).
    table_lo: float | None = None
    table_hi: float | None = None

    @property
    def reachable(self) -> bool:
        return self.median != INF

    def table_alone(self) -> Estimate:
        """This estimate with the interval of the offline table's factor alone (the printed
        one when the online offset is 0, or unknown)."""
        if self.table_lo is None or self.table_hi is None:
            return self
        return Estimate(self.median, self.mean, self.table_lo, self.table_hi, self.raw_lo,
                        self.raw_hi)

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
    _terms: dict[str, float] | None = field(default=None, compare=False, repr=False)  # cv2
    _dof: int = field(default=0, compare=False, repr=False)

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
        if self._terms is not None:  # only this item's term changed
            self._terms[item] = s.m2 / s.mean ** 2 if s.n > 1 else 0.0
            self._dof += s.n > 1

    def cv2(self) -> float:
        """The pooled squared coefficient of variation. Every completed service changes it,
        and the next take reads it: its sum over the ~190 items is kept per item (`_terms`,
        in the items' order, 0.0 for an item seen once) and summed in that order, so the
        figure is the same, bit for bit, as the plain loop over the items, whether this
        learner observed them or was restored from a snapshot."""
        if self._cv2 is None:
            if self._terms is None:
                self._terms = {k: s.m2 / s.mean ** 2 if s.n > 1 else 0.0
                               for k, s in self.items.items()}
                self._dof = sum(s.n - 1 for s in self.items.values() if s.n > 1)
            acc = sum(self._terms.values(), self.cv0 ** 2 * self.cv_n)
            self._cv2 = acc / (self.cv_n + self._dof)
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

    def mus(self) -> Callable[[str, float], float]:
        """`mu` as it is now, for many items at once and later: what it reads is copied
        here (a simulation in steps asks for every item waiting after services went on).
        The same numbers as `mu`."""
        ratio, half, prior_n = self.ratio(), math.log1p(self.cv2()) / 2, self.prior_n
        seen = {k: (s.n, s.mean) for k, s in self.items.items() if s.n}

        def mu(item: str, standard_minutes: float) -> float:
            prior = standard_minutes * 60.0 * ratio
            s = seen.get(item)
            if s is None:
                return math.log(prior) - half
            n, mean = s
            return math.log((prior * prior_n + mean * n) / (prior_n + n)) - half

        return mu

    def mean_seconds(self, default: float) -> float:
        return self.obs_sum / self.total_n if self.total_n else default


def _slot(centre: Centre, ts: float) -> int:
    t = centre.local_time(ts)
    return min(SLOTS - 1, int((t.hour * 3600 + t.minute * 60 + t.second) / SLOT))


def _quantile(xs: Iterable[float], q: float) -> float:
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


class WaitPredictor:
    def __init__(self, paths: int = 200, seed: int = 0, pause_minutes: float = 10.0,
                 wrap_seconds: float = 15.0, learner: ServiceLearner | None = None,
                 extend: bool = True, eta: float = ETA) -> None:
        self.paths = paths
        self.eta = eta  # 0: the table's factors alone (the offset stays 0)
        self.extend = extend  # False: simulate the whole queue for every take (baseline)
        self.seed = seed
        self.pause = pause_minutes * 60.0
        self.wrap = wrap_seconds
        self.learner = learner or ServiceLearner()
        self._at_window: dict[str, str] = {}  # ticket id -> item, as last seen at a window
        self.hol: dict[frozenset[int], float] = {}  # queue (its windows) -> last call's wait
        self._cache: tuple[tuple[int, float], Forecast] | None = None
        # The forecast standing for the latest state, takes placed into it (kept apart
        # from the pages' one-entry cache), and what happened since it was simulated.
        self.chain = ForecastChain()
        self.simulated = 0  # whole-queue simulations run at once (not in steps)
        self._replaced: Forecast | None = None
        # Time of day (SLOT-second slots, summed over the days seen): open-window seconds,
        # paused-window seconds, and the occupancy brought by priority/appointment arrivals
        # (which go ahead of a normal ticket already waiting).
        self.open_s = np.zeros(SLOTS)
        self.paused_s = np.zeros(SLOTS)
        self.prio_s = np.zeros(SLOTS)
        self._last: float | None = None
        self.avail_weight = 1.0
        self.prio_weight = 0.0  # evaluated: future priority arrivals as lost capacity hurt
        # Each ticket's issue-time prediction: (issued_at, median, simulated 10th and 90th
        # percentiles, the printed lo and hi, the bits of its ends not yet settled). Its
        # first call scores it (`recent_scores`) and settles both ends; before that, an end
        # whose time passes while the ticket still waits is settled then (`deadlines`).
        self.pending: dict[str, Pending] = {}
        # (time, ticket id, LOWER or UPPER): when each printed end passes (a heap).
        self.deadlines: list[tuple[float, str, int]] = []
        # Online calibration (`_settle`, `_next_day`): the log-offset of the table's factor;
        # the day whose settled ends are summed, their sum of (miss - END_MISS) and their
        # count; and the days before it that settled any, with their ends (a mean day).
        self.offset = 0.0
        self.cal_day = ""
        self.day_miss = 0.0
        self.day_ends = 0
        self.cal_days = 0
        self.cal_ends = 0
        # Per band of the predicted wait (Mondrian): short waits err differently.
        self.score_lo: list[deque[float]] = [deque(maxlen=CALIBRATION_N)
                                             for _ in range(len(BANDS) + 1)]
        self.score_hi: list[deque[float]] = [deque(maxlen=CALIBRATION_N)
                                             for _ in range(len(BANDS) + 1)]
        self._serial = 0
        self._config: CentreConfig | None = None  # the centre whose factors are bound
        self._factors = FACTORS["mixed"][0]
        # The class of the centre's load (LOAD_EDGES) the interval's factor is read for: of
        # the state the last `update`, `predict` or `probe` saw (`_bind`).
        self.load_class = 0

    # ---- learning ------------------------------------------------------------------------
    def update(self, centre: Centre, now: float, op: str | None = None) -> None:
        """Learn from what changed since the last call (O(windows + new tickets)); call it
        after every operation, with the operation's time and its `op` (None: unknown, so
        the standing forecast no longer stands: it is simulated again)."""
        self.chain.report(op)
        if centre.day != self.cal_day:
            self._next_day(centre.day)
        self._bind(centre)
        self._profile(centre, now)
        now_at = {w.ticket for w in centre.windows.values() if w.ticket is not None}
        items = centre.catalog.items
        for tid in [k for k in self._at_window if k not in now_at]:
            item = self._at_window.pop(tid)
            t = centre.tickets.get(tid)
            if t is None or t.state is not TicketState.DONE or item not in items:
                continue
            called = called_at(t)
            if called is not None:
                self.learner.observe(item, items[item].minutes, t.history[-1][0] - called)
        for tid in now_at:
            if tid in self._at_window:
                continue
            t = centre.tickets.get(tid)
            if t is None:
                continue
            self._at_window[tid] = t.item
            called = called_at(t)
            first = next((ts for ts, s, _ in t.history if s == "called"), None)
            if called is not None and first == called and t.item in items:
                # Its first call: the head-of-line delay of its queue.
                self.hol[centre._reach.get(t.item, frozenset())] = called - t.issued_at
            p = self.pending.pop(tid, None)
            if p is not None and called is not None:
                issued, med, lo, hi, p_lo, p_hi, open_ends = p
                y = (called - issued) / 60.0
                b = bisect.bisect(BANDS, med)
                # The factor of each half-width the wait needed to be inside; below, the
                # interval ends at 0, which a factor of med / (its half-width) reaches.
                wl = med - lo + SLACK
                self.score_lo[b].append(min((med - y) / wl, med / wl))
                self.score_hi[b].append((y - med) / (hi - med + SLACK))
                if open_ends & LOWER:
                    self._settle(y < p_lo - 1e-9)
                if open_ends & UPPER:
                    self._settle(y > p_hi + 1e-9)
        self._passed(centre, now)
        # A past day's ticket never called (expired at its close) is never scored: its
        # prediction leaves with its day, instead of lingering until 5,000 newer ones push
        # it out (a year's hub held 4,999, ~1.5 MB, nearly all of past days).
        if self.pending and next(iter(self.pending)) not in centre.tickets:
            self.pending = {k: p for k, p in self.pending.items() if k in centre.tickets}
            self.deadlines = [x for x in self.deadlines if x[1] in self.pending]
            heapq.heapify(self.deadlines)

    def _passed(self, centre: Centre, now: float) -> None:
        """Settle the printed ends whose time has passed while their ticket still waits:
        past its upper end it is a miss known now (waiting for the call would learn it a
        whole wait late, and never for a ticket not called before closing); past its lower
        end it is not a miss. A ticket that left uncalled (voided, or gone with its day
        before the end passed) settles nothing: its wait is not known."""
        dl = self.deadlines
        while dl and dl[0][0] <= now:
            _, tid, end = heapq.heappop(dl)
            p = self.pending.get(tid)
            if p is None or not p[6] & end:
                continue
            issued, med, lo, hi, p_lo, p_hi, open_ends = p
            self.pending[tid] = (issued, med, lo, hi, p_lo, p_hi, open_ends & ~end)
            t = centre.tickets.get(tid)
            if t is not None and t.state is TicketState.WAITING:
                self._settle(end == UPPER)

    def _settle(self, miss: bool) -> None:
        """One settled end of a printed interval: summed into the day's (`_next_day`)."""
        self.day_miss += miss - END_MISS
        self.day_ends += 1

    def _next_day(self, day: str) -> None:
        """The first record of `day`: the offset steps by eta x the day before's settled
        misses beyond END_MISS per end, over the tickets (two ends each) a mean day of this
        hub settled, that day included (adaptive conformal inference with the day as the
        step: over D days the share outside comes to 20 % within |offset| / (eta D))."""
        if self.day_ends:
            self.cal_days += 1
            self.cal_ends += self.day_ends
            mean_tickets = self.cal_ends / self.cal_days / 2
            self.offset = min(OFFSET_CAP, max(-OFFSET_CAP, self.offset
                                              + self.eta * self.day_miss / mean_tickets))
        self.cal_day, self.day_miss, self.day_ends = day, 0.0, 0

    def recent_scores(self, med: float) -> list[float]:
        """The recent scores of `med`'s band (at most CALIBRATION_N): the factor of both
        half-widths each of those waits needed to fall inside. Not used by the interval
        (FACTORS is): what a centre's own re-tuning would start from."""
        b = bisect.bisect(BANDS, med)
        return [max(a, c, 0.0) for a, c in zip(self.score_lo[b], self.score_hi[b],
                                                strict=True)]

    def _bind(self, centre: Centre) -> None:
        """The factors of the centre's kind of layout and size (worked out once per
        configuration), and the class of its load now: people waiting per open window
        (O(windows), the queue's length is kept)."""
        if centre.config is not self._config:
            self._config = centre.config
            self._factors = FACTORS[layout_kind(centre.config)][size_class(centre.config)]
        closed, windows = WindowState.CLOSED, centre.windows  # (the enum's lookup, once)
        n_open = len(windows)
        for w in windows.values():
            if w.state is closed:
                n_open -= 1
        self.load_class = bisect.bisect(LOAD_EDGES, len(centre.queue) / max(1, n_open))

    def _scale(self, med: float) -> tuple[float, float]:
        """Multipliers of the half-widths: the factor of the band and the load class (the
        table alone: what admission control judges on, `Estimate.table_alone`), and the
        one printed, that factor times this hub's online offset (`_next_day`; the table's
        when the offset is 0)."""
        s = self._factors[bisect.bisect(BANDS, med)][self.load_class]
        return s, s * math.exp(self.offset)

    def issued(self, t: Ticket, est: Estimate) -> None:
        """Remember a ticket's prediction at issue; scored against its wait when called."""
        if est.reachable:
            self.pending[t.id] = (t.issued_at, est.median, est.raw_lo, est.raw_hi, est.lo,
                                  est.hi, LOWER | UPPER)
            heapq.heappush(self.deadlines, (t.issued_at + est.lo * 60.0, t.id, LOWER))
            heapq.heappush(self.deadlines, (t.issued_at + est.hi * 60.0, t.id, UPPER))
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
        # default_rng's own numbers (it is this PCG64 of this SeedSequence), built without
        # its argument checks: a third of the ~25 us it took on every take
        seq = np.random.SeedSequence(
            [self.seed, zlib.crc32(f"{centre.day}:{version}".encode()), version])
        return np.random.Generator(np.random.PCG64(seq))

    def _model(self) -> Model:
        L = self.learner
        return Model(self.paths, self.wrap, self.pause, L.sigma(), L.mus(), self.capacity())

    def _simulate(self, centre: Centre, now: float, version: int) -> Forecast:
        self.simulated += 1
        steps = self.simulation(centre, now, version)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def simulation(self, centre: Centre, now: float, version: int,
                   chunk: int = 1 << 30) -> Generator[None, None, Forecast]:
        """The forecast at (`version`, `now`), resumable (`paths.simulation`): it yields
        after every `chunk` tickets placed, so a caller in the hub's loop can let other work
        run between (hub/web/livewait.py). Everything read from `centre` is read before the
        first yield: the result is the state at `version` whatever happens meanwhile. Run to
        the end in one go it is `_simulate`, the same numbers."""
        return simulation(centre, now, version, self._model(),
                          self._rng(centre, version), chunk)

    def _summary(self, starts: np.ndarray, now: float) -> Estimate:
        if not np.isfinite(starts).all():
            return NO_WINDOW
        w = np.maximum(starts - now, 0.0) / 60.0
        lo, med, hi = _percentiles(np.sort(w), (0.1, 0.5, 0.9))
        s, a = self._scale(med)
        w_lo, w_hi = med - lo + SLACK, hi - med + SLACK
        return Estimate(med, float(w.mean()), max(0.0, med - a * w_lo), med + a * w_hi,
                        lo, hi, max(0.0, med - s * w_lo), med + s * w_hi)

    def predict(self, centre: Centre, t: Ticket, now: float, version: int) -> Estimate:
        """A waiting ticket's wait from `now` (at state `version`). A ticket just taken is
        placed into the standing forecast (`_place`: bounded time, whatever the queue's
        length); a ticket the standing forecast holds (a page, a reprint) is read from it
        while it stands (`ForecastChain.fresh`); otherwise the queue is simulated (a page
        outside the hub's loop, a tool)."""
        self._bind(centre)
        if self.extend:
            fc = self.known(version, now)
            if fc is None or t.id not in fc.starts:
                fc = self.chain.fresh(version, now)
            if fc is not None and t.id in fc.starts:
                return self._summary(fc.starts[t.id], now)
            ch = self.chain.usable(centre.day, version, now)
            if ch is not None and t.state is TicketState.WAITING and t.id not in ch.fc.starts:
                return self._summary(self._place(centre, t, now, version), now)
        fc = self.forecast(centre, now, version)
        if self.extend:
            self.chain.set(fc, version)
        st = fc.starts.get(t.id)
        if st is None:  # not waiting
            return Estimate(0.0, 0.0, 0.0, 0.0)
        return self._summary(st, now)

    def _place(self, centre: Centre, t: Ticket, now: float, version: int) -> np.ndarray:
        """Put a ticket just taken into the standing forecast: its occupancy drawn as the
        simulation draws it (from this position's generator), placed at the end of the
        order or before the ticket that follows it in dispatch order (`chain.successor`)."""
        items, L = centre.catalog.items, self.learner
        sigma = L.sigma()
        z = self._rng(centre, version).standard_normal(self.paths)
        mu = L.mu(t.item, items[t.item].minutes) if t.item in items else math.log(300.0)
        occ = np.exp(mu + sigma * z) + self.wrap
        for extra in t.extra_items:
            if extra in items:
                occ = occ + 0.8 * math.exp(L.mu(extra, items[extra].minutes) + sigma ** 2 / 2)
        cap = self.capacity()[0 if t.priority is Priority.NORMAL else 1]
        ch = self.chain.chain
        if self._cache is not None and ch is not None and self._cache[1] is ch.fc:
            self._cache = None  # it changes in place: the pages' entry was of before
        take = Take(self.chain.n, version, now, t.id, centre.reach(t), occ, cap,
                    successor(centre, t, now), odd=t.issued_at != now)
        return self.chain.place(take)

    def probe(self, centre: Centre, item: str, now: float, version: int) -> Estimate:
        """The wait of a resident who took a ticket for `item` now (after everyone waiting)."""
        fc = self._reuse(version, now) or self.forecast(centre, now, version)
        return self.probe_in(fc, centre, item, now)

    def _reuse(self, version: int, now: float) -> Forecast | None:
        """The chained forecast for a page asking a few seconds apart while only what it
        expects has happened: the same queue needs no second simulation."""
        fc = self.chain.fresh(version, now) if self.extend else None
        if fc is None or abs(now - fc.now) > REUSE_AGE:
            return None
        return fc

    def known(self, version: int, now: float) -> Forecast | None:
        """A forecast that `probe` and `predict` would read at (`version`, `now`) without
        simulating: the cached one, or the chained one still standing."""
        if self._cache is not None and self._cache[0] == (version, now):
            return self._cache[1]
        return self._reuse(version, now)

    def adopt(self, fc: Forecast, version: int, now: float) -> None:
        """A forecast simulated at (`version`, `now`) by a caller running `simulation` in
        steps, `version` still the latest position reported to `update`: later reads find
        it, and takes are placed into it, as if `predict` had simulated it."""
        self._cache = ((version, now), fc)
        self.chain.set(fc, version)

    # ---- the background refresh (driven by hub/forecast/refresh.py) -----------------------
    def refresh_due(self, centre: Centre, now: float) -> bool:
        """Whether the standing forecast should be simulated again (stale: `chain.due`)."""
        return self.extend and self.chain.due(centre.day, now)

    def refresh_at(self) -> float:
        """When a refresh falls due by age alone (-inf: it may be due already)."""
        return self.chain.due_at() if self.extend else INF

    def refresh(self, centre: Centre, now: float, version: int,
                chunk: int = REFRESH_SLICE) -> Refresh:
        """A simulation of the state at `version` (the latest reported), read here, to run
        in steps (`Refresh.steps`: after reading, after ordering, then every `chunk`
        tickets) and then `land`."""
        steps = simulation(centre, now, version, self._model(),
                           self._rng(centre, version), chunk, fine=True)
        return self.chain.begin(version, now, centre.day, steps)

    def current(self, r: Refresh) -> bool:
        """Whether `r` may still land (nothing unexpected happened since it began)."""
        return self.chain.current(r)

    def land(self, r: Refresh, fc: Forecast, centre: Centre) -> bool:
        """Adopt the forecast `r` ran to (`fc`) if it still stands for the state: the tickets
        taken since it began placed into it again (`ForecastChain.land`)."""
        old = self.chain.chain
        if not self.chain.land(r, fc, centre.day):
            return False
        if self._cache is not None and self._cache[0][0] < r.version:
            self._cache = None
        if old is not None and (self._cache is None or self._cache[1] is not old.fc):
            self._replaced = old.fc
        return True

    def replaced(self) -> Forecast | None:
        """The forecast the last `land` replaced, if nothing here holds it any more: the
        caller frees it (thousands of arrays with a long queue: half a millisecond at
        once)."""
        fc, self._replaced = self._replaced, None
        return fc

    def wait_in(self, fc: Forecast, ticket_id: str, now: float) -> Estimate | None:
        """A waiting ticket's wait read from `fc` (None: `fc` does not know the ticket)."""
        st = fc.starts.get(ticket_id)
        return None if st is None else self._summary(st, now)

    def probe_in(self, fc: Forecast, centre: Centre, item: str, now: float) -> Estimate:
        """`probe` read from a given forecast."""
        self._bind(centre)
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
    Left out: the forecast caches (`_cache`, `chain`), which a replay does not
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
        "deadlines": [list(x) for x in p.deadlines],
        "calibration": {"offset": p.offset, "day": p.cal_day, "day_miss": p.day_miss,
                        "day_ends": p.day_ends, "days": p.cal_days, "ends": p.cal_ends},
        "load_class": p.load_class,
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
    # A snapshot from before the online calibration holds (issued, median, lo, hi): its
    # printed ends are unknown, so they are never settled.
    p.pending = {k: (v[0], v[1], v[2], v[3], v[4], v[5], int(v[6])) if len(v) == 7
                 else (v[0], v[1], v[2], v[3], 0.0, INF, 0) for k, v in d["pending"].items()}
    p.deadlines = [(float(a), str(k), int(e)) for a, k, e in d.get("deadlines", [])]
    heapq.heapify(p.deadlines)
    # A snapshot from before the calibration by day (its per-band "offset" was 0 on every
    # hub: the step per ticket was off) starts it afresh.
    cal = d.get("calibration", {})
    offset, day_miss = float(cal.get("offset", 0.0)), float(cal.get("day_miss", 0.0))
    counts = int(cal.get("day_ends", 0)), int(cal.get("days", 0)), int(cal.get("ends", 0))
    if not (math.isfinite(offset) and math.isfinite(day_miss)) or min(counts) < 0:
        raise ValueError(f"predictor calibration out of range: {cal!r}")
    p.offset = min(OFFSET_CAP, max(-OFFSET_CAP, offset))
    p.cal_day, p.day_miss = str(cal.get("day", "")), day_miss
    p.day_ends, p.cal_days, p.cal_ends = counts
    # A snapshot from before the load classes: class 0 until the next update or prediction
    # works it out from the centre again (`_bind`).
    p.load_class = int(d.get("load_class", 0))
    p.score_lo = [deque(x, maxlen=CALIBRATION_N) for x in d["score_lo"]]
    p.score_hi = [deque(x, maxlen=CALIBRATION_N) for x in d["score_hi"]]
    p._serial = d["serial"]
    p._cache = None
    p.chain = ForecastChain(on_stale=p.chain.on_stale)
