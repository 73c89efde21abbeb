"""Which forecast of the queue stands for the hub's latest state, and keeping it fresh off the
reply path (the bookkeeping behind WaitPredictor; pure: no clock, no loop).

A forecast simulated at one journal position (`paths.simulation`) serves later takes and
pages while only what it expects happens (EXPECTED: residents called and served in dispatch
order, bookkeeping): each take is placed into it (`paths.place`) in bounded time, at the end
of the order or before the ticket that follows it in dispatch order. It is simulated again
in the background (hub/forecast/refresh.py runs `Refresh.steps` in slices between the hub's
messages) when it is stale: older than REFRESH_AGE or REFRESH_RECORDS, or no longer exact (a
ticket placed before others, a window opened, closed or paused, a ticket skipped,
transferred or voided). Until the new one lands, takes are placed into the stale one.

A refresh reads the state at the position it starts from, while the hub goes on. It lands
only if nothing it does not expect happened meanwhile, and then the tickets taken meanwhile
are placed into it again (`Take`: the same occupancy draws, the same order), so that the
chain is what a refresh run at once at that position and the same takes would have given.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from ..core.centre import Centre
from ..core.model import Priority, Ticket
from .paths import (
    Forecast,
    columns,
    dispatch_order,
    goes_first,
    own_window_kinds,
    place,
    specialised_first,
)

# A chain serves pages for at most this long and this many records after its simulation
# (pages: `fresh`); takes are placed into it whatever its age.
EXTEND_AGE = 30.0  # s
EXTEND_RECORDS = 100
REUSE_AGE = 5.0  # s: a page asking a few seconds before or after reads the same forecast
# ... and the background refresh simulates the queue again once it is this old.
REFRESH_AGE = 10.0  # s
REFRESH_RECORDS = 50
# ... but records alone make it stale (and end its use by pages, EXTEND_RECORDS) only once it
# is this old: a forecast is about minutes, and a burst of 300 calls a second would otherwise
# simulate the whole queue six times a second (~12 % of the hub's time with 600 waiting,
# measured in tools/bench/bench_hub.py) for estimates no person could tell apart.
RECORDS_MIN_AGE = 1.0  # s
# A chain this old is not placed into: nothing refreshes it (a tool driving the predictor
# without hub/forecast/refresh.py), so the take simulates the queue at once instead.
PLACE_AGE = 120.0  # s
EXPECTED = frozenset({
    "take",  # each take is placed into the forecast (`place`)
    "call", "recall", "start", "complete",  # residents served in dispatch order
    "rate", "help", "help_answer", "scan", "card", "reserve", "reprint",  # no queue change
})


def _nothing() -> None:
    pass


@dataclass(slots=True)
class Chain:
    fc: Forecast  # simulated, then every ticket taken since placed into it
    version: int  # the latest journal position it stands for
    n: int  # operations reported to `update` at that position
    born: int  # ... at the position it was simulated at
    exact: bool = True  # False once a ticket was placed before others


@dataclass(slots=True)
class Take:
    """A ticket placed into the chain, kept to be placed again into a refresh that lands."""

    n: int  # operations reported when it was taken
    version: int
    now: float
    ticket: str
    reach: frozenset[int]  # the windows that may serve it
    occ: np.ndarray  # its occupancy per path (s)
    cap: np.ndarray  # the capacity by time of day it is divided by
    succ: str | None  # the ticket after it in dispatch order; None: it is the last
    odd: bool = False  # an offline ticket (pressed earlier; it may void another)


@dataclass(slots=True)
class Refresh:
    """A simulation of the queue that a caller runs in steps (`steps`), then `land`s."""

    version: int
    now: float
    n: int  # operations reported when it read the state
    day: str
    steps: Generator[None, None, Forecast]


def successor(centre: Centre, t: Ticket, now: float) -> str | None:
    """The ticket placed right after waiting ticket `t` in a simulation of the queue
    (specialised items first, then dispatch order); None when `t` is the last. O(1) for a
    normal ticket (the newest) or a priority one (the newest) with no appointment waiting;
    otherwise one pass over the queue's order."""
    q, items = centre.queue, centre.catalog.items
    kinds: frozenset[str] | None = None  # own_window_kinds, read once a specialised item asks

    def plain(u: Ticket) -> bool:
        nonlocal kinds
        it = items.get(u.item)
        if it is None or not it.specialised:
            return True
        if kinds is None:
            kinds = own_window_kinds(centre)
        return not goes_first(centre, u.item, kinds)

    policy = centre.policy
    if plain(t) and not q.appointment:
        r, s0 = policy.ratio, centre.streak
        h = r - s0 if s0 < r else 0  # priority tickets before the first normal one
        ratio = policy.mode == "ratio"
        if t.priority is Priority.NORMAL and q.normal and q.normal[-1] is t:
            # Priority tickets the interleaving has not placed by the newest normal one
            # come after it.
            ahead = h + (len(q.normal) - 1) * r if ratio else len(q.priority)
            return next((u.id for u in q.priority.islice(ahead) if plain(u)), None)
        if t.priority is Priority.PRIORITY and q.priority and q.priority[-1] is t:
            i = len(q.priority) - 1
            placed = 0  # normal tickets placed before it (`aging`: none)
            if ratio and i >= h:
                placed = (i - h) // r + 1
            return next((u.id for u in q.normal.islice(placed) if plain(u)), None)
    order = specialised_first(centre, dispatch_order(centre, now))
    for i, u in enumerate(order):
        if u is t:
            return order[i + 1].id if i + 1 < len(order) else None
    return None


