"""The wait forecasts the live pages show (hall screen per department line, phone page per
ticket), refreshed once per LIVE_WAIT_STEP (5 s) or when the set of open windows changes,
not on every journaled step.

A forecast is a Monte-Carlo simulation of the whole waiting queue (hub/forecast/wait.py,
20-35 ms with 200 waiting here), cached for one journal position. Under a burst of calls
the position moves every few milliseconds, so a page asking on every change simulated
again each time, in the hub's loop. Whole-minute estimates do not need that: they are kept
for the 5 s step the hub already rounds `now` to for pages, and the hall's lines and every
watched ticket are read from one simulation. Fresh on every change: states, calls, people ahead,
waiting counts.

In the hub's loop the simulation, when one is needed (the step turned and the predictor has no
forecast standing for it), runs as a task in slices of SLICE tickets (~0.6 ms each; 900
waiting took 20-60 ms in one piece, a stall every page's turn of the step). Until it is done
the pages show the previous step's waits (minutes, a step old); then every feed is rebuilt
(`LiveHub.changed`). The first read, and any read outside an event loop, simulates at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..app.waits import LIVE_WAIT_STEP
from ..core.model import Ticket, TicketState, WindowState

if TYPE_CHECKING:
    from ..app import HubApp
    from .site import Site

Minutes = tuple[int, int, int] | None  # (point, low, high); None: no open window serves it
Key = tuple[float, frozenset[int]]  # (the step's start, the windows not closed)
# Tickets placed per slice of a simulation run in the loop: ~35 us each with 950 waiting
# (issue 14: 64 were 2.3 ms, a stall for every call arriving meanwhile). The first slice
# also reads and orders the whole queue (10 ms with 950 waiting, hub/forecast: a finer
# split of that is the forecast's to give).
SLICE = 16
READ_SLICE = 32  # watched tickets' waits read from a finished simulation per slice (~27 us each)

log = logging.getLogger(__name__)


class LiveWaits:
    """One per site (`of`): the hall's lines and the phones' tickets are read from the same
    simulation when the step turns, not one simulation each."""

    def __init__(self, hub: HubApp, clock: Callable[[], float]) -> None:
        self.hub, self.clock = hub, clock
        self.items: set[str] = set()  # items whose wait a page shows (the hall's lines)
        self.watched: Callable[[], Iterable[str]] = tuple  # ticket ids pages follow
        self._key: Key | None = None
        self._items: dict[str, Minutes] = {}
        self._tickets: dict[str, Minutes] = {}
        self.refreshed = 0  # times every wait was read anew (once per step at most)
        self.sliced = 0  # ... of them from a simulation run in slices
        self.on_refresh: Callable[[], None] = lambda: None  # waits read anew in the background
        self._task: asyncio.Task[None] | None = None
        # the windows not closed, as of a state (the core, its journal position): read
        # anew when a step was committed, not for each of 200 phone pages built after it
        self._open: tuple[object, int, frozenset[int]] | None = None

    @classmethod
    def of(cls, site: Site) -> LiveWaits:
        shared = getattr(site, "live_waits", None)
        if shared is None:
            shared = site.live_waits = cls(site.hub, site.clock)  # type: ignore[attr-defined]
            shared.on_refresh = site.live.changed  # the feeds show the new waits
        return shared

    def _fresh(self) -> float:
        now = self.clock()
        centre, pos = self.hub.centre, self.hub.pos
        if self._open is None or self._open[0] is not centre or self._open[1] != pos:
            self._open = (centre, pos, frozenset(n for n, w in centre.windows.items()
                                                 if w.state is not WindowState.CLOSED))
        key = (now - now % LIVE_WAIT_STEP, self._open[2])
        if key != self._key and (self._key is None or not self._in_slices(key)):
            self._refresh(key, now)
        return now

    def _refresh(self, key: Key, now: float) -> None:
        # Everything at once, at one journal position, with no await in between: the
        # forecast's cache serves every read after the first.
        self._key = key
        self.refreshed += 1
        self._items = {i: self.hub.item_wait(i, now).minutes() for i in self.items}
        self._tickets = {}
        self._read_tickets(self.watched(), now)

    def _in_slices(self, key: Key) -> bool:
        """Read the waits for `key` in a task (the previous ones stand meanwhile) when that
        needs a simulation; False: read them now (cheap, or no loop to run a task in)."""
        if self._task is not None and not self._task.done():
            return True  # one under way; a key that moved meanwhile is read after it
        waits, step = self.hub.waits, key[0]
        if waits.known(self.hub.pos, step) is not None:
            return False  # a forecast stands for it: reading is cheap
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._simulate(key), name="live-waits")
        return True

    async def _simulate(self, key: Key) -> None:
        hub, step = self.hub, key[0]
        version = hub.pos
        steps = hub.waits.simulation(hub.centre, step, version, SLICE)
        try:
            while True:
                next(steps)
                await asyncio.sleep(0)  # the hub's own work between slices
        except StopIteration as done:
            fc = done.value
        except Exception:  # a broken forecast must not stop the pages: read at once next
            log.exception("live waits: simulation at position %d failed", version)
            self._key = None
            return
        if hub.pos == version:
            hub.waits.adopt(fc, version, step)  # later reads at this position find it
        centre, waits = hub.centre, hub.waits
        items = {i: waits.probe_in(fc, centre, i, step).minutes() for i in self.items}
        tickets: dict[str, Minutes] = {}
        # Read in slices too (200 phone pages: 5 ms); the pages show the previous waits
        # until all are read, then these at once.
        for n, tid in enumerate(list(self.watched()), 1):
            if n % READ_SLICE == 0:
                await asyncio.sleep(0)
            t = centre.tickets.get(tid)
            est = waits.wait_in(fc, tid, step) if t is not None else None
            if t is not None and t.state is TicketState.WAITING and est is not None:
                tickets[tid] = est.minutes()
        self._key, self._items, self._tickets = key, items, tickets
        self.refreshed += 1
        self.sliced += 1
        self.on_refresh()

    def _read_tickets(self, ids: Iterable[str], now: float) -> None:
        tickets = self.hub.centre.tickets
        for tid in ids:
            t = tickets.get(tid)
            if t is not None and t.state is TicketState.WAITING and tid not in self._tickets:
                self._tickets[tid] = self.hub.ticket_wait(t, now).minutes()

    def item(self, item: str) -> Minutes:
        """A new ticket's wait for `item` (the hall's 等候时间预告)."""
        now = self._fresh()
        if item not in self._items:
            self._items[item] = self.hub.item_wait(item, now).minutes()
        return self._items[item]

    def ticket(self, t: Ticket) -> Minutes:
        """A waiting ticket's wait. A page opened within the step is read on its own (one
        simulation if the state moved since the step's)."""
        now = self._fresh()
        if t.id not in self._tickets:
            self._read_tickets([t.id], now)
        return self._tickets.get(t.id)
