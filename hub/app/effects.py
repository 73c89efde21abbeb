"""The core's effects, rendered into MQTT messages: the reply to the device whose event it
was, print and block commands, and each changed window display and the hall board (with
their `rev`, the record's journal position). Also the state the hall keeps for that (its
last calls) and the waits a take answers with (waits.py).

A replay renders only device replies (replay.py), and a quiet one nothing at all: the state
changes alone (tickets, bitmaps and JSON were most of replay's time).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from ..core.effects import (
    BlockReserved,
    CaseOpened,
    DayClosed,
    Effect,
    QueueChanged,
    RatingGiven,
    TicketCalled,
    TicketIssued,
    TicketVoided,
    Unreachable,
    WindowChanged,
)
from ..devices import Publish
from ..store.journal import Record
from . import waits
from .boards import display_publish, hall_publish
from .outbound import block_cmd, is_res, res
from .state import HALL_CALLS, AppState, Call
from .tickets import print_cmd

log = logging.getLogger("onewindow.hub")


def render(app: AppState, effects: list[Effect], rec: Record) -> list[Publish]:
    out: list[Publish] = []
    windows: set[int] = set()
    hall = False
    k = 0
    loud = not app.quiet
    app.learn_later(rec.ts, rec.body.get("op"))  # a take's wait reads it at once
    for e in effects:
        if isinstance(e, TicketIssued):
            t = app.centre.tickets[e.ticket]
            est = waits.issued(app, t, rec, e.reprint)
            if rec.dev is not None and loud:
                out.append(res(app, rec.dev, rec.seq, rec.body["op"] if e.reprint
                               else "take", ticket=t.number, ahead=e.ahead,
                               **waits.wait_fields(est)))
            source = app.registry.get(e.source) if e.source else None
            offline = rec.body.get("number") is not None  # the box printed it itself
            if source is not None and source.spec.role in ("box", "kiosk") and not offline:
                if loud:
                    out.append(print_cmd(app, source.spec.id, t.id, e, est, rec, k))
                k += 1
        elif isinstance(e, TicketCalled):
            t = app.centre.tickets[e.ticket]
            app.calls.appendleft(Call(t.number, e.window, rec.ts))
            windows.add(e.window)
            hall = True
        elif isinstance(e, TicketVoided):
            # Replaced by the offline ticket of the same press: nobody holds it, so it
            # leaves the hall's calls (its window, if any, comes as WindowChanged).
            number = app.centre.tickets[e.ticket].number
            kept = [x for x in app.calls if x.ticket != number]
            if len(kept) != len(app.calls):
                app.calls = deque(kept, maxlen=HALL_CALLS)
                hall = True
            if not app.replaying:
                log.info("ticket %s voided: replaced by offline %s", number,
                         app.centre.tickets[e.by].number)
        elif isinstance(e, WindowChanged):
            windows.add(e.window)
        elif isinstance(e, Unreachable) and not app.replaying:
            log.warning("tickets no open window can serve: %s", ", ".join(e.tickets))
        elif isinstance(e, DayClosed) and not app.replaying:
            log.info("day %s closed; %d tickets expired", e.day, len(e.expired))
        elif isinstance(e, BlockReserved):
            if loud:
                out.append(block_cmd(app, e.device, f"{rec.pos}.{k}", rec.ts))
            k += 1
        elif isinstance(e, RatingGiven):
            if rec.dev is not None and loud:
                out.append(res(app, rec.dev, rec.seq, "rate"))  # a bare res (3.3)
        elif isinstance(e, CaseOpened | QueueChanged):
            pass
    if rec.dev is not None and loud and not any(is_res(p) for p in out):
        out.append(res(app, rec.dev, rec.seq, rec.body["op"], **result(app, rec)))
    for n in windows:
        app.window_rev[n] = rec.pos
    if hall:
        app.hall_rev = rec.pos
    if not app.replaying:  # a replay keeps replies to devices only (replay.py)
        out += [display_publish(app, n) for n in sorted(windows)]
        if hall:
            out.append(hall_publish(app))
    return out


def result(app: AppState, rec: Record) -> dict[str, Any]:
    """A window event's `res` fields: the window's state and ticket after it."""
    window = rec.body.get("window")
    w = app.centre.windows.get(window) if isinstance(window, int) else None
    if w is None:
        return {}
    t = app.centre.tickets.get(w.ticket) if w.ticket else None
    return {"window": w.number, "state": w.state.value,
            **({"ticket": t.number} if t else {})}
