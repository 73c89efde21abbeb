"""The city monthly report's staff, case and booking figures, from the tables the ingester
fills (ticket_events, ratings, case_events, bookings); the volumes and waits come from the
day summaries (dashboard.month_rows).

* **Staff five dimensions** (hub/report/staff.py, the centre's own report): each centre's
  month is rebuilt as the staff report's facts — services (`done` ticket events: clerk,
  window, start, end; the item from the ticket's `issued` event), ratings (clerk, score),
  promised cases (accepted by a clerk; returned / corrected / reopened counted against the
  accepting clerk, wherever the update came from) — and computed by the very same
  `staff.compute` with the city's catalog (standard minutes, weights). A centre's row is
  its centre summary (quantity, efficiency, value, 满意率, closed-loop quality); its clerks'
  scores are in the JSON by staff username. A district sums the centres' facts (efficiency
  Σ standard ÷ Σ actual minutes, rating Σ satisfied ÷ Σ ratings, quality 1 − Σ defective ÷
  Σ accepted). The city sees only the main item of a ticket (extra items do not cross), so
  quantity and value count one item per service.
* **Cases**: accepted in the month; closed in time (the department's decision, the first
  `approved` or `closed`, in the month, on or before the due day: the item's
  `promised_days` working days after acceptance, counted on the centre's holiday calendar,
  `city_centres.holidays`, a code of hub/forecast/calendars.py, mainland China's by
  default: public holidays off, the weekend days worked instead (调休) counted); overdue
  (decided in the month after the due day, or undecided at the month's end, or today,
  with the due day passed).
* **Bookings**: booked, checked in and no-shows of the month's slots (the newest counts a
  centre sent for each day).

No resident appears: the tables hold none but tokens, and none is read here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from ..core.catalog import Catalog
from ..forecast.calendars import DEFAULT as DEFAULT_HOLIDAYS
from ..forecast.calendars import HolidayCalendar
from ..report import staff
from . import citydb

TZ_MINUTES = 480  # the centres' local time (days in the tables are local days)
FINISH = ("approved", "closed")
DEFECTS = ("returned", "corrected", "reopened")
CASE_LOOKBACK_DAYS = 400  # cases accepted this long before the month still counted overdue


def _scope(who: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    if who["role"] == "city":
        return "TRUE", ()
    return "c.district = %s", (who["district"],)


def facts(conn: Any, who: dict[str, Any], month: dt.date) -> dict[str, staff.Facts]:
    """Each centre's staff-report facts of `month`."""
    where, args = _scope(who)
    end = citydb.next_month(month)
    start_ts, end_ts = staff.month_span(f"{month:%Y-%m}", TZ_MINUTES)
    out: dict[str, staff.Facts] = {}

    def of(centre: str) -> staff.Facts:
        f = out.get(centre)
        if f is None:
            f = out[centre] = staff.Facts(start_ts, end_ts)
        return f

    for centre, ticket, day, win, clerk, started, ended, item in conn.execute(
            f"""SELECT e.centre, e.ticket, e.day, e.win, e.clerk, e.started, e.ended, i.item
                FROM ticket_events e JOIN city_centres c ON c.centre = e.centre
                LEFT JOIN LATERAL (SELECT item FROM ticket_events i
                                   WHERE i.centre = e.centre AND i.day = e.day
                                     AND i.ticket = e.ticket AND i.ev = 'issued' LIMIT 1) i
                       ON TRUE
                WHERE e.ev = 'done' AND e.day >= %s AND e.day < %s AND {where}""",
            (month, end, *args)):
        f = of(centre)
        w = int(win or 0)
        f.services.append(staff.Service(
            ticket, day.isoformat(), w, staff.clerk_name(clerk, w),
            (item,) if item else (), float(started if started is not None else ended),
            float(ended)))
        f.open_days.add(day.isoformat())
    for centre, ticket, win, clerk, score, at in conn.execute(
            f"""SELECT r.centre, r.ticket, r.win, r.clerk, r.score, r.at
                FROM ratings r JOIN city_centres c ON c.centre = r.centre
                WHERE r.day >= %s AND r.day < %s AND {where}""", (month, end, *args)):
        of(centre).ratings.append(staff.Rating(ticket, staff.clerk_name(clerk, int(win or 0)),
                                               int(score), float(at)))
    for centre, case, item, by, at in conn.execute(
            f"""SELECT a.centre, a.case_id, a.item, a.by_whom, a.at
                FROM case_events a JOIN city_centres c ON c.centre = a.centre
                WHERE a.action = 'accepted' AND a.day >= %s AND a.day < %s AND {where}""",
            (month, end, *args)):
        of(centre).cases.append(staff.CaseEvent(case, item or "", by or "unknown",
                                                "accepted", float(at)))
    lookback = month - dt.timedelta(days=CASE_LOOKBACK_DAYS)
    for centre, case, item, by, action, at in conn.execute(
            f"""SELECT a.centre, a.case_id, a.item, a.by_whom, d.action, d.at
                FROM case_events d
                JOIN case_events a ON a.case_id = d.case_id AND a.action = 'accepted'
                                  AND a.day >= %s AND a.day < %s
                JOIN city_centres c ON c.centre = a.centre
                WHERE d.action IN {DEFECTS} AND d.day >= %s AND d.day < %s AND {where}""",
            (lookback, end, month, end, *args)):
        of(centre).cases.append(staff.CaseEvent(case, item or "", by or "unknown", action,
                                                float(at)))
    return out


