"""What the past days' tables (hub/store/history.py) get of each day: its services and case
events, noted as they happen, and at the day's close the rows of what leaves the core's
memory with it (tickets, ratings, answered help requests, archived cases), handed to the
history sink. `apply` is the core's apply with this bookkeeping around it.

Follow-ups (差评整改) and bookings are read off the core at the close, not noted as they
happen: a follow-up opened or closed during the day is still in the core's state when the
day closes (an open one stays; a closed one leaves only with a later day's operation), and
the core keeps the booking counts of every slots' day.
"""

from __future__ import annotations

from typing import Any

from ..core import booking as bk
from ..core import commands as c
from ..core.effects import DayClosed, Effect
from ..core.model import Followup
from ..report.pauses import PauseWatch
from ..report.staff import ServiceWatch
from ..store.history import DayFacts, day_bounds, day_summary, ticket_rows
from .state import AppState


def apply(app: AppState, cmd: c.Command, now: float) -> list[Effect]:
    """The core's apply; when it closes a day, that day's tickets, ratings and answered
    help requests leave memory for the history tables (captured before: the core drops
    the day's tickets as it rolls over)."""
    day = app.centre.day
    if day and app.day_bounds[0] != day:
        app.day_bounds = (day, *day_bounds(day, app.centre.config.utc_offset_minutes))
    closing = bool(day) and not (app.day_bounds[1] <= now < app.day_bounds[2])
    held = ticket_rows(app.centre.tickets.values()) if closing else None
    # (the core replaces its followups dict rather than mutating it: this list stays as is)
    followups = list(app.centre.followups.values()) if closing else []
    before = ServiceWatch.before(app.centre, cmd)
    paused = PauseWatch.before(app.centre, cmd)
    effects = app.centre.apply(cmd, now)
    closed = next((e for e in effects if isinstance(e, DayClosed)), None) \
        if held is not None else None
    if held is not None and closed is not None:
        _close(app, day, held, closed, followups)
    _note_service(app, cmd, before, effects, now)
    pause = PauseWatch.after(app.centre, paused, now)
    if pause is not None:  # a pause ended: the day it ended writes it (history_pauses)
        app.pauses.append(pause.row(app.centre.day))
    if app.effect_tap is not None:
        app.effect_tap(cmd, effects, now)
    return effects


def _note_service(app: AppState, cmd: c.Command, before: Any, effects: list[Effect],
                  now: float) -> None:
    service, opened = ServiceWatch.after(app.centre, before, effects, now)
    today = app.centre.day
    if service is not None:
        app.services.append({
            "ticket": service.ticket, "day": today, "window": service.window,
            "clerk": service.clerk, "items": ",".join(service.items),
            "start": service.start, "end": service.end})
    cases = app.centre.cases
    for e in opened:
        k = cases.get(e.case)
        app.case_events.append({"case": e.case, "at": now, "action": "accepted",
                                "day": today, "item": e.item, "clerk": e.clerk,
                                "by": e.clerk, "department": k.department if k else None})
    if isinstance(cmd, c.CaseUpdate):  # who did it, and where the case is after it
        k = cases.get(cmd.case)
        app.case_events.append({"case": cmd.case, "at": now, "action": cmd.action,
                                "day": today, "item": None, "clerk": None, "by": cmd.by,
                                "department": k.department if k else None})


def _close(app: AppState, day: str, held: list[dict[str, Any]], closed: DayClosed,
           followups: list[Followup]) -> None:
    """The history tables' rows of what left the core with the day (`closed`), of the
    follow-up events of the day (`followups`: the core's before the closing command) and
    of the booking counts the day's close may have changed."""
    gone = [{"ticket": r.ticket, "day": r.ticket[:8], "score": r.score, "window": r.window,
             "clerk": r.clerk, "at": r.at} for r in closed.ratings]
    helps = [{"pos": h.request, "day": app.centre.local_date(h.at).strftime("%Y%m%d"),
              "window": h.window, "clerk": h.clerk, "at": h.at,
              "answered_at": h.answered_at, "by": h.by, "department": h.department,
              "arrived_at": h.arrived_at, "arrived_by": h.arrived_by,
              "resolved_at": h.resolved_at, "resolved_by": h.resolved_by,
              "escalated_at": h.escalated_at} for h in closed.helps]
    app.closed_days.append(DayFacts(day, day_summary(day, held, closed.kiosk_left), held,
                                    gone, helps,
                                    app.services, app.case_events,
                                    [{**k.to_dict(), "day": day} for k in closed.archived],
                                    followup_rows(followups, day, *app.day_bounds[1:]),
                                    booking_rows(app), app.pauses))
    app.services, app.case_events, app.pauses = [], [], []
    if app.history_sink is not None:
        app.history_sink(app.closed_days)


def followup_rows(held: list[Followup], day: str, start: float, end: float
                  ) -> list[dict[str, Any]]:
    """history_followup_events rows of the follow-ups opened or closed in [start, end), the
    local day `day` (every follow-up operation happens inside the core's day: a rating or a
    closing rolls the day over first)."""
    out = []
    for f in held:
        base = {"ticket": f.ticket, "day": day, "window": f.window, "clerk": f.clerk,
                "score": f.score}
        if start <= f.at < end:
            out.append({**base, "action": "opened", "at": f.at, "by": None, "note": None})
        if f.closed_at is not None and start <= f.closed_at < end:
            out.append({**base, "action": "closed", "at": f.closed_at, "by": f.closed_by,
                        "note": f.note})
    return out


def booking_rows(app: AppState) -> list[dict[str, Any]]:
    """history_bookings rows, the core's counts (after the closing command, whose sweep
    counts the closed day's last no-shows) of the slots' days from the one whose bookings
    a sweep during the closed day (`app.day_bounds`) could still change (a check-in
    window past its midnight: the policy's grace) up to the new current day, not
    included: it closes later, and the days between had no record, so nothing more
    happens to them."""
    centre = app.centre
    lo = centre.local_date(app.day_bounds[1] - centre.policy.appointment_grace
                           ).strftime("%Y%m%d")
    return [{"day": d, **bk.counts_of(centre, d)} for d in sorted(centre.booking_counts)
            if lo <= d < centre.day]
