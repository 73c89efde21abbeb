"""Waits: what a take prints and answers (computed once, then kept in the take's record so a
replay prints the same), a waiting ticket's wait for the pages, the hall's forecast per item.
The predictor itself is hub/forecast/wait.py, refreshed between messages by
hub/forecast/refresh.py.
"""

from __future__ import annotations

from ..core.model import Ticket, TicketState
from ..forecast.wait import NO_WINDOW, Estimate
from ..store.journal import Record
from .state import AppState

LIVE_WAIT_STEP = 5.0  # s: pages share one wait simulation per journal position and step
ISSUE_WAITS_KEPT = 1000  # recent tickets whose printed wait is kept (app.issue_waits)


def ticket_wait(app: AppState, t: Ticket, now: float, version: int | None = None) -> Estimate:
    """A waiting ticket's predicted wait (0 once called) at journal position `version`
    (default: the latest)."""
    if t.state is not TicketState.WAITING:
        return Estimate(0.0, 0.0, 0.0, 0.0)
    if version is None:  # a page asking live: one simulation per state and 5 s
        version, now = app.pos, now - now % LIVE_WAIT_STEP
    return app.waits.predict(app.centre, t, now, version)


def item_wait(app: AppState, item: str, now: float) -> Estimate:
    """The wait of a resident taking a ticket for `item` now (the hall's forecast)."""
    return app.waits.probe(app.centre, item, now - now % LIVE_WAIT_STEP, app.pos)


def issued(app: AppState, t: Ticket, rec: Record, reprint: bool) -> Estimate:
    """The wait ticket `t`, issued or reprinted by `rec`, answers with: taught to the
    predictor (a new ticket) and kept with the recent tickets' (the kiosk reads it back)."""
    est = _issue_wait(app, t, rec)
    if not reprint:
        app.waits.issued(t, est)
    app.issue_waits[t.id] = est
    while len(app.issue_waits) > ISSUE_WAITS_KEPT:
        app.issue_waits.pop(next(iter(app.issue_waits)))
    if next(iter(app.issue_waits)) not in app.centre.tickets:  # a past day's
        app.issue_waits = {k: v for k, v in app.issue_waits.items()
                           if k in app.centre.tickets}
    return est


def _issue_wait(app: AppState, t: Ticket, rec: Record) -> Estimate:
    """The wait a take or reprint answers with. Computed once, then kept in the record's
    body (`est`: median, low, high, and the simulated 10th/90th percentiles; [] for no
    window) before it is journaled, so a replay neither reruns the simulation nor can
    print anything else."""
    saved = rec.body.get("est")
    if isinstance(saved, list):
        if len(saved) == 5:
            med, lo, hi, raw_lo, raw_hi = (float(x) for x in saved)
            return Estimate(med, med, lo, hi, raw_lo, raw_hi)
        return NO_WINDOW
    est = ticket_wait(app, t, rec.ts, rec.pos)
    if t.state is TicketState.WAITING:
        rec.body["est"] = ([est.median, est.lo, est.hi, est.raw_lo, est.raw_hi]
                           if est.reachable else [])
    return est


def wait_fields(est: Estimate) -> dict[str, int]:
    """`wait` (-1: no open window) and, when there is one, the 80% interval."""
    minutes = est.minutes()
    if minutes is None:
        return {"wait": -1}
    point, lo, hi = minutes
    return {"wait": point, "wait_lo": lo, "wait_hi": hi}
