"""The core's half of a hub snapshot: `centre_state` and `restore_centre`.

Pure, like the rest of the core. The state is what `Centre.to_dict` names, derived indexes
included; `restore_centre` rebuilds the very objects (one Ticket object shared by `tickets`,
`by_number` and the queue) so that a restored centre answers every command as the one it
was taken from. Derived caches (reach, share rows, the day's span) are recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from operator import attrgetter
from typing import Any

from . import city as city_mod
from . import followups
from .booking import Booking
from .centre import Centre
from .model import Case, HelpRequest, Priority, Rating, Ticket, TicketState, WindowState
from .notices import Contact, Notice
from .policy import WaitingQueue
from .ratings import FROM_THREE
from .station_book import Stations


class SnapshotMismatch(ValueError):
    """The dict does not describe a state of this centre (another catalog or windows)."""


CASE_FIELDS = tuple(f.name for f in fields(Case))
_case_row = attrgetter(*CASE_FIELDS)  # a tuple per case, in C: JSON writes it as a list


def centre_state(centre: Centre, *, case_columns: bool = False) -> dict[str, Any]:
    """The core's state for a snapshot: what `to_dict` holds, in the order things were added
    (walks over tickets, cases and ratings depend on it: voiding the latest ticket of a
    request, the wait predictor's newest-first scan, a resident's view), with the cases as
    columns (`CASE_FIELDS` once, then one row each): a year holds ~300,000 of them, and
    a dict per case took most of a snapshot's time and size. The round-trip test compares
    `to_dict` after a restore, so state added to the core and not here shows up there.

    `case_columns`: the cases as one list per field instead of one tuple per case (the
    hub's checkpoint, copied in its loop and written as rows in a thread by
    hub/store/snapshot.py `encode`): a year's ~19,000 tuples, freed once written, left
    their pages of Python's small-object heap resident among longer-lived objects (the
    settled RSS after a year, tools/bench/bench_startup.py); 13 big lists go back whole."""
    q = centre.queue
    return {
        "day": centre.day,
        "serial": centre.serial,
        "streak": centre.streak,
        "counters": dict(centre.counters),
        "blocks": {d: {p: [list(x) for x in r] for p, r in b.items()}
                   for d, b in centre.blocks.items()},
        "offline_next": dict(centre.offline_next),
        "contacts": [v.to_dict() for v in centre.contacts.values()],
        "notices": [v.to_dict() for v in centre.notices.values()],
        "pickups": {k: list(v) for k, v in centre.pickups.items()},
        "tickets": {k: t.to_dict() for k, t in centre.tickets.items()},
        "by_number": {n: t.id for n, t in centre.by_number.items()},
        "active_by_resident": [[r, i, t] for (r, i), t in centre.active_by_resident.items()],
        "queue": [t.id for t in q],
        "queue_by_item": dict(sorted(q.by_item.items())),
        "queue_targeted": q.targeted,
        "windows": {n: w.to_dict() for n, w in centre.windows.items()},
        "cases": ({"fields": list(CASE_FIELDS),
                   "columns": [list(map(attrgetter(f), centre.cases.values()))
                               for f in CASE_FIELDS]} if case_columns else
                  {"fields": list(CASE_FIELDS),
                   "rows": list(map(_case_row, centre.cases.values()))}),
        "ratings": {k: r.to_dict() for k, r in centre.ratings.items()},
        "rated_carried": sorted(centre.rated_carried),
        "help_requests": [h.to_dict() for h in centre.help_requests.values()],
        "rating_scale": 5,  # absent: a snapshot of three-level ratings (restore maps them)
        "followups": [f.to_dict() for f in centre.followups.values()],
        "bookings": [b.to_dict() for b in centre.bookings.values()],
        "booking_serial": centre.booking_serial,
        "booking_counts": {k: list(v) for k, v in centre.booking_counts.items()},
        "stations": centre.stations.to_dict(),  # community stations (stations.py)
        "kiosk_left": list(centre.kiosk_left),
        "city": centre.city.to_dict(),  # cases across centres, the city catalog (city.py)
    }


def ticket_from_dict(d: dict[str, Any]) -> Ticket:
    return Ticket(
        id=d["id"], number=d["number"], day=d["day"], item=d["item"],
        priority=Priority(d["priority"]), issued_at=d["issued_at"], order_key=d["order_key"],
        serial=d["serial"], extra_items=tuple(d["extra_items"]), resident=d["resident"],
        appointment_at=d["appointment_at"], source=d["source"], request=d["request"],
        state=TicketState(d["state"]), window=d["window"], target_window=d["target_window"],
        requeued=d["requeued"], recalls=d["recalls"], note=d["note"],
        history=[(h[0], h[1], h[2]) for h in d["history"]],
        # Snapshots taken before pre-review was journaled have none of these.
        review=d.get("review"), returned=tuple(d.get("returned", ())),
        returned_by=d.get("returned_by"),
    )


def restore_centre(centre: Centre, d: dict[str, Any]) -> None:
    """Load `d` (from `centre_state`) into `centre`, a fresh Centre of the same catalog and
    configuration. Raises SnapshotMismatch (or KeyError/ValueError for a malformed dict)
    before changing anything it cannot restore whole."""
    windows = {int(n): w for n, w in d["windows"].items()}
    if set(windows) != set(centre.windows):
        raise SnapshotMismatch(f"snapshot windows {sorted(windows)} are not this centre's "
                               f"{sorted(centre.windows)}")
    # The city's catalog, when one was put in place, before anything names its items.
    city = city_mod.CityBook.from_dict(d.get("city"))  # none in snapshots before the city
    catalog = (city_mod.parse(city.catalog_data) if city.catalog_data is not None
               else centre.catalog)
    items = catalog.items
    items_ids = {k: k for k in items}
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
    table = d["cases"]
    rows = table["rows"] if "rows" in table else list(zip(*table["columns"], strict=True))
    cases = _cases(table["fields"], rows, items)
    ratings = {k: Rating(**v) for k, v in d["ratings"].items()}
    if d.get("rating_scale", 3) == 3:  # taken before the five levels (ratings.py)
        ratings = {k: replace(r, score=FROM_THREE[r.score]) for k, r in ratings.items()}
    follow = {f["ticket"]: followups.from_dict(f) for f in d.get("followups", ())}
    helps = {h["request"]: HelpRequest(**h) for h in d["help_requests"]}
    # Snapshots taken before remote takes have neither (hub/core/notices.py).
    contacts = {x["ticket"]: Contact(**x) for x in d.get("contacts", ())}
    notes = {x["id"]: Notice(**x) for x in d.get("notices", ())}
    # Snapshots taken before pick-up tickets have none (hub/core/pickup.py).
    pickups = {k: tuple(v) for k, v in d.get("pickups", {}).items()}
    # Snapshots taken before bookings have none.
    books = {b["code"]: Booking(**b) for b in d.get("bookings", ())}
    booking_counts = {k: [int(x) for x in v] for k, v in d.get("booking_counts", {}).items()}
    stations = Stations.from_dict(d.get("stations"))  # none in snapshots before stations
    # Everything read: from here on nothing can fail half-way.
    centre.city = city
    if city.catalog_data is not None:
        city_mod.use(centre, city.catalog_version, city.catalog_data)
    for n, wd in windows.items():
        w = centre.windows[n]
        # The catalog's own id strings, not the decoder's: 190 per window otherwise, each
        # holding on to a page of the freed snapshot.
        w.skills = frozenset(items_ids.get(s) or _copy(s) for s in wd["skills"])
        w.state = WindowState(wd["state"])
        w.clerk, w.ticket, w.since = wd["clerk"], wd["ticket"], wd["since"]
        # Snapshots taken before pause reasons have none: a paused window's is "".
        w.pause_reason = wd.get("pause_reason", "" if w.state is WindowState.PAUSED else None)
    centre.day = d["day"]
    centre._day_span = (0.0, 0.0)  # the next operation works out its day again
    centre.serial, centre.streak = d["serial"], d["streak"]
    centre.counters = dict(d["counters"])
    centre.blocks = {dev: {p: [(a, b) for a, b in r] for p, r in b.items()}
                     for dev, b in d["blocks"].items()}
    centre.offline_next = dict(d["offline_next"])
    centre.contacts, centre.notices = contacts, notes
    centre.pickups = pickups
    centre.tickets, centre.by_number, centre.queue = tickets, by_number, queue
    centre.active_by_resident = {(r, i): t for r, i, t in d["active_by_resident"]}
    centre.cases = cases
    centre.ratings = ratings
    centre.rated_carried = frozenset(d["rated_carried"])
    centre.followups = follow
    centre.help_requests = helps
    centre.bookings, centre.booking_counts = books, booking_counts
    centre.stations = stations
    centre.booking_serial = int(d.get("booking_serial", 0))
    # Snapshots taken before pre-review was journaled: nobody had left at the kiosk.
    left, tips = d.get("kiosk_left", (0, 0))
    centre.kiosk_left = (int(left), int(tips))
    centre._booking_due, centre._booking_day = float("inf"), ""  # the next apply sweeps
    centre._refresh_reach()


def to_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A list of dicts as columns and rows when they share their keys (a year of ratings:
    ~150,000 rows), else as they are."""
    cols = list(rows[0]) if rows else []
    if all(list(r) == cols for r in rows):
        return {"cols": cols, "rows": [list(r.values()) for r in rows]}
    return {"dicts": rows}


