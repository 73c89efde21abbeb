"""Diversion (分流, issue 20): which nearby centre is less busy now, and which nearest
centre has a free booking slot. Pure: the adapter (hub/city/link.py) hands in what the
neighbours last published (`Waits`, over the city's NATS) and the clock.

A centre publishes its `Waits` every few seconds: per line (条线) how many wait and the
minutes a ticket taken now would wait (people_ahead.estimate_new's work over the open
windows: cheap, no simulation), and each line's next free booking slot. A neighbour whose
last word is older than `stale_s` is left out (it is cut off, or closed): diversion never
sends a resident to a centre it cannot vouch for.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import booking, people_ahead

if TYPE_CHECKING:
    from .state import CentreState

STALE_S = 60.0  # a neighbour's waits older than this are not shown
SHORTER_BY = 10.0  # minutes: "less busy" means at least this much shorter


@dataclass(frozen=True, slots=True)
class LineWait:
    waiting: int
    minutes: float | None  # None: no open window serves the line now
    next_free: float | None = None  # the line's next free booking slot (epoch s)


@dataclass(frozen=True, slots=True)
class Waits:
    centre: str
    at: float
    lines: dict[str, LineWait] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)  # zh, en, zh_tw
    url: str = ""  # the centre's public web address (its booking page)

    def to_dict(self) -> dict[str, Any]:
        return {"centre": self.centre, "at": self.at, "name": self.name, "url": self.url,
                "lines": {k: [v.waiting, v.minutes, v.next_free]
                          for k, v in self.lines.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Waits:
        lines = {}
        for k, (n, m, f) in d["lines"].items():
            lines[str(k)] = LineWait(int(n), None if m is None else float(m),
                                     None if f is None else float(f))
        return cls(str(d["centre"]), float(d["at"]), lines,
                   {str(k): str(v) for k, v in (d.get("name") or {}).items()},
                   str(d.get("url") or ""))


@dataclass(frozen=True, slots=True)
class Neighbour:
    centre: str
    km: float


@dataclass(frozen=True, slots=True)
class Nearby:
    centre: str
    km: float
    name: dict[str, str]
    url: str
    waiting: int
    minutes: float | None  # the shortest line wait there (None: nothing open)
    shorter: bool  # at least SHORTER_BY minutes shorter than here


def own_waits(state: CentreState, now: float, url: str = "",
              slots: dict[str, float | None] | None = None) -> Waits:
    """This centre's waits now, per line: the shortest of its items' estimates; each
    line's next free booking slot from `slots` when given (`free_slots`: it walks the
    bookings, so the adapter works it out less often than the waits)."""
    lines: dict[str, LineWait] = {}
    by_line: dict[str, list[str]] = {}
    for item in state.catalog.items.values():
        by_line.setdefault(item.line, []).append(item.id)
    q = state.queue.by_item
    for line, items in by_line.items():
        waiting = sum(q.get(i, 0) for i in items)
        best: float | None = None
        for i in items:
            if i not in state._servable:
                continue
            est = people_ahead.estimate_new(state, i, now)
            if est is not None and math.isfinite(est[1]):
                best = est[1] if best is None else min(best, est[1])
        free = (slots.get(line) if slots is not None
                else free_slots(state, now, (line,)).get(line))
        lines[line] = LineWait(waiting, None if best is None else round(best, 1), free)
    name = state.catalog.name
    return Waits(state.config.centre_id, now, lines,
                 {"zh": name.zh, "en": name.en, "zh_tw": name.traditional}, url)


def free_slots(state: CentreState, now: float, lines: tuple[str, ...] | None = None
               ) -> dict[str, float | None]:
    """Each line's next free booking slot (None: none within the days bookings are open)."""
    out: dict[str, float | None] = {}
    for line in lines if lines is not None else tuple(state.catalog.lines):
        free = booking.next_free(state, line, now, now) if booking.capacity(state, line) \
            else []
        out[line] = free[0] if free else None
    return out


def overall(w: Waits) -> tuple[int, float | None]:
    """(people waiting, the shortest line wait) of a centre."""
    mins = [v.minutes for v in w.lines.values() if v.minutes is not None]
    return sum(v.waiting for v in w.lines.values()), (min(mins) if mins else None)


def nearby(own: Waits | None, neighbours: list[Neighbour], heard: dict[str, Waits],
           now: float, stale_s: float = STALE_S) -> list[Nearby]:
    """The neighbours heard from lately, nearest first, each flagged when less busy."""
    mine = overall(own)[1] if own is not None else None
    out = []
    for n in sorted(neighbours, key=lambda n: (n.km, n.centre)):
        w = heard.get(n.centre)
        if w is None or now - w.at > stale_s:
            continue
        waiting, minutes = overall(w)
        shorter = minutes is not None and (mine is None or minutes + SHORTER_BY <= mine)
        out.append(Nearby(n.centre, n.km, w.name, w.url, waiting, minutes, shorter))
    return out


@dataclass(frozen=True, slots=True)
class FreeSlot:
    centre: str
    km: float
    slot: float
    name: dict[str, str]
    url: str


def nearest_free(line: str, own: Waits, neighbours: list[Neighbour],
                 heard: dict[str, Waits], now: float, stale_s: float = STALE_S
                 ) -> FreeSlot | None:
    """The nearest centre (this one first, at 0 km) with a free booking slot of `line`;
    among equally near ones the earliest slot."""
    cands = [(0.0, own)] + [(n.km, heard[n.centre]) for n in neighbours
                            if n.centre in heard and now - heard[n.centre].at <= stale_s]
    best: FreeSlot | None = None
    for km, w in cands:
        lw = w.lines.get(line)
        if lw is None or lw.next_free is None or lw.next_free < now:
            continue
        if best is None or (km, lw.next_free) < (best.km, best.slot):
            best = FreeSlot(w.centre, km, lw.next_free, w.name, w.url)
    return best


def local_hhmm(at: float, utc_offset_minutes: int) -> str:
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    return dt.datetime.fromtimestamp(at, tz).strftime("%m-%d %H:%M")
