"""The dashboard's pre-review figures (预审 / 一次办成, hub/store/trips.py): today's from the
core, the last 30 days' (not today) from the past days' tables.

Today: residents the kiosk sent away before a ticket (wasted waits avoided), tickets taken
after a pre-review and with materials missing, returned at the window, and the one-trip
rate and repeat visits of today's tickets, looking back on the tickets with a resident
token of the `WITHIN_DAYS` days before. The tables change only when a day closes, so the
look-back and the period are read once a day; what runs on each floor update walks today's
tickets only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..store import trips
from ..store.history import ticket_rows
from .site import Site

log = logging.getLogger("onewindow.hub")
PERIOD_DAYS = 30  # as the dashboard's other history figures (dashboard.HISTORY_DAYS)


class TripsView:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._day: dt.date | None = None
        self._past: trips.Seen = {}
        self._period: dict[str, Any] | None = None

    def _read(self, today: dt.date) -> None:
        journal = self.site.port.journal
        if journal is None or self._day == today:  # no journal: unit tests of the pages
            return
        last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
        look = (today - dt.timedelta(days=trips.WITHIN_DAYS)).strftime("%Y%m%d")
        first = (today - dt.timedelta(days=PERIOD_DAYS)).strftime("%Y%m%d")
        try:
            rows = trips.ticket_rows(journal.engine, look, last)
            self._period = trips.prereview_summary(journal.engine, first, last)
        except Exception as e:  # storage away: today's figures go on without the past
            log.warning("dashboard pre-review history not read: %s", e)
            return
        self._past = trips.look_back(r for r in rows if r["resident"])
        self._day = today

    def view(self) -> dict[str, Any]:
        centre = self.site.hub.centre
        self._read(centre.local_date(self.site.clock()))
        today_rows = ticket_rows(t for t in centre.tickets.values() if t.day == centre.day)
        stats = trips.trip_stats(today_rows, centre.day or "0", trips.WITHIN_DAYS,
                                 before=self._past)
        stats.update(kiosk_left=centre.kiosk_left[0], kiosk_left_tips=centre.kiosk_left[1])
        return {"today": stats, "period": self._period}
