"""What a simulated day scores: waits, queues, throughput, one-window and one-trip rates.

* wait: minutes from taking the ticket to its first call (every called ticket).
* longest queue: most tickets waiting at once.
* share of time any queue > 3: windows with identical skills form a pool, each item waits
  in its pool (a specialised item in its specialised pool); a pool's queue is its waiting
  tickets per open window. The share is of the time any window was open.
* throughput: residents served per opening hour.
* one-window rate: of the items served, the share served at the first window the ticket was
  called to (no transfer to another window).
* one-trip rate: of the residents who took a ticket, the share whose business was done on
  this visit (not: without a required material, gone when called, still waiting at close).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import DayResult

QUEUE_LIMIT = 3


class QueueMonitor:
    """Waiting tickets per pool over time, updated by the engine on every queue change."""

    __slots__ = ("counts", "last", "last_close", "longest", "open", "open_time",
                 "over", "over_time", "pool_of", "series", "total", "window_pool", "windows")

    def __init__(self, pools: list[list[int]], pool_of: dict[str, int], start: float) -> None:
        self.pool_of = pool_of
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

    def add(self, now: float, item: str) -> None:
        self._tick(now)
        self.counts[self.pool_of.get(item, 0)] += 1
        self.total += 1
        self._settle(now)

    def remove(self, now: float, item: str) -> None:
        self._tick(now)
        self.counts[self.pool_of.get(item, 0)] -= 1
        self.total -= 1
        self._settle(now)

    def window(self, now: float, n: int, delta: int) -> None:
        self._tick(now)
        self.open[self.window_pool[n]] += delta
        self.windows += delta
        if delta < 0:
            self.last_close = now
        self._settle(now)

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
    p90_wait: float = 0.0
    max_wait: float = 0.0
    longest_queue: float = 0
    share_over3: float = 0.0  # of open time
    throughput: float = 0.0  # served per opening hour
    one_window: float = 0.0
    one_trip: float = 0.0
    last_close: float = 0.0  # minutes after 17:00 the last window closed (overtime)
    operations: float = 0  # core operations applied

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def first_call(t: Any) -> float | None:
    for ts, state, _w in t.history:
        if state == "called":
            return float(ts)
    return None


def day_metrics(r: DayResult) -> DayMetrics:
    waits = []
    for t in r.tickets.values():
        fc = first_call(t)
        if fc is not None:
            waits.append((fc - t.issued_at) / 60.0)
    outcomes: dict[str, int] = {}
    items = first = 0
    for v in r.visits:
        outcomes[v.outcome] = outcomes.get(v.outcome, 0) + 1
        if v.windows:
            for w in v.served.values():
                items += 1
                first += w == v.windows[0]
    took = len(r.visits) - outcomes.get("rejected", 0)
    hours = max(1e-9, (r.closed - r.opened) / 3600.0)
    close17 = dt.datetime.combine(r.date, dt.time(17, 0),
                                  dt.timezone(dt.timedelta(hours=8))).timestamp()
    return DayMetrics(
        visits=len(r.visits),
        served=outcomes.get("done", 0) + outcomes.get("incomplete", 0),
        no_show=outcomes.get("no_show", 0),
        expired=outcomes.get("expired", 0),
        rejected=outcomes.get("rejected", 0),
        mean_wait=sum(waits) / len(waits) if waits else 0.0,
        p90_wait=percentile(waits, 90),
        max_wait=max(waits, default=0.0),
        longest_queue=r.monitor.longest,
        share_over3=r.monitor.over_time / r.monitor.open_time if r.monitor.open_time else 0.0,
        throughput=(outcomes.get("done", 0) + outcomes.get("incomplete", 0)) / hours,
        one_window=first / items if items else 1.0,
        one_trip=outcomes.get("done", 0) / took if took else 1.0,
        last_close=max(0.0, ((r.monitor.last_close or close17) - close17) / 60.0),
        operations=r.operations,
    )


def mean_metrics(ms: list[DayMetrics]) -> DayMetrics:
    """Field-wise mean over days or seeds."""
    out = DayMetrics()
    if not ms:
        return out
    for f in fields(DayMetrics):
        setattr(out, f.name, sum(getattr(m, f.name) for m in ms) / len(ms))
    return out
