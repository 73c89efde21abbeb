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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..app import LIVE_WAIT_STEP
from ..core.model import Ticket, TicketState, WindowState

if TYPE_CHECKING:
    from ..app import HubApp
    from .site import Site

Minutes = tuple[int, int, int] | None  # (point, low, high); None: no open window serves it


class LiveWaits:
    """One per site (`of`): the hall's lines and the phones' tickets are read from the same
    simulation when the step turns, not one simulation each."""

    def __init__(self, hub: HubApp, clock: Callable[[], float]) -> None:
        self.hub, self.clock = hub, clock
        self.items: set[str] = set()  # items whose wait a page shows (the hall's lines)
        self.watched: Callable[[], Iterable[str]] = tuple  # ticket ids pages follow
        self._key: tuple[float, frozenset[int]] | None = None
        self._items: dict[str, Minutes] = {}
        self._tickets: dict[str, Minutes] = {}
        self.refreshed = 0  # times every wait was read anew (once per step at most)

    @classmethod
    def of(cls, site: Site) -> LiveWaits:
        shared = getattr(site, "live_waits", None)
        if shared is None:
            shared = site.live_waits = cls(site.hub, site.clock)  # type: ignore[attr-defined]
        return shared

    def _fresh(self) -> float:
        now = self.clock()
        centre = self.hub.centre
        key = (now - now % LIVE_WAIT_STEP,
               frozenset(n for n, w in centre.windows.items()
                         if w.state is not WindowState.CLOSED))
        if key != self._key:
            # Everything at once, at one journal position, with no await in between: the
            # forecast's cache serves every read after the first.
            self._key = key
            self.refreshed += 1
            self._items = {i: self.hub.item_wait(i, now).minutes() for i in self.items}
            self._tickets = {}
            self._read_tickets(self.watched(), now)
        return now

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
