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
    for t in tickets:
        if t.target_window is not None:
            out[t.id] = len(centre.ahead_of(t, now))
        else:
            groups.setdefault((t.item, centre._tier(t, now)), []).append(t)
    for (_, tier), group in groups.items():
        last = max(group, key=lambda t: t.sort_key)
        # Whoever is ahead of a ticket of the group is ahead of its last one too (same item:
        # same windows; same tier: an earlier place), so one walk serves them all.
        ranks = sorted((centre._tier(u, now), u.sort_key) for u in centre.ahead_of(last, now))
        for t in group:
            out[t.id] = bisect_left(ranks, (tier, t.sort_key))
    return out
