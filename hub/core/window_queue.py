"""The tickets a window would call next, in the order it would call them: what the other
systems' API lists for a window (hub/web/api.py).

It asks the ordering policy the very question `serving.call_next` asks (`policy.choose`,
with the window's own items first at a specialised window, as `serving._pick`), once per
place, leaving out the tickets already placed; nothing changes. The priority streak is
carried forward as calls would carry it, so the list is the sequence of calls this window
would make if nothing else happened meanwhile (other windows calling, new tickets,
appointments falling due change it).
"""

from __future__ import annotations

from .catalog import COMPREHENSIVE
from .model import Ticket
from .policy import choose
from .state import CentreState

MAX_LIST = 100


def upcoming(state: CentreState, window: int, now: float, limit: int = 20) -> list[Ticket]:
    """At most `limit` (<= MAX_LIST) tickets, the next first. Raises KeyError for a
    window this centre does not have."""
    w = state.windows[window]
    items = state.catalog.items
    placed: set[str] = set()
    streak = state.streak
    out: list[Ticket] = []

    def ok(t: Ticket) -> bool:
        if t.id in placed:
            return False
        if t.target_window is not None:
            return t.target_window == window
        return t.item in w.skills

    def own(t: Ticket) -> bool:
        return ok(t) and w.kind in items[t.item].window_kinds

    while len(out) < min(limit, MAX_LIST):
        t = None
        if w.kind != COMPREHENSIVE:
            t, s = choose(state.queue, own, now, state.policy, streak)
            if t is not None:
                streak = s
        if t is None:
            t, streak = choose(state.queue, ok, now, state.policy, streak)
        if t is None:
            break
        placed.add(t.id)
        out.append(t)
    return out
