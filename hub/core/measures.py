"""Measures of the day's tickets that the staff floor (hub/web/floor.py), the simulator's
scores (hub/sim/metrics.py, hub/forecast/staffing.py) and the history store all report:
one definition each, so a p90 wait means the same on every screen and in every plan."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .model import Priority, Ticket, TicketState, first_call


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): a value that occurred, None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def wait_minutes(t: Ticket) -> float | None:
    """Minutes from issue to the first call, None if never called."""
    fc = first_call(t)
    return None if fc is None else max(0.0, (fc[0] - t.issued_at) / 60.0)


def tier_waits(today: Iterable[Ticket], now: float,
               wait_of: Callable[[Ticket], float | None] = wait_minutes,
               ) -> dict[str, dict[str, Any]]:
    """The day's waits per tier (normal, priority, appointment), for the supervisors: how
    many wait now and the longest of their waits so far; of those called, the longest and
    the 90th-percentile wait to the first call (minutes, one decimal; None for none). A
    ticket counts in the tier it is in now (a clerk may have marked it priority). `wait_of`:
    a ticket's wait to its first call (the live floor's is kept per ticket: floor.py)."""
    waiting: dict[Priority, list[float]] = {p: [] for p in Priority}
    called: dict[Priority, list[float]] = {p: [] for p in Priority}
    for t in today:
        if t.state is TicketState.WAITING:
            waiting[t.priority].append(max(0.0, (now - t.issued_at) / 60.0))
        elif (w := wait_of(t)) is not None:
            called[t.priority].append(w)
    out: dict[str, dict[str, Any]] = {}
    for tier in Priority:
        ws, cs = waiting[tier], called[tier]
        p90 = percentile(cs, 90)
        out[tier.value] = {
            "waiting": len(ws),
            "longest_waiting_min": round(max(ws), 1) if ws else None,
            "called": len(cs),
            "p90_wait_min": None if p90 is None else round(p90, 1),
            "max_wait_min": round(max(cs), 1) if cs else None,
        }
    return out