class DueDays:
    """Working days on one centre's holiday calendar (hub/forecast/calendars.py: public
    holidays off, 调休 weekend days on), for a promised case's due day; each (start, days)
    counted once."""

    def __init__(self, code: str | None) -> None:
        self.calendar = HolidayCalendar.parse(code or DEFAULT_HOLIDAYS)
        self._due: dict[tuple[dt.date, int], dt.date] = {}

    def add_workdays(self, start: dt.date, days: int) -> dt.date:
        """The date `days` working days after `start` (the centre's own rule:
        hub/core/day_calendar.py, with its region's holidays)."""
        key = (start, days)
        due = self._due.get(key)
        if due is None:
            due = start
            for _ in range(max(0, days)):
                due += dt.timedelta(days=1)
                while not self.calendar.workday(due):
                    due += dt.timedelta(days=1)
            self._due[key] = due
        return due


def local_date(ts: float) -> dt.date:
    """The centres' local day of an epoch time."""
    return dt.datetime.fromtimestamp(ts, dt.timezone(dt.timedelta(minutes=TZ_MINUTES))).date()


def case_counts(conn: Any, who: dict[str, Any], month: dt.date, catalog: Catalog,
                today: dt.date) -> dict[str, dict[str, int]]:
    """Each centre's cases of `month`: accepted, closed in time, overdue."""
    where, args = _scope(who)
    end = citydb.next_month(month)
    calendars: dict[str, DueDays] = {}  # by holiday calendar code
    # Overdue when the due day has passed by the month's end (or by today).
    cutoff = min(end, today)
    out: dict[str, dict[str, int]] = defaultdict(
        lambda: {"cases_accepted": 0, "cases_in_time": 0, "cases_overdue": 0})
    rows = conn.execute(
        f"""SELECT a.centre, a.item, a.day, a.at,
                   (SELECT min(f.at) FROM case_events f WHERE f.case_id = a.case_id
                      AND f.action IN {FINISH} AND f.at >= a.at AND f.day >= a.day),
                   coalesce(c.holidays, %s)
            FROM case_events a JOIN city_centres c ON c.centre = a.centre
            WHERE a.action = 'accepted' AND a.day >= %s AND a.day < %s AND {where}""",
        (DEFAULT_HOLIDAYS, month - dt.timedelta(days=CASE_LOOKBACK_DAYS), end,
         *args)).fetchall()
    for centre, item, day, at, finished, code in rows:
        row = out[centre]
        if month <= day < end:
            row["cases_accepted"] += 1
        it = catalog.item(item) if item else None
        cal = calendars.get(code)
        if cal is None:
            cal = calendars[code] = DueDays(code)
        due = cal.add_workdays(local_date(at), it.promised_days if it else 0)
        if finished is not None:
            done_day = local_date(finished)
            if month <= done_day < end:
                row["cases_in_time" if done_day <= due else "cases_overdue"] += 1
            elif done_day >= end and due < cutoff:
                row["cases_overdue"] += 1  # still undecided at the month's end, late
        elif due < cutoff:
            row["cases_overdue"] += 1
    return dict(out)


