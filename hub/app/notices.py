"""The notices a step calls for, as journal records (no I/O): after each batch of device
events and each web action, the runner asks `due_step` and commits its records with the
step's own, so a notice is journaled as due before the dispatcher (hub/notify/dispatcher.py)
sends it. A replay applies these records as they were written and never decides anew.
"""

from __future__ import annotations

import logging
from typing import Any

from ..core import city, notices, pickup, reminders
from ..core.rejected import Rejected
from ..store.journal import Record
from .records import operate
from .state import AppState, Step

log = logging.getLogger("onewindow.hub")


def due_step(app: AppState, rules: notices.NoticeRules, channels: tuple[str, ...],
             now: float, records: list[Record] | None = None) -> Step:
    """The `NoticeDue` records the state calls for now (and the booking reminders now
    due, `BookingReminderDue`), and the `CaseNoticeDue` records the case actions among
    `records` (the step's own) call for, applied (empty when no ticket, case or booking
    has a contact: nothing is walked)."""
    step = Step()
    if not app.centre.contacts or not channels:
        return step
    centre = app.centre
    changes = [(r.body["case"], r.body["action"]) for r in records or ()
               if r.body.get("op") == "case"]
    cmds: list[Any] = notices.due(centre, rules, now, channels)
    cmds += reminders.due(centre, rules, now, channels)  # booking reminders
    # A case across centres approved or returned elsewhere (hub/core/city.py): collected
    # here, at this centre's pick-up window; elsewhere, at the centre the resident chose.
    arrived = city.notice_changes(centre, records or ())
    changes += [(k, a) for k, a, here in arrived if here]
    if changes:
        item = centre.config.pickup_item
        windows = pickup.pickup_windows(centre, item) if item else []
        cmds += notices.case_due(centre, changes, windows[0] if windows else None, channels)
    cmds += notices.case_due(centre, [(k, a) for k, a, here in arrived if not here], None,
                             channels)
    for cmd in cmds:
        try:
            one = operate(app, cmd, now)
        except Rejected as e:  # e.g. the day turned over under it: nothing changed
            log.info("notice %s for %s not due: %s", getattr(cmd, "kind", reminders.KIND),
                     getattr(cmd, "ticket", None) or getattr(cmd, "case", None)
                     or getattr(cmd, "booking", "?"), e.code)
            continue
        step.records += one.records
        step.publishes += one.publishes
    return step
