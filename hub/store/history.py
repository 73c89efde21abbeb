"""Past days in SQL tables, not in memory: each closed day's tickets (with their waits),
ratings and answered help requests, the promised cases closed by its end (their final
state: they leave the core with the day), and a one-row summary of the day.

The hub's memory holds the current day (and what is still open: unanswered help requests,
ratings of a ticket served across midnight); at a day's close (`HubApp`, the record that
rolls the day over) the closing day's facts are captured (`DayFacts`, pure) and handed to
the history sink, which writes them here. Writes are idempotent (rows keyed by ticket id or
journal position are replaced), so a replay that closes the same day again, or a retry
after a failed write, leaves the same rows. The journal stays the source of truth:
`onewindow history --rebuild` replays it and rewrites every day.

Readers query by day range with indexes (dashboard period summary, staff report), so a
query's cost follows the range asked for, not the length of the history.

`history_ratings.score` is a level of the national five-level scale (好差评: 5 非常满意 ..
1 非常不满意, core/ratings.py); rows written before it (schema 0001) held the old three
levels, which migration 0002 mapped. Satisfied, as the state counts its 满意率, is a level
of 3 or more: (非常满意 + 满意 + 基本满意) / all.

Follow-ups of low ratings (差评整改, core/followups.py) stay in the core while open, across
days; what the tables get is their events, `history_followup_events`: opened (by a rating
of 2 or 1) and closed (by whom, with the note), each written at the close of the day it
happened on. Bookings (core/booking.py) leave as the core's counts of each slots' day,
`history_bookings` (booked, cancelled, checked in, late, no-show): a closing day's facts
carry the counts of the days a sweep at or before that close could still change (a
no-show is counted when the core sweeps it, which can be after the slot's midnight), and
rows are replaced by day, so each day ends with its final counts. Both are read by the
staff report's table path (`report_rows`), which then equals its replay (migration 0003).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement

from ..core.booking import COUNTS as BOOKING_COUNTS
from ..core.measures import percentile
from ..core.ratings import LEVELS, SATISFIED
from . import db
from .schema import history_bookings as bookings
from .schema import history_case_events as case_events
from .schema import history_cases as cases
from .schema import history_days as days
from .schema import history_followup_events as followups
from .schema import history_help as helps
from .schema import history_pauses as pauses
from .schema import history_ratings as ratings
from .schema import history_services as services
from .schema import history_tickets as tickets

log = logging.getLogger("onewindow.hub")

CASE_COLUMNS = ("id", "ticket", "item", "opened_at", "due_day", "resident", "state",
                "closed_at", "department", "ready_at", "handed_by", "return_reason",
                "return_materials")  # core.model.Case's fields
CASE_EVENT_EXTRA = ("by", "department")  # 0007: absent in rows noted before it
CHUNK = 500  # keys per DELETE ... IN (...): well under every driver's parameter limit
_SATISFIED = ratings.c.score.in_(SATISFIED)  # 满意率's numerator: 非常满意, 满意, 基本满意


@dataclass(slots=True)
class DayFacts:
    """What leaves memory when a day closes."""

    day: str
    summary: dict[str, Any]  # a history_days row
    tickets: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    helps: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)  # completed this day
    case_events: list[dict[str, Any]] = field(default_factory=list)  # of this day
    cases: list[dict[str, Any]] = field(default_factory=list)  # archived at its close
    followups: list[dict[str, Any]] = field(default_factory=list)  # events of this day
    bookings: list[dict[str, Any]] = field(default_factory=list)  # counts by slots' day
    pauses: list[dict[str, Any]] = field(default_factory=list)  # ended this day (0010)


def case_sql_row(r: dict[str, Any]) -> dict[str, Any]:
    """A history_cases row of an archived case (`Case.to_dict()` and its `day`; one noted
    before 0007, from an older snapshot's closed days, lacks the loop's fields): every
    column, the return's materials as "0,2"."""
    out = {n: r.get(n) for n in CASE_COLUMNS}
    out["day"] = r["day"]
    mats = r.get("return_materials")
    out["return_materials"] = mats if isinstance(mats, str) or mats is None else \
        ",".join(str(m) for m in mats)
    return out


