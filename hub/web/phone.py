"""The resident's phone page, opened from the ticket's QR code: /t/{ticket_id}.

Live channel "ticket", argument the ticket id, snapshot::

    {"found": true, "id": "20261123-A017", "number": "A017",
     "items": [{"zh": ..., "en": ...}, ...],
     "state": "waiting" | "called" | "serving" | "done" | "no_show" | "expired",
     "window": 3 | null, "ahead": 4 | null, "wait": 12 | null,
     "wait_lo": 8 | null, "wait_hi": 17 | null, "recalls": 0}

`wait` is the predicted wait in minutes (median of the Monte-Carlo paths, see
hub/forecast/wait.py) and `wait_lo`-`wait_hi` its 80% interval; all null when no open
window serves the ticket.
    {"found": false}                  # not a ticket of today (or not any more)

Only what the printed ticket already says: no resident token, no clerk, no history.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core.model import TicketState
from .site import Site


class Phone:
    def __init__(self, site: Site) -> None:
        self.site = site

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
            ahead = len(centre.ahead_of(t, now))
            minutes = self.site.hub.ticket_wait(t, now).minutes()
            if minutes is not None:
                wait, lo, hi = minutes
        return {"found": True, "id": t.id, "number": t.number,
                "items": [{"zh": i.name.zh, "en": i.name.en} for i in items],
                "state": t.state.value, "window": t.window, "ahead": ahead, "wait": wait,
                "wait_lo": lo, "wait_hi": hi, "recalls": t.recalls}

    async def page(self, request: Request) -> Response:
        ticket_id = request.path_params["ticket"]
        snap = self.snapshot(ticket_id)
        if not snap["found"]:
            return self.site.render(request, "public/not_found.html", status=404)
        return self.site.render(request, "public/ticket.html", snap=snap)