BOOKING_KEYS = ("booked", "checked_in", "no_show")


def booking_counts(conn: Any, who: dict[str, Any], month: dt.date
                   ) -> dict[str, dict[str, int]]:
    """Each centre's bookings of `month`'s slots: booked, checked in, no-shows."""
    where, args = _scope(who)
    end = citydb.next_month(month)
    out: dict[str, dict[str, int]] = {}
    for centre, counts in conn.execute(
            f"""SELECT b.centre, b.counts FROM (
                    SELECT DISTINCT ON (centre, day) centre, counts FROM bookings
                    WHERE day >= %s AND day < %s ORDER BY centre, day, pos DESC, part DESC) b
                JOIN city_centres c ON c.centre = b.centre WHERE {where}""",
            (month, end, *args)):
        row = out.setdefault(centre, {f"bookings_{k}": 0 for k in BOOKING_KEYS})
        for k in BOOKING_KEYS:
            row[f"bookings_{k}"] += int(counts.get(k) or 0)
    return out


STAFF_KEYS = ("clerks", "quantity", "efficiency", "value", "rating", "quality")


def staff_figures(f: staff.Facts, catalog: Catalog) -> dict[str, Any]:
    """A centre's five dimensions (its centre summary) and its clerks' scores."""
    rep = staff.compute(f, catalog)
    c = rep.centre
    defective = sum(r.defective_cases for r in rep.clerks)
    return {
        "staff": {"clerks": c["clerks"], "quantity": c["quantity"],
                  "efficiency": _r(c["efficiency"]), "value": round(c["value"], 1),
                  "rating": _r(c["rating_share"]), "quality": _r(c["quality"])},
        "staff_clerks": [{"clerk": r.clerk, "quantity": r.quantity,
                          "efficiency": _r(r.efficiency), "value": round(r.value, 1),
                          "rating": _r(r.rating_share), "quality": _r(r.quality),
                          "scores": {k: round(v, 1) for k, v in r.scores.items()},
                          "composite": round(r.composite, 1), "rank": r.rank}
                         for r in sorted(rep.clerks, key=lambda r: r.rank)],
        # the sums a district adds up
        "_s": (sum(r.standard_minutes for r in rep.clerks),
               sum(r.actual_minutes for r in rep.clerks), c["ratings"], c["satisfied"],
               c["cases"], defective),
    }


def staff_sum(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Several centres' five dimensions together (a district, the city)."""
    std, act, ratings, sat, cases, defective = (
        sum(r["_s"][k] or 0 for r in rows if "_s" in r) for k in range(6))  # None: none
    return {"clerks": sum(r["staff"]["clerks"] or 0 for r in rows if "staff" in r),
            "quantity": sum(r["staff"]["quantity"] or 0 for r in rows if "staff" in r),
            "efficiency": _r(std / act) if act else None,
            "value": round(sum(r["staff"]["value"] or 0 for r in rows if "staff" in r), 1),
            "rating": _r(sat / ratings) if ratings else None,
            "quality": _r(max(0.0, 1.0 - defective / cases)) if cases else None}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
