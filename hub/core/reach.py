"""Reach: which windows serve what.

A window's skills are the items it may serve (its kind's items, or the items and lines it
is configured with); an item's reach is the windows, open or paused, whose skills hold it.
Tickets for an item no window reaches wait `Unreachable`; an item no window serves at all,
open or not, cannot be taken here. The centre keeps the reach of every item current
(CentreState._refresh_reach, _update_reach); this module computes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .catalog import COMPREHENSIVE, Catalog
from .centre_config import WindowSpec
from .model import Ticket, Window, WindowState
from .policy import OrderingPolicy
from .rejected import Rejected

ItemReach = dict[str, frozenset[int]]  # item id -> numbers of the windows that may serve it


def window_skills(catalog: Catalog, spec: WindowSpec, policy: OrderingPolicy
                  ) -> frozenset[str]:
    """A configured window's skills: as configured, or what its kind serves (a specialised
    window helps with the comprehensive items too if the policy says so)."""
    if spec.skills is None:
        own = catalog.items_for_kind(spec.kind)
        if spec.kind != COMPREHENSIVE and policy.specialised_helps:
            return own | catalog.items_for_kind(COMPREHENSIVE)
        return own
    return expand_skills(catalog, spec.skills)


def expand_skills(catalog: Catalog, names: Iterable[str]) -> frozenset[str]:
    """Item ids from item ids, line ids (all the line's items) and "*" (every item)."""
    out: set[str] = set()
    for name in names:
        if name == "*":
            out.update(catalog.items)
        elif name in catalog.lines:
            out.update(i.id for i in catalog.items.values() if i.line == name)
        elif name in catalog.items:
            out.add(name)
        else:
            raise Rejected("unknown_item", f"未知事项 / unknown item or line {name!r}")
    return frozenset(out)


def item_reach(catalog: Catalog, windows: Iterable[Window]) -> ItemReach:
    """Which not-closed windows can serve each item (paused ones come back)."""
    reach: dict[str, set[int]] = {i: set() for i in catalog.items}
    for w in windows:
        if w.state is not WindowState.CLOSED:
            for item in w.skills:
                reach[item].add(w.number)
    return {k: frozenset(v) for k, v in reach.items()}


def servable(windows: Iterable[Window]) -> frozenset[str]:
    """Items some window (open or not) serves: what a ticket may be taken for."""
    return frozenset().union(*(w.skills for w in windows))


def update_reach(reach: ItemReach, w: Window) -> None:
    """One window opened or closed: only the reach of its own items changes."""
    serving = w.state is not WindowState.CLOSED
    for item in w.skills:
        r = reach[item]
        if serving and w.number not in r:
            reach[item] = r | {w.number}
        elif not serving and w.number in r:
            reach[item] = r - {w.number}


def ticket_reach(reach: ItemReach, windows: Mapping[int, Window], t: Ticket
                 ) -> frozenset[int]:
    """Windows (not closed) that may serve this waiting ticket: its item's reach, or the
    one window it was transferred to."""
    if t.target_window is not None:
        w = windows.get(t.target_window)
        if w is None or w.state is WindowState.CLOSED:
            return frozenset()
        return frozenset((t.target_window,))
    return reach.get(t.item, frozenset())
