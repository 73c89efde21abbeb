"""Who is called next: the ordering policy.

Centres disagree on how priority residents (elderly, disabled, pregnant) go ahead, so the
rule is configuration, and both rules keep the normal queue moving:

* ``ratio``: after ``ratio`` priority tickets in a row, the next call takes a normal ticket
  if one is waiting (for example 2:1).
* ``aging``: each class has a weight; the ticket with the largest weight x time waited wins,
  so a long-waiting normal ticket eventually beats a fresh priority one.

Appointments are served first from ``appointment_early`` seconds before their booked time
until ``appointment_grace`` seconds after it; outside that span they queue by arrival like
everybody else. Within a class the order is always arrival order (oldest first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from sortedcontainers import SortedKeyList

from .model import Priority, Ticket


@dataclass(frozen=True, slots=True)
class OrderingPolicy:
    mode: Literal["ratio", "aging"] = "ratio"
    ratio: int = 2
    weights: dict[str, float] = field(default_factory=lambda: {"normal": 1.0, "priority": 3.0})
    appointment_early: float = 600.0
    appointment_grace: float = 900.0
    requeue_skipped: bool = True
    specialised_helps: bool = True
    # A resident may rate a service while it is given and this long (s) after it ended;
    # later, the rating would no longer be about this clerk's service (`rating_closed`).
    rating_window: float = 600.0

    def __post_init__(self) -> None:
        if self.mode not in ("ratio", "aging"):
            raise ValueError(f"ordering mode must be 'ratio' or 'aging', not {self.mode!r}")
        if self.ratio < 1:
            raise ValueError("ratio must be at least 1")
        if self.rating_window < 0:
            raise ValueError("rating_window must be >= 0 seconds")


def _by_order(t: Ticket) -> tuple[float, int]:
    return (t.order_key, t.serial)


def _by_appointment(t: Ticket) -> tuple[float, int]:
    return (t.appointment_at or 0.0, t.serial)


class WaitingQueue:
    """Waiting tickets, one ordered list per class, and how many wait for each item (so a
    new ticket's people-ahead count need not walk the whole queue). A queued ticket's
    `target_window` may only change through `retarget`, which keeps the counts right."""

    __slots__ = ("appointment", "by_item", "normal", "priority", "targeted")

    def __init__(self) -> None:
        self.normal: SortedKeyList = SortedKeyList(key=_by_order)
        self.priority: SortedKeyList = SortedKeyList(key=_by_order)
        self.appointment: SortedKeyList = SortedKeyList(key=_by_appointment)
        self.by_item: dict[str, int] = {}  # untargeted waiting tickets per item
        self.targeted = 0  # waiting tickets sent to one window

    def _list(self, t: Ticket) -> SortedKeyList:
        if t.priority is Priority.PRIORITY:
            return self.priority
        if t.priority is Priority.APPOINTMENT:
            return self.appointment
        return self.normal

    def add(self, t: Ticket) -> None:
        self._list(t).add(t)
        if t.target_window is None:
            self.by_item[t.item] = self.by_item.get(t.item, 0) + 1
        else:
            self.targeted += 1

    def remove(self, t: Ticket) -> None:
        self._list(t).remove(t)
        if t.target_window is None:
            left = self.by_item[t.item] - 1
            if left:
                self.by_item[t.item] = left
            else:
                del self.by_item[t.item]
        else:
            self.targeted -= 1

    def retarget(self, t: Ticket, window: int | None) -> None:
        self.remove(t)
        t.target_window = window
        self.add(t)

    def __len__(self) -> int:
        return len(self.normal) + len(self.priority) + len(self.appointment)

    def __iter__(self) -> Iterator[Ticket]:
        yield from self.appointment
        yield from self.priority
        yield from self.normal


def _first(tickets: Iterable[Ticket], ok: Callable[[Ticket], bool]) -> Ticket | None:
    for t in tickets:
        if ok(t):
            return t
    return None


def _appointment_candidates(
    q: WaitingQueue, ok: Callable[[Ticket], bool], now: float, p: OrderingPolicy
) -> tuple[Ticket | None, Ticket | None]:
    """(the due appointment to serve first, the oldest off-slot one that queues as normal)."""
    due = stray = None
    for t in q.appointment:
        if not ok(t):
            continue
        at = t.appointment_at or 0.0
        if at - p.appointment_early <= now <= at + p.appointment_grace:
            if due is None:
                due = t
        elif stray is None or _by_order(t) < _by_order(stray):
            stray = t
    return due, stray


def choose(
    q: WaitingQueue, ok: Callable[[Ticket], bool], now: float, p: OrderingPolicy, streak: int
) -> tuple[Ticket | None, int]:
    """Pick the next ticket among those `ok` accepts. Returns (ticket, new priority streak)."""
    due, stray = _appointment_candidates(q, ok, now, p) if q.appointment else (None, None)
    if due is not None:
        return due, streak
    normal = _first(q.normal, ok)
    if stray is not None and (normal is None or _by_order(stray) < _by_order(normal)):
        normal = stray
    prio = _first(q.priority, ok)
    if prio is None:
        return normal, 0 if normal is not None else streak
    if normal is None:
        return prio, streak + 1
    if p.mode == "ratio":
        if streak < p.ratio:
            return prio, streak + 1
        return normal, 0
    w_n = p.weights.get("normal", 1.0) * (now - normal.order_key)
    w_p = p.weights.get("priority", 1.0) * (now - prio.order_key)
    if w_p >= w_n:
        return prio, streak + 1
    return normal, 0
