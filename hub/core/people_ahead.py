"""Who is ahead of a waiting ticket, and about how long it waits: what a ticket prints and
the pages show. A ticket's competitors wait for a window that may serve it too, in an
earlier tier (an appointment due now, then priority, then the rest) or earlier in its own.
The hub's WaitPredictor (hub/forecast/wait.py) gives the finer wait; this is the core's.
"""

from __future__ import annotations

from .model import Priority, Ticket
from .policy import OrderingPolicy
from .state import CentreState


def tier(t: Ticket, now: float, policy: OrderingPolicy) -> int:
    """0: an appointment within its slot; 1: priority; 2: everyone else (an appointment
    early or late waits as a normal ticket)."""
    if t.priority is Priority.APPOINTMENT and t.appointment_at is not None:
        at = t.appointment_at
        if at - policy.appointment_early <= now <= at + policy.appointment_grace:
            return 0
        return 2
    return 1 if t.priority is Priority.PRIORITY else 2


def ahead_of(state: CentreState, t: Ticket, now: float) -> list[Ticket]:
    """Waiting tickets likely served before `t`: same windows, earlier tier or order; for
    a specialised item while its own kind of window serves it, its own kind only
    (`first_kinds`)."""
    mine = state.reach(t)
    policy = state.policy
    my_tier, key = tier(t, now, policy), t.sort_key
    items, reach = state.catalog.items, state._reach
    own = first_kinds(state, t.item, mine)
    shares: dict[str, bool] = {}  # by item: most waiting tickets share a few items
    out = []
    for u in state.queue:
        if u is t:
            continue
        if u.target_window is None:
            share = shares.get(u.item)
            if share is None:
                share = not reach[u.item].isdisjoint(mine) and (
                    own is None or not own.isdisjoint(items[u.item].window_kinds))
                shares[u.item] = share
        else:
            share = u.target_window in mine
        if not share:
            continue
        ut = tier(u, now, policy)
        if ut < my_tier or (ut == my_tier and u.sort_key < key):
            out.append(u)
    return out


def count_ahead(state: CentreState, t: Ticket, now: float) -> int:
    """len(ahead_of(t, now)), without walking the queue in the common case: a new
    normal ticket, newest of all, with no ticket sent to one window. Then everyone
    waiting for an item that shares a window with t is ahead of it, whatever the tier."""
    q = state.queue
    if (t.priority is not Priority.NORMAL or t.target_window is not None or q.targeted
            or not q.normal or q.normal[-1] is not t):
        return len(ahead_of(state, t, now))
    key = t.sort_key
    if any(u.sort_key > key for u in q.appointment):  # an off-slot one taken later
        return len(ahead_of(state, t, now))
    row = state._share_rows.get(t.item)
    if row is None:
        row = state._share_rows[t.item] = {}
    n = 0
    for item, k in q.by_item.items():
        share = row.get(item)
        if share is None:
            share = row[item] = _shares(state, t.item, item)
        if share:
            n += k
    return n - 1 if row.get(t.item) else n  # not t itself


def _shares(state: CentreState, mine: str, other: str) -> bool:
    """Do tickets for `other` compete with a ticket for `mine` (see ahead_of)?"""
    items, reach = state.catalog.items, state._reach
    windows = reach.get(mine, frozenset())
    own = first_kinds(state, mine, windows)
    return not reach[other].isdisjoint(windows) and (
        own is None or not own.isdisjoint(items[other].window_kinds))


def first_kinds(state: CentreState, item: str, windows: frozenset[int]
                ) -> frozenset[str] | None:
    """The kinds of `item`'s own specialised windows among `windows` (not closed: a paused
    one comes back and serves its own items first again), or None when there are none.

    A specialised window calls its own items first (serving.py `_pick`): while one of a
    card item's kind serves it, only card tickets are ahead of a card ticket, however long
    the comprehensive queue is. A comprehensive window calls in plain dispatch order,
    whatever the item: where no such window is open (a comprehensive hall, or the card
    window closed) everyone waiting for a window that serves the card item is ahead of it
    by tier and order, as anyone's. The wait forecast's simulation follows the same rule
    (hub/forecast/paths.py `goes_first`). Depends only on the reach and the windows' kinds,
    so `CentreState._share_rows` stays valid until the reach changes (it is cleared then).
    """
    it = state.catalog.items[item]
    if not it.specialised:
        return None
    spec, ws = it.window_kinds, state.windows
    kinds = frozenset([k for n in windows if (k := ws[n].kind) in spec])
    return kinds or None


def estimate(state: CentreState, t: Ticket, now: float) -> tuple[int, float]:
    """(people ahead, minutes to wait) from the standard minutes of those ahead."""
    ahead = ahead_of(state, t, now)
    reach = state.reach(t)
    if not reach:
        return len(ahead), float("inf")
    items = state.catalog.items
    work = sum(items[u.item].minutes for u in ahead)
    return len(ahead), (work + _in_service(state, reach, now)) / len(reach)


def estimate_new(state: CentreState, item: str, now: float) -> tuple[int, float] | None:
    """`estimate` of a normal ticket for `item` taken now, without taking it and without
    walking the queue: everyone waiting for an item that shares a window with it is ahead
    (count_ahead's common case), from the per-item counts. None when that case does not
    hold (a ticket sent to one window, or an appointment taken later than others waiting):
    then only a walk gives the answer. The supervisors' floor asks it for every item on
    every update (one walk per item was 80 % of a 9 ms floor with 400 waiting)."""
    q = state.queue
    # A new ticket's order key is `now`: one waiting that sorts at or after it (a booking
    # checked in for a later slot, a requeued no-show) may be behind it; a walk decides.
    if q.targeted or any(u.order_key >= now for u in (*q.appointment, *q.normal[-1:],
                                                       *q.priority[-1:])):
        return None
    reach = state._reach.get(item, frozenset())
    row = state._share_rows.get(item)
    if row is None:
        row = state._share_rows[item] = {}
    items = state.catalog.items
    n, work = 0, 0.0
    for other, k in q.by_item.items():
        share = row.get(other)
        if share is None:
            share = row[other] = _shares(state, item, other)
        if share:
            n += k
            work += k * items[other].minutes
    if not reach:
        return n, float("inf")
    return n, (work + _in_service(state, reach, now)) / len(reach)


def _in_service(state: CentreState, reach: frozenset[int], now: float) -> float:
    """Minutes the residents at `reach`'s windows still need, by their items' standard."""
    items, windows, tickets = state.catalog.items, state.windows, state.tickets
    work = 0.0
    for n in reach:
        w = windows[n]
        cur = tickets.get(w.ticket) if w.ticket is not None else None
        if cur is not None:
            left = items[cur.item].minutes - (now - w.since) / 60.0
            if left > 0:
                work += left
    return work