@dataclass(slots=True)
class ForecastChain:
    """The standing forecast and what happened since: see the module's docstring."""

    chain: Chain | None = None
    n: int = 0  # operations reported (`report`)
    odd: int = 0  # ... the latest of them a forecast does not expect
    log: list[Take] = field(default_factory=list)  # placed since the running refresh began
    on_stale: Callable[[], None] = _nothing  # the refresher's wake-up (a refresh is due)

    def report(self, op: str | None) -> None:
        self.n += 1
        ch = self.chain
        if op not in EXPECTED:
            self.odd = self.n
            self.on_stale()
        elif ch is not None and self.n - ch.born == REFRESH_RECORDS:
            self.on_stale()

    def exact(self, ch: Chain) -> bool:
        return ch.exact and self.odd <= ch.born

    def usable(self, day: str, version: int, now: float) -> Chain | None:
        """The chain, if a ticket taken at `version`, `now` may be placed into it: today's,
        not older than PLACE_AGE, and every position since it was reported (a caller that
        skips `update` changes the state behind its back)."""
        ch = self.chain
        if (ch is None or ch.fc.day != day or not 0 <= version - ch.version <= self.n - ch.n
                or not -REUSE_AGE <= now - ch.fc.origin[1] <= PLACE_AGE):
            return None
        return ch

    def fresh(self, version: int, now: float) -> Forecast | None:
        """The chained forecast, if it may still stand for the state at `version`, `now`
        (pages read it instead of simulating)."""
        ch = self.chain
        if (ch is None or not self.exact(ch) or not 0 <= version - ch.version <= self.n - ch.n
                or (self.n - ch.born > EXTEND_RECORDS
                    and now - ch.fc.origin[1] >= RECORDS_MIN_AGE)
                or not -REUSE_AGE <= now - ch.fc.origin[1] <= EXTEND_AGE):
            return None
        return ch.fc

    def set(self, fc: Forecast, version: int) -> None:
        """`fc` was simulated at `version`, the latest position reported."""
        ch = self.chain
        if ch is None or ch.version <= version:
            self.chain = Chain(fc, version, self.n, self.n)
            self.log.clear()

    def place(self, take: Take) -> np.ndarray:
        """Place a ticket just taken (at the latest position reported) into the chain."""
        ch = self.chain
        assert ch is not None
        st, exact = self._put(ch.fc, take)
        if not exact:
            if ch.exact:
                self.on_stale()
            ch.exact = False
        ch.version, ch.n = take.version, take.n
        ch.fc.now = take.now
        self.log.append(take)
        return st

    @staticmethod
    def _put(fc: Forecast, take: Take) -> tuple[np.ndarray, bool]:
        """(its starts, whether `fc` stays exact: it went at the end of the order)."""
        before = None
        if take.succ is not None:
            before = fc.order.index(take.succ) if take.succ in fc.starts else len(fc.order)
        step = (columns(fc, take.reach), take.occ, take.cap, None, take.now)
        st = place(fc, take.ticket, step, before)
        return st, before is None and not take.odd

    # ---- the background refresh ----------------------------------------------------------
    def due(self, day: str, now: float) -> bool:
        ch = self.chain
        age = now - ch.fc.origin[1] if ch is not None else 0.0
        return (ch is None or ch.fc.day != day or not self.exact(ch) or age >= REFRESH_AGE
                or (self.n - ch.born >= REFRESH_RECORDS and age >= RECORDS_MIN_AGE))

    def due_at(self) -> float:
        """When the chain turns stale by age alone (-inf: it is stale by something else
        already, or there is none; `due` says which)."""
        ch = self.chain
        if ch is None or not self.exact(ch):
            return -float("inf")
        if self.n - ch.born >= REFRESH_RECORDS:
            return ch.fc.origin[1] + RECORDS_MIN_AGE
        return ch.fc.origin[1] + REFRESH_AGE

    def begin(self, version: int, now: float, day: str,
              steps: Generator[None, None, Forecast]) -> Refresh:
        """A refresh whose `steps` read the state at `version` (the latest reported) in their
        first step, taken here: the tickets taken from now on are kept to place again."""
        next(steps)
        self.log.clear()
        return Refresh(version, now, self.n, day, steps)

    def current(self, r: Refresh) -> bool:
        """Whether `r` may still land: nothing it does not expect happened since it began."""
        return self.odd <= r.n

    def land(self, r: Refresh, fc: Forecast, day: str) -> bool:
        """Adopt `r`'s forecast, run to its end, as the chain, the tickets taken since it
        began placed into it again; False (nothing changed) when it no longer stands for
        the state: an unexpected operation since, another day, or a newer one stands."""
        ch = self.chain
        if (not self.current(r) or day != r.day
                or (ch is not None and ch.fc.day == day
                    and (ch.born, ch.fc.origin[1]) > (r.n, r.now))):
            return False
        new = Chain(fc, r.version, r.n, r.n)
        for take in self.log:
            if take.ticket in fc.starts:
                continue
            _, exact = self._put(fc, take)
            new.exact = new.exact and exact
            new.version, new.n = take.version, take.n
            fc.now = take.now
        self.chain = new
        return True
