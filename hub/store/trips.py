"""Pre-review that counts (预审 / 一次办成), read from the past days' tables: what the
dashboard and the monthly report show, and the items residents really do together (多问一句).

* wasted waits avoided: kiosk pre-reviews that ended without a ticket (the resident left to
  fetch a missing material instead of finding out at the window after a wait),
  `history_days.kiosk_left`;
* returned for materials (退回补材料): tickets the clerk ended for missing materials;
* one-trip rate (一次办成率): of the tickets served (done, not returned) that carry a resident
  token, the share with no ticket of the same resident for the same item returned for
  materials in the `within` days before (a resident who came back with what was missing
  made a second trip; one turned away at the kiosk did not: they never waited);
* repeat visits: tickets with a resident token whose resident had another ticket for the
  same item in the `within` days before (any outcome).

Tickets without a token (a button press, the kiosk without a card) cannot be followed from
one visit to the next: the rates say how many they are over (`with_token`). The counting is
pure (`trip_stats` over ticket rows) so the dashboard counts today's tickets from the core
the same way. Queries go by day range on the day index: a year of history costs what the
range asked for costs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Integer, func, select
from sqlalchemy.engine import Engine

from .schema import history_days as days
from .schema import history_tickets as tickets

WITHIN_DAYS = 30  # a repeat visit / second trip counts within this many calendar days
COOCCUR_WEEKS = 8  # related items counted over the last weeks
COOCCUR_MIN = 2  # pairs seen fewer times are chance, not a habit


@functools.lru_cache(maxsize=4096)
def _shift(day: str, days_: int) -> str:
    d = dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])) + dt.timedelta(days=days_)
    return d.strftime("%Y%m%d")


Seen = dict[tuple[str, str], list[tuple[str, bool]]]


def look_back(rows: Iterable[Mapping[str, Any]]) -> Seen:
    """(resident, item) -> [(day, returned for materials)] of earlier tickets with a token:
    what `trip_stats` looks back on, built once (the dashboard's past days)."""
    seen: Seen = {}
    for r in sorted(rows, key=lambda r: (r["issued_at"], r["day"])):
        if r.get("resident"):
            seen.setdefault((r["resident"], r["item"]), []).append(
                (r["day"], bool(r.get("returned"))))
    return seen


def trip_stats(rows: Iterable[Mapping[str, Any]], first: str, within: int = WITHIN_DAYS,
               before: Seen | None = None) -> dict[str, Any]:
    """Counts over ticket rows (history_tickets columns: day, item, issued_at, state,
    resident, review, returned), those of days >= `first` counted, earlier ones only looked
    back on (they must reach `within` days before `first`); `before`: earlier tickets
    already gathered (`look_back`), not changed."""
    ordered = sorted(rows, key=lambda r: (r["issued_at"], r["day"]))
    # (resident, item) -> [(day, returned for materials)] of the tickets before
    seen: Seen = {}
    past = before or {}
    # plain counters: this runs on each live update of the dashboard (today's tickets)
    n_tickets = reviewed = anyway = returned = with_token = repeats = served = one = 0
    for r in ordered:
        day = r["day"]
        counted = day >= first
        review, ret_now = r.get("review"), bool(r.get("returned"))
        if counted:
            n_tickets += 1
            reviewed += review is not None
            anyway += review == "queued_anyway"
            returned += ret_now
        token = r.get("resident")
        if not token:
            continue
        key = (token, r["item"])
        earlier = past.get(key, ()), seen.get(key, ())
        if counted:
            lo = _shift(day, -within)
            prior = [ret for part in earlier for d, ret in part if d >= lo]
            with_token += 1
            repeats += bool(prior)
            if r["state"] == "done" and not ret_now:
                served += 1
                one += not any(prior)
        seen.setdefault(key, []).append((day, ret_now))
    return {
        "tickets": n_tickets, "reviewed": reviewed, "queued_anyway": anyway,
        "returned": returned, "with_token": with_token, "repeat_visits": repeats,
        "served_with_token": served, "one_trip": one,
        "one_trip_rate": round(one / served, 3) if served else None,
        "within_days": within,
    }


TICKET_COLS = (tickets.c.day, tickets.c.item, tickets.c.issued_at, tickets.c.state,
               tickets.c.resident, tickets.c.review, tickets.c.returned)
_NAMES = tuple(c.name for c in TICKET_COLS)


def _rows(conn: Any, where: Any) -> list[dict[str, Any]]:
    # plain tuples zipped into dicts: a Row's mapping costs ~20x more per row
    return [dict(zip(_NAMES, r, strict=True))
            for r in conn.execute(select(*TICKET_COLS).where(where)).all()]


def ticket_rows(engine: Engine, first: str, last: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return _rows(conn, tickets.c.day.between(first, last))


def prereview_summary(engine: Engine, first: str, last: str, within: int = WITHIN_DAYS,
                      today: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Days first..last (YYYYMMDD, inclusive) from the tables, plus `today`'s rows (the
    core's tickets, not yet in the tables) when given; the look-back reaches `within` days
    before `first`."""
    with engine.connect() as conn:
        left, tips = conn.execute(select(
            func.coalesce(func.sum(days.c.kiosk_left), 0),
            func.coalesce(func.sum(days.c.kiosk_left_tips), 0))
            .where(days.c.day.between(first, last))).one()
        rows = _rows(conn, tickets.c.day.between(_shift(first, -within), last)
                     & tickets.c.resident.is_not(None))
        counts = conn.execute(select(
            func.count(), func.count(tickets.c.review),
            func.coalesce(func.sum((tickets.c.review == "queued_anyway").cast(Integer)), 0))
            .where(tickets.c.day.between(first, last))).one()
        returned = conn.execute(select(func.count()).where(
            tickets.c.day.between(first, last) & (tickets.c.returned != ""))).scalar()
    today = list(today)
    stats = trip_stats([*rows, *(r for r in today if r.get("resident"))], first, within)
    # the token-less tickets count in the totals too (the SQL counted the tables' ones)
    stats["tickets"] = int(counts[0]) + len(today)
    stats["reviewed"] = int(counts[1]) + sum(r.get("review") is not None for r in today)
    stats["queued_anyway"] = int(counts[2]) + sum(r.get("review") == "queued_anyway"
                                                  for r in today)
    stats["returned"] = int(returned or 0) + sum(bool(r.get("returned")) for r in today)
    stats["kiosk_left"] = int(left)
    stats["kiosk_left_tips"] = int(tips)
    return stats


def pairs_of(groups: Iterable[Iterable[str]]) -> Counter[tuple[str, str]]:
    """How often each two items were done together, both ways round."""
    out = Counter[tuple[str, str]]()
    for g in groups:
        items = sorted(set(g))
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                out[(a, b)] += 1
                out[(b, a)] += 1
    return out


def cooccurrence(engine: Engine, first: str, last: str) -> Counter[tuple[str, str]]:
    """Items done together over days first..last: a ticket's item with its extra items, and
    the items one resident token had tickets for on one day."""
    groups: dict[tuple[str, str], set[str]] = {}
    single: list[list[str]] = []
    with engine.connect() as conn:
        for day, item, extra, resident in conn.execute(
                select(tickets.c.day, tickets.c.item, tickets.c.extra_items,
                       tickets.c.resident)
                .where(tickets.c.day.between(first, last)
                       & ((tickets.c.extra_items != "") | tickets.c.resident.is_not(None)))):
            mine = [item, *(x for x in (extra or "").split(",") if x)]
            if resident:
                groups.setdefault((day, resident), set()).update(mine)
            elif len(mine) > 1:
                single.append(mine)
    return pairs_of([*groups.values(), *single])


__all__ = ["COOCCUR_MIN", "COOCCUR_WEEKS", "WITHIN_DAYS", "cooccurrence", "look_back",
           "pairs_of", "prereview_summary", "ticket_rows", "trip_stats"]