def case_from_row(r: Any) -> dict[str, Any]:
    """An archived case's fields (core.model.Case) from a history_cases row or a pending
    closed day's: the return's materials as a tuple, text fields as the core keeps them;
    `department` stays None when the row has none (archived before 0007: the item's
    approver, which the caller knows from the catalog)."""
    m = r if isinstance(r, dict) else r._mapping
    out = {n: m.get(n) for n in CASE_COLUMNS}
    mats = out["return_materials"]
    if isinstance(mats, str):
        mats = [x for x in mats.split(",") if x]
    out["return_materials"] = tuple(int(x) for x in mats or ())
    out["return_reason"] = out["return_reason"] or ""
    return out


def ticket_rows(held: Iterable[Any]) -> list[dict[str, Any]]:
    """history_tickets rows of the core's tickets (core.model.Ticket)."""
    # From the core, not hub.web.floor: importing hub.web would load the web stack
    # (uvicorn, starlette, babel, jinja2: ~4.5 MB) into a hub that serves no pages.
    from ..core.model import first_call, one_window
    from ..core.prereview import outcome as prereview_outcome

    out = []
    for t in held:
        fc = first_call(t)
        served = [w for _, state, w in t.history if state == "done"]
        out.append({
            "id": t.id, "day": t.day, "item": t.item, "priority": str(t.priority.value),
            "state": str(t.state.value), "issued_at": t.issued_at,
            "first_call_at": fc[0] if fc else None,
            "window": served[-1] if served else (fc[1] if fc else None),
            "wait_min": max(0.0, (fc[0] - t.issued_at) / 60.0) if fc else None,
            "one_window": one_window(t),
            "extra_items": ",".join(t.extra_items),
            # pre-review (0006, core/prereview.py): the one-trip rate reads these
            "resident": t.resident, "review": prereview_outcome(t),
            "returned": ",".join(t.returned),
        })
    return out


def day_summary(day: str, rows: Sequence[dict[str, Any]],
                kiosk_left: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """`kiosk_left`: the day's kiosk pre-reviews that ended without a ticket, and of them
    with a tips slip printed (core.effects.DayClosed)."""
    mine = [r for r in rows if r["day"] == day]
    waits = sorted(r["wait_min"] for r in mine if r["wait_min"] is not None)
    return {
        "day": day, "tickets": len(mine),
        "served": sum(1 for r in mine if r["state"] == "done"),
        "no_shows": sum(1 for r in mine if r["state"] == "no_show"),
        "waits": len(waits), "wait_sum_min": sum(waits),
        "wait_p90_min": percentile(waits, 90),
        "one_window": sum(1 for r in mine if r["one_window"]),
        "kiosk_left": kiosk_left[0], "kiosk_left_tips": kiosk_left[1],
    }


def day_bounds(day: str, utc_offset_minutes: int) -> tuple[float, float]:
    """[start, end) of a local day "YYYYMMDD" in epoch seconds."""
    tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
    start = dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=tz)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


