"""What the past days' tables (hub/store/history.py) get of each day: its services and case
events, noted as they happen, and at the day's close the rows of what leaves the core's
memory with it (tickets, ratings, answered help requests, archived cases), handed to the
history sink. `apply` is the core's apply with this bookkeeping around it.
"""

from __future__ import annotations

from typing import Any

from ..core import commands as c
from ..core.effects import DayClosed, Effect
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
    before = ServiceWatch.before(app.centre, cmd)
    effects = app.centre.apply(cmd, now)
    closed = next((e for e in effects if isinstance(e, DayClosed)), None) \
        if held is not None else None
    if held is not None and closed is not None:
        _close(app, day, held, closed)
    _note_service(app, cmd, before, effects, now)
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
    for e in opened:
        app.case_events.append({"case": e.case, "at": now, "action": "accepted",
                                "day": today, "item": e.item, "clerk": e.clerk})
    if isinstance(cmd, c.CaseUpdate):
        app.case_events.append({"case": cmd.case, "at": now, "action": cmd.action,
                                "day": today, "item": None, "clerk": None})


def _close(app: AppState, day: str, held: list[dict[str, Any]], closed: DayClosed) -> None:
    """The history tables' rows of what left the core with the day (`closed`)."""
    gone = [{"ticket": r.ticket, "day": r.ticket[:8], "score": r.score, "window": r.window,
             "clerk": r.clerk, "at": r.at} for r in closed.ratings]
    helps = [{"pos": h.request, "day": app.centre.local_date(h.at).strftime("%Y%m%d"),
              "window": h.window, "clerk": h.clerk, "at": h.at,
              "answered_at": h.answered_at, "by": h.by} for h in closed.helps]
    app.closed_days.append(DayFacts(day, day_summary(day, held), held, gone, helps,
                                    app.services, app.case_events,
                                    [{**k.to_dict(), "day": day} for k in closed.archived]))
    app.services, app.case_events = [], []
    if app.history_sink is not None:
        app.history_sink(app.closed_days)
