"""The resident's phone page, opened from the ticket's QR code: /t/{ticket_id}.

Live channel "ticket", argument the ticket id, snapshot::

    {"found": true, "id": "20261123-A017", "number": "A017",
     "items": [{"zh": ..., "en": ...}, ...],
     "state": "waiting" | "called" | "serving" | "done" | "no_show" | "expired",
     "window": 3 | null, "ahead": 4 | null, "wait": 12 | null,
     "wait_lo": 8 | null, "wait_hi": 17 | null, "recalls": 0,
     "priority": false}               # true: a priority ticket (优先 beside the number)

`wait` is the predicted wait in minutes (median of the Monte-Carlo paths, see
hub/forecast/wait.py) and `wait_lo`-`wait_hi` its 80% interval; all null when no open
window serves the ticket. The wait is refreshed every 5 s or when windows open or close
(livewait.py); state, window and people ahead follow every change.
    {"found": false}                  # not a ticket of today (or not any more)

Only what the printed ticket already says: no resident token, no clerk, no history, and of
priority only that it is (not why, nor who marked it).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core.model import Priority, Ticket, TicketState
from .ahead import ahead_counts
from .livewait import LiveWaits
from .site import Site

PACE_S = 0.5


class Phone:
    def __init__(self, site: Site) -> None:
        self.site = site
        # One feed per watched ticket: hundreds on an ordinary day. Twice a second is still
        # "at once" on a phone.
        site.live.pace("ticket", PACE_S)
        # the waits of all watched tickets from one simulation, refreshed every 5 s
        self.waits = LiveWaits.of(site)
        self.waits.watched = self.watched
        # people ahead of all watched tickets, from one walk of the queue per state
        self._ahead: tuple[tuple[Hashable, int], dict[str, int]] | None = None

    def watched(self) -> list[str]:
        return [arg for name, arg in self.site.live.feeds if name == "ticket"]

    def ahead(self, t: Ticket, now: float) -> int:
        # one walk per pass of the live flusher (live.py); tiers turn at whole seconds
        key = (self.site.live.shared_key(self.site.hub.pos), int(now))
        if self._ahead is None or self._ahead[0] != key or t.id not in self._ahead[1]:
            tickets = self.site.hub.centre.tickets
            watched = [u for u in (tickets.get(i) for i in {t.id, *self.watched()})
                       if u is not None and u.state is TicketState.WAITING]
            self._ahead = (key, ahead_counts(self.site.hub.centre, watched, now))
        return self._ahead[1][t.id]

    def routes(self) -> list[BaseRoute]:
        return [Route("/t/{ticket}", self.page)]

    def snapshot(self, ticket_id: str) -> dict[str, Any]:
        centre = self.site.hub.centre
        t = centre.tickets.get(ticket_id)
        if t is None:
            return {"found": False}
        items = [centre.catalog.items[i] for i in (t.item, *t.extra_items)
                 if i in centre.catalog.items]
        ahead = wait = lo = hi = None
        if t.state is TicketState.WAITING:
            now = self.site.clock()
            ahead = self.ahead(t, now)
            minutes = self.waits.ticket(t)
            if minutes is not None:
                wait, lo, hi = minutes
        return {"found": True, "id": t.id, "number": t.number,
                "items": [{"zh": i.name.zh, "en": i.name.en} for i in items],
                "state": t.state.value, "window": t.window, "ahead": ahead, "wait": wait,
                "wait_lo": lo, "wait_hi": hi, "recalls": t.recalls,
                "priority": t.priority is Priority.PRIORITY}

    async def page(self, request: Request) -> Response:
        ticket_id = request.path_params["ticket"]
        snap = self.snapshot(ticket_id)
        if not snap["found"]:
            return self.site.render(request, "public/not_found.html", status=404)
        return self.site.render(request, "public/ticket.html", snap=snap)