class History:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        db.upgrade(engine)  # a no-op on the journal's engine, which is current already
        self._written: set[str] | None = None  # days in history_days (sink), read once

    # ---- writing -----------------------------------------------------------------------
    def write(self, facts: Sequence[DayFacts]) -> None:
        """All of `facts` in one transaction, replacing rows with the same keys."""
        with self.engine.begin() as conn:
            for f in facts:
                for table, key, rows in ((tickets, tickets.c.id, f.tickets),
                                         (ratings, ratings.c.ticket, f.ratings),
                                         (helps, helps.c.pos, f.helps),
                                         (cases, cases.c.id, list(map(case_sql_row, f.cases))),
                                         (bookings, bookings.c.day, f.bookings)):
                    keys = [r[key.name] for r in rows]
                    for i in range(0, len(keys), CHUNK):
                        conn.execute(delete(table).where(key.in_(keys[i:i + CHUNK])))
                    if rows:
                        conn.execute(insert(table), rows)
                # A day's services and case events are all in memory until its close:
                # the day's rows are replaced as a whole.
                events = [{**dict.fromkeys(CASE_EVENT_EXTRA), **e} for e in f.case_events]
                for table, rows in ((services, f.services), (case_events, events),
                                    (followups, f.followups), (pauses, f.pauses)):
                    conn.execute(delete(table).where(table.c.day == f.day))
                    if rows:
                        conn.execute(insert(table), rows)
                conn.execute(delete(days).where(days.c.day == f.day))
                conn.execute(insert(days).values(**f.summary))

    def write_cases(self, facts: Sequence[DayFacts]) -> None:
        """Only the archived cases, follow-up events and booking counts of `facts`, in one
        transaction, replacing by id, by day and by day."""
        with self.engine.begin() as conn:
            for f in facts:
                keys = [r["id"] for r in f.cases]
                for i in range(0, len(keys), CHUNK):
                    conn.execute(delete(cases).where(cases.c.id.in_(keys[i:i + CHUNK])))
                if f.cases:
                    conn.execute(insert(cases), list(map(case_sql_row, f.cases)))
                conn.execute(delete(followups).where(followups.c.day == f.day))
                if f.followups:
                    conn.execute(insert(followups), f.followups)
                if f.pauses:  # days written before 0010 have none in the table
                    conn.execute(delete(pauses).where(pauses.c.day == f.day))
                    conn.execute(insert(pauses), f.pauses)
                keys = [r["day"] for r in f.bookings]
                if keys:
                    conn.execute(delete(bookings).where(bookings.c.day.in_(keys)))
                    conn.execute(insert(bookings), f.bookings)

    def sink(self, pending: list[DayFacts]) -> None:
        """The hub's sink: write what is pending and empty the list; on failure keep it for
        the next day's close (and say so): the journal still holds everything.

        A day already written is passed over: a replay (start-up without a snapshot, a
        rebuild after a failed message) closes the same days again with the very same
        facts, and a day is written whole or not at all (one transaction). Its archived
        cases, follow-up events and booking counts are written again all the same (replaced
        by id or day): days written before their tables existed (0003 for the latter two)
        have none there, and a replay writes each case's states in journal order, ending
        with its latest, and each day's booking counts likewise."""
        try:
            if self._written is None:
                self._written = self.days_written()
            todo = [f for f in pending if f.day not in self._written]
            if todo:
                self.write(todo)
            again = [f for f in pending if f.day in self._written
                     and (f.cases or f.followups or f.bookings or f.pauses)]
            if again:
                self.write_cases(again)
        except Exception as e:  # a storage outage must not fail the message closing the day
            log.warning("history of %s not written (%s); kept for the next try",
                        ", ".join(f.day for f in pending), e)
            return
        self._written.update(f.day for f in todo)
        pending.clear()

    # ---- reading -----------------------------------------------------------------------
    def summary(self, first: str, last: str) -> dict[str, Any]:
        """The dashboard's summary of days first..last (YYYYMMDD, inclusive), by SQL."""
        with self.engine.connect() as conn:
            d = conn.execute(select(
                func.count(), func.coalesce(func.sum(days.c.tickets), 0),
                func.coalesce(func.sum(days.c.served), 0),
                func.coalesce(func.sum(days.c.no_shows), 0),
                func.coalesce(func.sum(days.c.waits), 0),
                func.coalesce(func.sum(days.c.wait_sum_min), 0.0),
                func.max(days.c.wait_p90_min),
                func.coalesce(func.sum(days.c.one_window), 0),
            ).where(days.c.day.between(first, last))).one()
            r = conn.execute(select(func.count(), func.coalesce(
                func.sum(_SATISFIED.cast(Integer)), 0))
                .where(ratings.c.day.between(first, last))).one()
            # keyed "5" .. "1" as the dashboard's JSON carries it
            by_level = dict.fromkeys((str(k) for k in sorted(LEVELS, reverse=True)), 0)
            by_level.update({str(k): int(n) for k, n in conn.execute(
                select(ratings.c.score, func.count())
                .where(ratings.c.day.between(first, last)).group_by(ratings.c.score))
                if str(k) in by_level})
            h = conn.execute(select(
                func.count(), func.count(helps.c.answered_at),
                func.avg(helps.c.answered_at - helps.c.at))
                .where(helps.c.day.between(first, last))).one()
        n_days, n, served, no_shows, waits, wait_sum, worst_p90, one = d
        return {
            "first": first, "last": last, "days": int(n_days), "tickets": int(n),
            "served": int(served), "no_shows": int(no_shows),
            "avg_wait_min": round(float(wait_sum) / waits, 1) if waits else None,
            "worst_day_p90_wait_min": None if worst_p90 is None else round(worst_p90, 1),
            "one_window_rate": round(int(one) / served, 3) if served else None,
            "ratings": int(r[0]),
            "satisfaction_rate": round(int(r[1]) / r[0], 3) if r[0] else None,
            "ratings_by_level": by_level,  # 5 非常满意 .. 1 非常不满意
            "help_requests": int(h[0]), "help_answered": int(h[1]),
            "help_avg_answer_s": None if h[2] is None else round(float(h[2]), 1),
        }

    def ratings_by_clerk(self, first: str, last: str) -> dict[str, tuple[int, int]]:
        """clerk -> (ratings, satisfied: 非常满意 + 满意 + 基本满意) over days first..last,
        by SQL (staff report)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ratings.c.clerk, func.count(),
                       func.sum(_SATISFIED.cast(Integer)))
                .where(ratings.c.day.between(first, last)).group_by(ratings.c.clerk)).all()
        return {str(clerk or ""): (int(n), int(s or 0)) for clerk, n, s in rows}

    def report_rows(self, first: str, last: str) -> dict[str, Sequence[Any]]:
        """The staff report's facts of days first..last, by SQL: services, ratings, case
        events (an update joined to its case's acceptance, in any earlier month, for its
        owner), tickets issued (their items), the days with tickets, follow-up events,
        the follow-ups that may be open in the period (opened up to `last`, not closed
        before `first`: (opened at, closed at or None)), the booking counts by day
        and the answered help calls with their steps (by department)."""
        closed = followups.alias("closed")
        owner = case_events.alias("accepted")
        with self.engine.connect() as conn:
            out = {
                "services": conn.execute(select(services).where(
                    services.c.day.between(first, last))).all(),
                "ratings": conn.execute(select(
                    ratings.c.ticket, ratings.c.clerk, ratings.c.window, ratings.c.score,
                    ratings.c.at).where(ratings.c.day.between(first, last))).all(),
                "cases": conn.execute(
                    select(case_events.c.case, case_events.c.action, case_events.c.at,
                           func.coalesce(case_events.c.item, owner.c.item),
                           func.coalesce(case_events.c.clerk, owner.c.clerk))
                    .outerjoin(owner, (owner.c.case == case_events.c.case)
                               & (owner.c.action == "accepted")
                               & (case_events.c.action != "accepted"))
                    .where(case_events.c.day.between(first, last))).all(),
                "tickets": conn.execute(select(tickets.c.day, tickets.c.item,
                                               tickets.c.extra_items, tickets.c.issued_at)
                                        .where(tickets.c.day.between(first, last))).all(),
                "days": conn.execute(select(days.c.day).where(
                    days.c.day.between(first, last))).scalars().all(),
                "followups": conn.execute(select(
                    followups.c.ticket, followups.c.action, followups.c.at,
                    followups.c.window, followups.c.clerk)
                    .where(followups.c.day.between(first, last))).all(),
                "followups_open": conn.execute(
                    select(followups.c.at, closed.c.at)
                    .outerjoin(closed, (closed.c.ticket == followups.c.ticket)
                               & (closed.c.action == "closed"))
                    .where((followups.c.action == "opened") & (followups.c.day <= last)
                           & (closed.c.day.is_(None) | (closed.c.day >= first)))).all(),
                "bookings": conn.execute(select(bookings.c.day, *[
                    bookings.c[k] for k in BOOKING_COUNTS]).where(
                    bookings.c.day.between(first, last))).all(),
                # breaks at the windows (hub/report/pauses.py), by the day they ended
                "pauses": conn.execute(select(pauses).where(
                    pauses.c.day.between(first, last))).all(),
                # help calls (窗口吹哨 科室报到): the report's response times per department
                "helps": conn.execute(select(
                    helps.c.pos, helps.c.department, helps.c.at, helps.c.answered_at,
                    helps.c.arrived_at, helps.c.resolved_at, helps.c.escalated_at)
                    .where(helps.c.day.between(first, last))).all(),
            }
        return out

    # ---- archived cases (closed, out of the core's memory) --------------------------------
    def case(self, case_id: str) -> dict[str, Any] | None:
        """An archived case's fields (core.model.Case), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*[cases.c[n] for n in CASE_COLUMNS])
                               .where(cases.c.id == case_id)).first()
        return case_from_row(row) if row is not None else None

    def cases_of(self, resident: str) -> list[dict[str, Any]]:
        """A resident's archived cases, oldest first (by the resident index)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*[cases.c[n] for n in CASE_COLUMNS])
                                .where(cases.c.resident == resident)
                                .order_by(cases.c.opened_at, cases.c.id)).all()
        return [case_from_row(r) for r in rows]

    def closed_cases(self, first: str, last: str, limit: int = 100, offset: int = 0,
                     department: str | None = None, items: Sequence[str] = ()
                     ) -> tuple[int, list[dict[str, Any]]]:
        """(how many, one page of) the cases archived at the close of days first..last
        (YYYYMMDD, inclusive), newest first: the back office's closed list; with
        `department`, that department's only (by the (department, day) index), and of
        the cases archived before 0007 (no department kept) those of its `items` (the
        items it approves)."""
        days = cases.c.day.between(first, last)
        where: ColumnElement[bool] = days
        if department is not None:
            # The day range inside each branch of the OR: each is then one range of the
            # (department, day) index, not all of the department's rows filtered by day.
            where = (cases.c.department == department) & days
            if items:
                where = where | (cases.c.department.is_(None) & cases.c.item.in_(list(items))
                                 & days)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(cases).where(where)).scalar()
            rows = conn.execute(select(*[cases.c[n] for n in CASE_COLUMNS])
                                .where(where)
                                .order_by(cases.c.day.desc(), cases.c.closed_at.desc(),
                                          cases.c.id)
                                .limit(limit).offset(offset)).all()
        return int(total or 0), [case_from_row(r) for r in rows]

    def case_steps(self, case_id: str) -> list[dict[str, Any]]:
        """A case's steps on past days (accepted, the back office's actions), oldest
        first, with who did each and the department after it (null before 0007): the
        case page's history, by the table's primary key (case, at, action)."""
        c = case_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.at, c.action, c.by, c.clerk, c.department)
                                .where(c.case == case_id).order_by(c.at)).all()
        return [dict(r._mapping) for r in rows]

    def days_written(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(days.c.day)).scalars())


__all__ = ["CASE_COLUMNS", "DayFacts", "History", "case_from_row", "case_sql_row",
           "day_bounds", "day_summary", "ticket_rows"]
