"""The dashboard's pre-review figures (预审 / 一次办成, hub/store/trips.py): today's from the
core, the last 30 days' (not today) from the past days' tables.

Today: residents the kiosk sent away before a ticket (wasted waits avoided), tickets taken
after a pre-review and with materials missing, returned at the window, and the one-trip
rate and repeat visits of today's tickets, looking back on the tickets with a resident
token of the `WITHIN_DAYS` days before. The tables change only when a day closes, so the
look-back and the period are read once a day, in a worker thread (daily.py: hundreds of
milliseconds with a year of tables); what runs on a floor update walks today's tickets.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..store import trips
from .daily import DailyRead
from .site import Site

PERIOD_DAYS = 30  # as the dashboard's other history figures (dashboard.HISTORY_DAYS)
# Today's figures are worked out again at most this often: a walk of today's tickets costs
# 2-4 ms with 3,000 of them, and the floor is rebuilt on every change (a supervisor's
# summary a few seconds old is as good)
PACE_S = 5.0


class TripsView:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.past = DailyRead(self._load, "pre-review history")
        self._today: tuple[float, str, int, dict[str, Any]] | None = None  # at, day, gen

    def _load(self, today: dt.date) -> tuple[trips.Seen, dict[str, Any]] | None:
        """(the look-back of today's tickets, the last PERIOD_DAYS' figures); None without
        a journal (unit tests of the pages). In a worker thread (daily.py)."""
        journal = self.site.port.journal
        if journal is None:
            return None
        last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
        look = (today - dt.timedelta(days=trips.WITHIN_DAYS)).strftime("%Y%m%d")
        first = (today - dt.timedelta(days=PERIOD_DAYS)).strftime("%Y%m%d")
        rows = trips.ticket_rows(journal.engine, look, last)
        period = trips.prereview_summary(journal.engine, first, last)
        return trips.look_back(r for r in rows if r["resident"]), period

    def view(self) -> dict[str, Any]:
        """On a floor update (at most every PACE_S, or when the past days' figures came):
        one walk of today's tickets, the ones with a token (a fifth or so) looked back on;
        nothing else per ticket (history.ticket_rows would work out waits and windows too:
        ~10 ms for 3,000)."""
        centre, now = self.site.hub.centre, self.site.clock()
        got = self.past.get(centre.local_date(now))
        past, period = got if got is not None else ({}, None)
        gen = self.past.generation
        if (self._today is not None and self._today[1:3] == (centre.day, gen)
                and 0 <= now - self._today[0] < PACE_S):
            return {"today": self._today[3], "period": period}
        n = reviewed = anyway = returned = 0
        tokened = []
        for t in centre.tickets.values():
            if t.day != centre.day:
                continue
            n += 1
            if t.review is not None:
                reviewed += 1
                anyway += bool(t.review["missing"])
            returned += bool(t.returned)
            if t.resident:
                tokened.append({"day": t.day, "item": t.item, "issued_at": t.issued_at,
                                "state": t.state.value, "resident": t.resident,
                                "returned": t.returned})
        stats = trips.trip_stats(tokened, centre.day or "0", trips.WITHIN_DAYS, before=past)
        stats.update(tickets=n, reviewed=reviewed, queued_anyway=anyway, returned=returned,
                     kiosk_left=centre.kiosk_left[0], kiosk_left_tips=centre.kiosk_left[1])
        self._today = (now, centre.day, gen, stats)
        return {"today": stats, "period": period}
