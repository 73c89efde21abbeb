"""The day's roll-over at local midnight: numbers restart, whoever still waits is expired
rather than carried over, closed cases leave memory; and the savepoint that undoes a
roll-over whose command is refused (see Centre.apply for why it belongs to the command).
"""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any

from . import city, help_requests, ratings
from .effects import DayClosed, Effect
from .model import TicketState, Window, WindowState
from .policy import WaitingQueue
from .state import CentreState

Savepoint = tuple[dict[str, Any], list[tuple[Window, Window]]]


def roll_over(state: CentreState, now: float) -> list[Effect]:
    """Make `now`'s local day the current one: a new day closes the one before."""
    day, state._day_span = state.calendar.day_of(now)
    if day == state.day:
        return []
    effects: list[Effect] = [close_day(state, day)] if state.day else []
    if effects:  # the city's catalog version waiting for a day's close (city.py)
        effects += city.switch_at_close(state)
    state.day = day
    return effects


def close_day(state: CentreState, new_day: str) -> DayClosed:
    """Local midnight: numbers restart; whoever still waits is expired, not carried over;
    the day's ratings and answered help requests leave with it.

    It must replace the containers it changes, never mutate them in place (windows
    aside): `rollback` undoes a roll-over whose command is refused by putting the old
    ones back (the stateful property test checks this across midnights)."""
    expired = []
    for t in list(state.tickets.values()):
        if t.state in (TicketState.WAITING, TicketState.CALLED):
            expired.append(t.id)
    old = state.day
    for w in state.windows.values():
        if w.state is WindowState.CALLING:
            w.state, w.ticket = WindowState.IDLE, None
    state.tickets = {k: t for k, t in state.tickets.items() if t.state is TicketState.SERVING}
    state.by_number = {}
    state.queue = WaitingQueue()
    state.counters = {}
    state.blocks = {}
    state.offline_next = {}
    state.streak = 0
    state.active_by_resident = {
        (t.resident, t.item): t.id for t in state.tickets.values() if t.resident
    }
    rated = ratings.close_day(state, new_day)  # after the tickets left: it reads which stay
    helps = help_requests.close_day(state, new_day)
    # Closed cases leave memory (the app writes them to the history tables): the core
    # holds what is still open, returned, or closed on the day now closing.
    # A case across centres stays until its last version reached the city (city.py).
    archived = tuple(k for k in state.cases.values()
                     if k.state == "closed" and not city.unsent(state, k.id))
    if archived:
        gone = {k.id for k in archived}
        state.cases = {i: k for i, k in state.cases.items() if i not in gone}
    kiosk_left, state.kiosk_left = state.kiosk_left, (0, 0)  # prereview.py
    return DayClosed(old, tuple(expired), archived, rated, helps, kiosk_left)


def savepoint(state: CentreState) -> Savepoint:
    """What a day roll-over may change: every attribute (the containers it replaces)
    and the windows' fields (it sets calling windows idle in place)."""
    return dict(vars(state)), [(w, copy.copy(w)) for w in state.windows.values()]


def rollback(state: CentreState, saved: Savepoint) -> None:
    attrs, windows = saved
    vars(state).clear()
    vars(state).update(attrs)
    for w, old in windows:
        for f in fields(Window):
            setattr(w, f.name, getattr(old, f.name))
