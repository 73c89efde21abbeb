"""What a centre's day scores: waits, queues, throughput, one-window and one-trip rates.

One home for the day's statistics: `onewindow sim` scores the engine's days with
`day_metrics`, and `onewindow demo` shows a live hub's day so far with `tally`; both read
waits through `Waits`.

* wait: minutes from taking the ticket to its first call (every called ticket).
* longest queue: most tickets waiting at once.
* share of time any queue > 3: windows with identical skills form a pool, each item waits
  in its pool (a specialised item in its specialised pool); a pool's queue is its waiting
  tickets per open window. The share is of the time any window was open.
* throughput: residents served per opening hour.
* one-window rate: of the items served, the share served at the first window the ticket was
  called to (no transfer to another window).
* one-trip rate (一次办成率): of the residents whose visit ended at a window (done, or
  returned for a missing material), the share done on their first trip there: not
  returned, and not back after an earlier return (hub/sim/prereview.py). Residents the
  kiosk's pre-review sent away before a ticket waited for nothing: they count when they
  come back, as a first trip.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..core import measures
from ..core import model as core_model
from ..core.centre import Centre
from ..core.model import Ticket, TicketState, WindowState
from .model import DayInfo, Visit, Weather, at_local

QUEUE_LIMIT = 3


class QueueMonitor:
    """Waiting tickets per pool over time, updated by the engine on every queue change."""

    __slots__ = ("away_now", "breaks", "counts", "last", "last_close", "line_longest",
                 "line_of", "line_series", "lines", "longest", "open", "open_time", "over",
                 "over_time", "pool_of", "series", "total", "window_pool", "windows")

    def __init__(self, pools: list[list[int]], pool_of: dict[str, int], start: float,
                 line_of: dict[str, str] | None = None) -> None:
        self.pool_of = pool_of
        # per department line (`line_of`: item -> line): people waiting for it, the most at
        # once, and its changes (ts, waiting) for the per-line figures
        self.line_of = line_of or {}
        self.lines: dict[str, int] = {}
        self.line_longest: dict[str, int] = {}
        self.line_series: dict[str, list[tuple[float, int]]] = {}
        self.window_pool = {n: i for i, p in enumerate(pools) for n in p}
        self.counts = [0] * len(pools)
        self.open = [0] * len(pools)
        self.windows = 0
        self.total = 0
        self.last = start
        self.over = False
        self.over_time = 0.0
        self.open_time = 0.0
        self.longest = 0
        self.last_close: float | None = None
        self.series: list[tuple[float, int, int]] = []  # (ts, waiting, open windows)
        # open windows whose clerk is on a break (lunch, a short pause): (ts, how many)
        self.away_now = 0
        self.breaks: list[tuple[float, int]] = []

    def _tick(self, now: float) -> None:
        span = now - self.last
        if self.windows:
            self.open_time += span
            if self.over:
                self.over_time += span
        self.last = now

    def _settle(self, now: float) -> None:
        self.over = any(c > QUEUE_LIMIT * max(1, o) for c, o in zip(self.counts, self.open,
                                                                     strict=True))
        if self.total > self.longest:
            self.longest = self.total
        self.series.append((now, self.total, self.windows))

    def _line(self, now: float, item: str, delta: int) -> None:
        line = self.line_of.get(item)
        if line is None:
            return
        n = self.lines.get(line, 0) + delta
        self.lines[line] = n
        if n > self.line_longest.get(line, 0):
            self.line_longest[line] = n
        self.line_series.setdefault(line, []).append((now, n))

    def add(self, now: float, item: str) -> None:
        self._tick(now)
        self.counts[self.pool_of.get(item, 0)] += 1
        self.total += 1
        self._line(now, item, +1)
        self._settle(now)

    def remove(self, now: float, item: str) -> None:
        self._tick(now)
        self.counts[self.pool_of.get(item, 0)] -= 1
        self.total -= 1
        self._line(now, item, -1)
        self._settle(now)

    def window(self, now: float, n: int, delta: int) -> None:
        self._tick(now)
        self.open[self.window_pool[n]] += delta
        self.windows += delta
        if delta < 0:
            self.last_close = now
        self._settle(now)

    def away(self, now: float, delta: int) -> None:
        """A clerk at an open window goes on a break (+1) or comes back (-1)."""
        self.away_now += delta
        self.breaks.append((now, self.away_now))

    def backlog(self, opened: float) -> int:
        """Most tickets waiting up to a minute after the windows opened (a drill's backlog)."""
        return max((waiting for ts, waiting, _ in self.series if ts <= opened + 60), default=0)

    def cleared_at(self, after: float) -> float | None:
        """First time from `after` on when the waiting tickets were at most 3 per open window."""
        for ts, waiting, n in self.series:
            if ts >= after and n and waiting <= QUEUE_LIMIT * n:
                return ts
        return None


@dataclass(slots=True)
class DayMetrics:
    visits: float = 0
    served: float = 0
    no_show: float = 0
    expired: float = 0
    rejected: float = 0
    mean_wait: float = 0.0  # minutes
    median_wait: float = 0.0
    p90_wait: float = 0.0
    max_wait: float = 0.0
    longest_queue: float = 0  # people waiting in the hall at once, the most
    share_over3: float = 0.0  # of open time (some pool over 3 per open window)
    # people waiting in the hall (every waiting ticket, whatever its line), over the time
    # from the windows' opening to the last one's closing: the time-weighted mean and 90th
    # percentile, and the share of that time more than 3 waited (the seeds' 排队不超过3人)
    hall_mean: float = 0.0
    hall_p90: float = 0.0
    hall_over3: float = 0.0
    line_longest: float = 0  # the most people waiting at once for one department line
    throughput: float = 0.0  # served per opening hour
    one_window: float = 0.0
    one_trip: float = 0.0
    last_close: float = 0.0  # minutes after 17:00 the last window closed (overtime)
    operations: float = 0  # core operations applied
    # admission control (hub/sim/admission.py): residents refused and offered a booking
    # ("stop"), warned and gone ("warn"); tickets still waiting at closing time (not yet
    # called then), and residents served whose first call came after closing
    turned_away: float = 0
    left_warned: float = 0
    waiting_at_close: float = 0
    served_after_close: float = 0
    # bookings and remote tickets (hub/sim/bookings.py): bookings made, checked in within
    # the window (an appointment ticket; early arrivals who came back included), late (a
    # normal ticket), never came; slots full with no other left (came as walk-ins); remote
    # tickets taken, and of them never came; the notices journaled as due by kind; mean
    # minutes from check-in to first call of the appointment tickets, and from taking the
    # ticket to its first call of the walk-ins' tickets (neither booked nor remote)
    booked: float = 0
    checked_in: float = 0
    late_checkins: float = 0
    booking_no_show: float = 0
    booking_full: float = 0
    remote: float = 0
    remote_missed: float = 0
    notices_near: float = 0
    notices_called: float = 0
    appointment_wait: float = 0.0
    walkin_wait: float = 0.0
    # pre-review (hub/sim/prereview.py): residents the kiosk sent away to fetch a missing
    # material (wasted waits avoided), who took a ticket anyway, returned at the window
    # for materials, and came back today after being sent away on an earlier day
    kiosk_left: float = 0
    queued_anyway: float = 0
    returned: float = 0
    comebacks: float = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def timed_stats(series: list[tuple[float, int]], start: float, end: float,
                limit: int = QUEUE_LIMIT) -> tuple[float, float, float, int]:
    """A step series of (ts, value) changes (0 before the first), over [start, end):
    (time-weighted mean, time-weighted 90th percentile, share of the time above `limit`,
    the largest value held in it)."""
    if end <= start:
        return 0.0, 0.0, 0.0, 0
    spans: dict[int, float] = {}
    value, t = 0, start
    for ts, v in series:
        if ts >= end:
            break
        if ts > t:
            spans[value] = spans.get(value, 0.0) + ts - t
            t = ts
        value = v
    spans[value] = spans.get(value, 0.0) + end - t
    spans = {v: d for v, d in spans.items() if d > 0} or {value: end - start}
    total = end - start
    mean = sum(v * d for v, d in spans.items()) / total
    acc, p90 = 0.0, 0
    for v in sorted(spans):
        acc += spans[v]
        p90 = v
        if acc >= 0.9 * total - 1e-9:
            break
    over = sum(d for v, d in spans.items() if v > limit) / total
    return mean, float(p90), over, max(spans)


def hall_series(m: QueueMonitor) -> list[tuple[float, int]]:
    """People waiting in the hall, as (ts, waiting) changes."""
    return [(ts, waiting) for ts, waiting, _ in m.series]


def percentile(xs: list[float], p: float) -> float:
    """The core's nearest-rank percentile (p in 0..100), 0.0 for no values: a score."""
    v = measures.percentile(xs, p)
    return 0.0 if v is None else v


def first_call(t: Ticket) -> float | None:
    """When the ticket was first called (the core's `first_call`), None if never."""
    fc = core_model.first_call(t)
    return None if fc is None else fc[0]


def _called_at(t: Ticket) -> float:
    fc = first_call(t)
    return math.inf if fc is None else fc


@dataclass(frozen=True, slots=True)
class Waits:
    """Minutes from taking a ticket to its first call, of every ticket called."""

    minutes: list[float]

    @classmethod
    def of(cls, tickets: Iterable[Ticket]) -> Waits:
        return cls([w for t in tickets if (w := measures.wait_minutes(t)) is not None])

    def __len__(self) -> int:
        return len(self.minutes)

    @property
    def mean(self) -> float:
        return sum(self.minutes) / len(self.minutes) if self.minutes else 0.0

    @property
    def longest(self) -> float:
        return max(self.minutes, default=0.0)

    def percentile(self, p: float) -> float:
        return percentile(self.minutes, p)


@dataclass(slots=True)
class DayResult:
    """What a simulated day leaves (`Engine.run_day`, `Day.result`), to be scored."""

    date: dt.date
    info: DayInfo
    weather: Weather
    layout: str
    windows: int
    visits: list[Visit]
    tickets: dict[str, Ticket]
    monitor: QueueMonitor
    opened: float
    closed: float
    operations: int
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> DayMetrics:
        return day_metrics(self)


def day_metrics(r: DayResult) -> DayMetrics:
    waits = Waits.of(r.tickets.values())
    outcomes: dict[str, int] = {}
    items = first = 0
    for v in r.visits:
        outcomes[v.outcome] = outcomes.get(v.outcome, 0) + 1
        if v.windows:
            for w in v.served.values():
                items += 1
                first += w == v.windows[0]
    done_first = sum(1 for v in r.visits if v.outcome == "done" and not v.after_return)
    at_window = outcomes.get("done", 0) + outcomes.get("incomplete", 0)
    ahead = r.extra.get("ahead") or {}
    appointment = Waits.of(r.tickets[v.ticket] for v in r.visits
                           if v.ahead == "booked" and v.ticket in r.tickets
                           and r.tickets[v.ticket].priority.value == "appointment")
    walkin = Waits.of(r.tickets[v.ticket] for v in r.visits
                      if not v.ahead and v.ticket in r.tickets)
    hours = max(1e-9, (r.closed - r.opened) / 3600.0)
    close17 = at_local(r.date, dt.time(17, 0))
    closing = float(r.extra.get("close_at", close17))
    late_calls = {tid for tid, t in r.tickets.items()
                  if t.issued_at < closing and _called_at(t) >= closing}
    end = max(r.closed, r.opened)
    hall_mean, hall_p90, hall_over3, _ = timed_stats(hall_series(r.monitor), r.opened, end)
    return DayMetrics(
        visits=len(r.visits),
        served=outcomes.get("done", 0) + outcomes.get("incomplete", 0),
        no_show=outcomes.get("no_show", 0),
        expired=outcomes.get("expired", 0),
        rejected=outcomes.get("rejected", 0),
        mean_wait=waits.mean,
        median_wait=waits.percentile(50),
        p90_wait=waits.percentile(90),
        max_wait=waits.longest,
        longest_queue=r.monitor.longest,
        share_over3=r.monitor.over_time / r.monitor.open_time if r.monitor.open_time else 0.0,
        hall_mean=hall_mean,
        hall_p90=hall_p90,
        hall_over3=hall_over3,
        line_longest=max(r.monitor.line_longest.values(), default=0),
        throughput=(outcomes.get("done", 0) + outcomes.get("incomplete", 0)) / hours,
        one_window=first / items if items else 1.0,
        one_trip=done_first / at_window if at_window else 1.0,
        last_close=max(0.0, ((r.monitor.last_close or close17) - close17) / 60.0),
        operations=r.operations,
        turned_away=outcomes.get("turned_away", 0),
        left_warned=outcomes.get("left_warned", 0),
        waiting_at_close=len(late_calls),
        served_after_close=sum(1 for v in r.visits if v.ticket in late_calls
                               and v.outcome in ("done", "incomplete")),
        booked=ahead.get("booked", 0),
        checked_in=ahead.get("checked_in", 0),
        late_checkins=ahead.get("late", 0),
        booking_no_show=ahead.get("no_show", 0),
        booking_full=ahead.get("booking_full", 0),
        remote=ahead.get("remote", 0),
        remote_missed=ahead.get("remote_missed", 0),
        notices_near=ahead.get("notices_near", 0),
        notices_called=ahead.get("notices_called", 0),
        appointment_wait=appointment.mean,
        walkin_wait=walkin.mean,
        kiosk_left=outcomes.get("kiosk_left", 0),
        queued_anyway=sum(1 for v in r.visits if v.ticket in r.tickets
                          and (r.tickets[v.ticket].review or {}).get("insisted")),
        returned=sum(1 for t in r.tickets.values() if t.returned),
        comebacks=sum(1 for v in r.visits if v.trip > 1),
    )


def mean_metrics(ms: list[DayMetrics]) -> DayMetrics:
    """Field-wise mean over days or seeds."""
    out = DayMetrics()
    if not ms:
        return out
    for f in fields(DayMetrics):
        setattr(out, f.name, sum(getattr(m, f.name) for m in ms) / len(ms))
    return out


@dataclass(frozen=True, slots=True)
class Tally:
    """A centre's day so far, from its tickets (what the demo's screen and summary show)."""

    issued: int
    served: int  # tickets done
    no_show: int
    waiting: int
    longest_waiting: float  # minutes, of the tickets still waiting
    open_windows: int
    waits: Waits


def tally(centre: Centre, now: float) -> Tally:
    served = no_show = 0
    for t in centre.tickets.values():
        if t.state is TicketState.DONE:
            served += 1
        elif t.state is TicketState.NO_SHOW:
            no_show += 1
    waiting = list(centre.queue)
    longest = max(((now - t.issued_at) / 60.0 for t in waiting), default=0.0)
    open_windows = sum(w.state is not WindowState.CLOSED for w in centre.windows.values())
    return Tally(len(centre.tickets), served, no_show, len(waiting), longest, open_windows,
                 Waits.of(centre.tickets.values()))