def from_table(t: dict[str, Any]) -> list[dict[str, Any]]:
    if "dicts" in t:
        return [dict(r) for r in t["dicts"]]
    return [dict(zip(t["cols"], r, strict=True)) for r in t["rows"]]


_V5_CASE = ("id", "ticket", "item", "opened_at", "due_day", "resident", "state",
            "closed_at", "department", "ready_at", "handed_by", "return_reason",
            "return_materials")


def _cases(names: list[str], rows: Iterable[Sequence[Any]], items: Mapping[str, Any]
           ) -> dict[str, Case]:
    """Cases from their decoded rows, holding none of the decoder's objects. The decoded
    snapshot (~150 MB for a year) is freed after the restore, but an arena of it that still
    holds one live string or float cannot be given back: cases keeping the decoder's own
    values kept ~90 MB more RSS than a full replay. So every value is a new object or one
    the core shares anyway: a case's ticket is its id, its item the catalog's, due days,
    states and departments repeat. A snapshot taken before the case loop has no
    department (the item's approver, as a replay of its journal opens it) and no pick-up
    or return fields (their defaults)."""
    memo: dict[Any, Any] = {k: k for k in items}
    out: dict[str, Case] = {}
    if tuple(names) == CASE_FIELDS == _V5_CASE:  # as this version writes them: 2x faster
        for (cid, ticket, item, opened, due, resident, state, closed, dept, ready, by,
             reason, mats) in rows:
            cid = _copy(cid)
            got: list[Any] = [memo.get(item), memo.get(due), memo.get(state), memo.get(dept)]
            if None in got:
                got = [memo.setdefault(x, _copy(x)) for x in (item, due, state, dept)]
            out[cid] = Case(cid, cid if ticket == cid else _copy(ticket), got[0],
                            opened + 0.0, got[1], _copy(resident), got[2], _copy(closed),
                            got[3], _copy(ready), _copy(by), _copy(reason),
                            tuple(mats) if mats else ())
        return out
    idx = {n: i for i, n in enumerate(names)}
    positional = tuple(names) == CASE_FIELDS
    for row in rows:
        vals = []
        for n, v in zip(names, row, strict=True):
            if n in ("item", "due_day", "state", "department"):
                shared = memo.get(v)
                if shared is None:
                    shared = memo[v] = _copy(v)
                v = shared
            elif n == "ticket" and v == row[idx["id"]]:
                v = None  # set to the id's copy below
            elif n == "return_materials":
                v = tuple(v) if v else ()
            else:
                v = _copy(v)
            vals.append(v)
        if "ticket" in idx and vals[idx["ticket"]] is None:
            vals[idx["ticket"]] = vals[idx["id"]]
        case = Case(*vals) if positional else Case(**dict(zip(names, vals, strict=True)))
        if "department" not in idx:
            case.department = items[case.item].approver
        out[case.id] = case
    return out


def _copy(v: Any) -> Any:
    """A new object equal to v (str and float; others as they are)."""
    if type(v) is str:
        return v.encode().decode() if v else ""
    if type(v) is float:
        return v + 0.0  # NaN and inf too: a new float all the same
    return v
