"""多问一句 (ask one more question): the items offered beside an item at the kiosk and on the
clerk's console. The catalog's static `related` list first, then the items residents really
did together: one resident token's tickets on one day and a ticket's extra items, counted
over the last weeks of the history tables (hub/store/trips.py) and today's tickets.

The history counts change only when a day closes: they are read once a day. Today's come
from the core's tickets on each ask (a few hundred at most).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from ..core.catalog import Item
from ..store import trips
from .site import Site

log = logging.getLogger("onewindow.hub")
MAX_LEARNED = 3  # co-occurring items offered beyond the catalog's list


class Related:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._past: tuple[dt.date | None, Counter[tuple[str, str]]] = (None, Counter())

    def _history(self) -> Counter[tuple[str, str]]:
        journal = self.site.port.journal
        if journal is None:  # no journal (unit tests of the pages)
            return Counter()
        centre = self.site.hub.centre
        today = centre.local_date(self.site.clock())
        if self._past[0] != today:
            first = (today - dt.timedelta(weeks=trips.COOCCUR_WEEKS)).strftime("%Y%m%d")
            last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
            try:
                self._past = (today, trips.cooccurrence(journal.engine, first, last))
            except Exception as e:  # storage away: the catalog's list still stands
                log.warning("co-occurring items not read: %s", e)
                return Counter()
        return self._past[1]

    def _today(self) -> Counter[tuple[str, str]]:
        groups: dict[str, set[str]] = {}
        single = []
        for t in self.site.hub.centre.tickets.values():
            mine = [t.item, *t.extra_items]
            if t.resident:
                groups.setdefault(t.resident, set()).update(mine)
            elif len(mine) > 1:
                single.append(mine)
        return trips.pairs_of([*groups.values(), *single])

    def learned(self, item: str) -> list[tuple[str, int]]:
        """(other item, times done together) for `item`, most often first."""
        counts = self._history() + self._today()
        mine = [(b, n) for (a, b), n in counts.items() if a == item and n >= trips.COOCCUR_MIN]
        return sorted(mine, key=lambda x: (-x[1], x[0]))

    def of(self, item: Item) -> list[dict[str, Any]]:
        """The items to offer beside `item`: {"item": Item, "seen": times done together
        (0: the catalog's list only)}, the catalog's first."""
        items = self.site.hub.centre.catalog.items
        learned = dict(self.learned(item.id))
        out = [{"item": items[r], "seen": learned.get(r, 0)}
               for r in item.related if r in items]
        have = {item.id, *item.related}
        extra = [r for r in learned if r not in have and r in items][:MAX_LEARNED]
        return out + [{"item": items[r], "seen": learned[r]} for r in extra]
