"""The wait forecasts the live pages show (hall screen per department line, phone page per
ticket), refreshed once per LIVE_WAIT_STEP (5 s) or when the set of open windows changes,
not on every journaled step.

A forecast is a Monte-Carlo simulation of the whole waiting queue (hub/forecast/wait.py,
20-35 ms with 200 waiting here), cached for one journal position. Under a burst of calls
the position moves every few milliseconds, so a page asking on every change simulated
again each time, in the hub's loop. Whole-minute estimates do not need that: they are kept
for the 5 s step the hub already rounds `now` to for pages, and the waits of every watched
ticket are read from one simulation. Fresh on every change: states, calls, people ahead,
waiting counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..app import LIVE_WAIT_STEP
from ..core.model import Ticket, TicketState, WindowState

if TYPE_CHECKING:
    from ..app import HubApp

Minutes = tuple[int, int, int] | None  # (point, low, high); None: no open window serves it


class LiveWaits:
    def __init__(self, hub: HubApp, clock: Callable[[], float],
                 watched: Callable[[], Iterable[str]] = tuple) -> None:
        self.hub, self.clock = hub, clock
        self.watched = watched  # ticket ids some page is following
        self._key: tuple[float, frozenset[int]] | None = None
        self._items: dict[str, Minutes] = {}
        self._tickets: dict[str, Minutes] = {}
        self.simulated = 0  # refreshes that asked the forecast (what this cache saves)

    def _fresh(self) -> float:
        now = self.clock()
        centre = self.hub.centre
        key = (now - now % LIVE_WAIT_STEP,
               frozenset(n for n, w in centre.windows.items()
                         if w.state is not WindowState.CLOSED))
        if key != self._key:
            self._key = key
            self._items.clear()
            self._tickets.clear()
        return now

    def item(self, item: str) -> Minutes:
        """A new ticket's wait for `item` (the hall's 等候时间预告)."""
        now = self._fresh()
        if item not in self._items:
            self.simulated += 1
            self._items[item] = self.hub.item_wait(item, now).minutes()
        return self._items[item]

    def ticket(self, t: Ticket) -> Minutes:
        """A waiting ticket's wait. On a miss every watched waiting ticket is read too, from
        the same simulation (same journal position, no await in between)."""
        now = self._fresh()
        if t.id not in self._tickets:
            self.simulated += 1
            tickets = self.hub.centre.tickets
            for tid in {t.id, *self.watched()}:
                u = tickets.get(tid)
                if u is not None and u.state is TicketState.WAITING and (
                        tid not in self._tickets):
                    self._tickets[tid] = self.hub.ticket_wait(u, now).minutes()
        return self._tickets.get(t.id)
