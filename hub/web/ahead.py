"""People ahead of many waiting tickets at once, for the phone pages' live views.

`Centre.ahead_of(t)` walks the whole waiting queue: hundreds of phone pages, each rebuilt
after every change, walked it hundreds of times per change. Tickets for the same item, in
the same tier and sent to no particular window share the core's rule of who is ahead
(same windows, same kind of window): everyone ahead of the group's last ticket, counted up
to each ticket's own place. One walk per group, then a binary search per ticket; the same
`ahead_of`, so the same answer (hub/tests/test_live_ahead.py compares them).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from ..core.centre import Centre
from ..core.model import Ticket


def ahead_counts(centre: Centre, tickets: Iterable[Ticket], now: float) -> dict[str, int]:
    """{ticket id: len(centre.ahead_of(t, now))} for waiting tickets."""
    out: dict[str, int] = {}
    groups: dict[tuple[str, int], list[Ticket]] = {}
    tier = centre._tier
    for t in tickets:
        if t.target_window is not None:
            out[t.id] = len(centre.ahead_of(t, now))
        else:
            groups.setdefault((t.item, tier(t, now)), []).append(t)
    for (_, mine), group in groups.items():
        last = max(group, key=lambda t: t.sort_key)
        # Whoever is ahead of a ticket of the group is ahead of its last one too (same item:
        # same windows; same tier: an earlier place), so one walk serves them all: those in
        # an earlier tier are ahead of each, those in the same tier if earlier in it (no
        # (tier, place) pair per ticket and no sort of them: a third of the time).
        earlier, places = 0, []
        for u in centre.ahead_of(last, now):
            if tier(u, now) < mine:
                earlier += 1
            else:  # the same tier: ahead_of(last) holds no later one
                places.append(u.sort_key)
        places.sort()
        for t in group:
            out[t.id] = earlier + bisect_left(places, t.sort_key)
    return out
