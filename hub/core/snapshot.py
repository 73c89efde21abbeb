"""Restore a Centre from `Centre.to_dict()`: the core's half of a hub snapshot.

Pure, like the rest of the core. `to_dict` names every piece of state, derived indexes
included; this module rebuilds the very objects (one Ticket object shared by `tickets`,
`by_number` and the queue) so that a restored centre answers every command as the one it
was taken from. Derived caches (reach, share rows, the day's span) are recomputed.
"""

from __future__ import annotations

from typing import Any

from .centre import Centre
from .model import Case, Priority, Rating, Ticket, TicketState, WindowState
from .policy import WaitingQueue


class SnapshotMismatch(ValueError):
    """The dict does not describe a state of this centre (another catalog or windows)."""


def centre_state(centre: Centre) -> dict[str, Any]:
    """`centre.to_dict()` with tickets, cases and ratings in the order they were added
    (to_dict sorts them for comparison): walks over them (voiding the latest ticket of a
    request, the wait predictor's newest-first scan, the resident's view) depend on it."""
    d = centre.to_dict()
    for name in ("tickets", "cases", "ratings"):
        if name in d:
            d[name] = {k: d[name][k] for k in getattr(centre, name)}
    return d


def ticket_from_dict(d: dict[str, Any]) -> Ticket:
    return Ticket(
        id=d["id"], number=d["number"], day=d["day"], item=d["item"],
        priority=Priority(d["priority"]), issued_at=d["issued_at"], order_key=d["order_key"],
        serial=d["serial"], extra_items=tuple(d["extra_items"]), resident=d["resident"],
        appointment_at=d["appointment_at"], source=d["source"], request=d["request"],
        state=TicketState(d["state"]), window=d["window"], target_window=d["target_window"],
        requeued=d["requeued"], recalls=d["recalls"], note=d["note"],
        history=[(h[0], h[1], h[2]) for h in d["history"]],
    )


def restore_centre(centre: Centre, d: dict[str, Any]) -> None:
    """Load `d` (from `to_dict`) into `centre`, a fresh Centre of the same catalog and
    configuration. Raises SnapshotMismatch (or KeyError/ValueError for a malformed dict)
    before changing anything it cannot restore whole."""
    windows = {int(n): w for n, w in d["windows"].items()}
    if set(windows) != set(centre.windows):
        raise SnapshotMismatch(f"snapshot windows {sorted(windows)} are not this centre's "
                               f"{sorted(centre.windows)}")
    items = centre.catalog.items
    tickets = {k: ticket_from_dict(t) for k, t in d["tickets"].items()}
    unknown = sorted({t.item for t in tickets.values()} - set(items))
    if unknown:
        raise SnapshotMismatch(f"snapshot tickets name items not in the catalog: {unknown}")
    by_number = {n: tickets[tid] for n, tid in d["by_number"].items()}
    queue = WaitingQueue()
    for tid in d["queue"]:
        queue.add(tickets[tid])
    if (dict(sorted(queue.by_item.items())) != d["queue_by_item"]
            or queue.targeted != d["queue_targeted"]):
        raise SnapshotMismatch("snapshot queue counts do not match its tickets")
    # Everything read: from here on nothing can fail half-way.
    for n, wd in windows.items():
        w = centre.windows[n]
        w.skills = frozenset(wd["skills"])
        w.state = WindowState(wd["state"])
        w.clerk, w.ticket, w.since = wd["clerk"], wd["ticket"], wd["since"]
    centre.day = d["day"]
    centre._day_span = (0.0, 0.0)  # the next operation works out its day again
    centre.serial, centre.streak = d["serial"], d["streak"]
    centre.counters = dict(d["counters"])
    centre.blocks = {dev: {p: [(a, b) for a, b in r] for p, r in b.items()}
                     for dev, b in d["blocks"].items()}
    centre.offline_next = dict(d["offline_next"])
    centre.tickets, centre.by_number, centre.queue = tickets, by_number, queue
    centre.active_by_resident = {(r, i): t for r, i, t in d["active_by_resident"]}
    centre.cases = {k: Case(**v) for k, v in d["cases"].items()}
    if "ratings" in d:
        centre.ratings = {k: Rating(**v) for k, v in d["ratings"].items()}
    centre._refresh_reach()
