"""多问一句 (ask one more question): the items offered beside an item at the kiosk and on the
clerk's console. The catalog's static `related` list first, then the items residents really
did together: one resident token's tickets on one day and a ticket's extra items, counted
over the last weeks of the history tables (hub/store/trips.py) and today's tickets.

The history counts change only when a day closes: they are read once a day, in a worker
thread (daily.py). Today's come from the core's tickets, counted once per state (the hub's
journal position): every clerk console's live view asks for them on each rebuild, and a
walk of a busy day's tickets is ~0.5 ms (issue 14: half of a console's build).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from ..core.catalog import Item
from ..store import trips
from .daily import DailyRead
from .site import Site

MAX_LEARNED = 3  # co-occurring items offered beyond the catalog's list


class Related:
    def __init__(self, site: Site) -> None:
        self.site = site
        # read once a day in a worker thread (daily.py): ~0.6 s for 8 weeks of a busy
        # centre's tables, which the hub's loop must not wait for
        self.past = DailyRead(self._load, "co-occurring items")
        # (journal position, the history read it was added to, history + today's counts)
        self._counts: tuple[int, Any, Counter[tuple[str, str]]] | None = None

    def _load(self, today: dt.date) -> Counter[tuple[str, str]]:
        journal = self.site.port.journal
        if journal is None:  # no journal (unit tests of the pages)
            return Counter()
        first = (today - dt.timedelta(weeks=trips.COOCCUR_WEEKS)).strftime("%Y%m%d")
        last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
        return trips.cooccurrence(journal.engine, first, last)

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

    def _counted(self) -> Counter[tuple[str, str]]:
        """The history's counts and today's, added once per state of the hub."""
        centre = self.site.hub.centre
        pos, read = self.site.hub.pos, self.past.get(centre.local_date(self.site.clock()))
        if self._counts is None or self._counts[0] != pos or self._counts[1] is not read:
            self._counts = (pos, read, (read or Counter()) + self._today())
        return self._counts[2]

    def learned(self, item: str) -> list[tuple[str, int]]:
        """(other item, times done together) for `item`, most often first."""
        counts = self._counted()
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
