"""The notices a step calls for, as journal records (no I/O): after each batch of device
events and each web action, the runner asks `due_step` and commits its records with the
step's own, so a notice is journaled as due before the dispatcher (hub/notify/dispatcher.py)
sends it. A replay applies these records as they were written and never decides anew.
"""

from __future__ import annotations

import logging

from ..core import notices
from ..core.rejected import Rejected
from .records import operate
from .state import AppState, Step

log = logging.getLogger("onewindow.hub")


def due_step(app: AppState, rules: notices.NoticeRules, channels: tuple[str, ...],
             now: float) -> Step:
    """The `NoticeDue` records the state calls for now, applied (empty when the centre
    has no remote tickets: nothing is walked)."""
    step = Step()
    if not app.centre.contacts or not channels:
        return step
    for cmd in notices.due(app.centre, rules, now, channels):
        try:
            one = operate(app, cmd, now)
        except Rejected as e:  # e.g. the day turned over under it: nothing changed
            log.info("notice %s for %s not due: %s", cmd.kind, cmd.ticket, e.code)
            continue
        step.records += one.records
        step.publishes += one.publishes
    return step
