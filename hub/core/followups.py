"""Follow-ups of low ratings (差评整改): a rating of 2 不满意 or 1 非常不满意 (ratings.py)
opens one for its ticket, listed on the supervisors' dashboard with the ticket, window,
clerk, item, time and the resident's optional comment, until a supervisor closes it with
a note of what was done (`CloseFollowup`, journaled with who and when).

One per ticket (one rating per ticket). An open follow-up stays in the core across days
(`CentreState.followups`, in snapshots) until it is closed; a closed one stays for the
rest of the day it was closed on (the dashboard's "closed today") and leaves with the
next operation of this module on a later day. The staff report counts them from the
effects, `FollowupOpened` and `FollowupClosed` (hub/report/staff.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import commands as c
from .effects import Effect
from .model import Followup, Ticket
from .rejected import Rejected
from .state import CentreState

NOTE_MAX = 500  # characters of a supervisor's note


@dataclass(frozen=True, slots=True)
class FollowupOpened(Effect):
    ticket: str
    window: int
    clerk: str | None
    score: int


@dataclass(frozen=True, slots=True)
class FollowupClosed(Effect):
    ticket: str
    by: str
    window: int
    clerk: str | None


def open_for(state: CentreState, t: Ticket, score: int, window: int, clerk: str | None,
             comment: str, now: float) -> FollowupOpened:
    """Open the follow-up of a low rating the core has just accepted (ratings.rate)."""
    _prune(state)
    state.followups[t.id] = Followup(t.id, t.number, window, clerk, t.item, score, now,
                                     comment)
    return FollowupOpened(t.id, window, clerk, score)


def close(state: CentreState, cmd: c.CloseFollowup, now: float) -> list[Effect]:
    """The operation `CloseFollowup`: an open follow-up closed by `by` with a note."""
    by = cmd.by.strip() if isinstance(cmd.by, str) else ""
    note = cmd.note.strip() if isinstance(cmd.note, str) else ""
    if not by:
        raise Rejected("bad_field", "须注明处理人 / who closes it must be named")
    if not note:
        raise Rejected("note_required", "请填写整改说明 / a note of what was done is required")
    if len(note) > NOTE_MAX:
        raise Rejected("bad_field", f"整改说明最多{NOTE_MAX}字 / a note is at most {NOTE_MAX} "
                                    f"characters")
    f = state.followups.get(cmd.ticket)
    if f is None:
        raise Rejected("unknown_followup", f"没有{cmd.ticket}的整改事项 / no follow-up of "
                                           f"{cmd.ticket}")
    if not f.open:
        raise Rejected("followup_closed", f"{f.number}的整改事项已关闭 / the follow-up of "
                                          f"{f.number} is closed already", ticket=f.number)
    _prune(state)
    state.followups[f.ticket] = replace(f, closed_at=now, closed_by=by, note=note)
    return [FollowupClosed(f.ticket, by, f.window, f.clerk)]


def listing(state: CentreState) -> list[Followup]:
    """The dashboard's list: open ones first, oldest first; then today's closed ones."""
    fs = list(state.followups.values())
    return ([f for f in fs if f.open]
            + sorted((f for f in fs if not f.open), key=lambda f: -(f.closed_at or 0.0)))


def from_dict(d: dict[str, Any]) -> Followup:
    return Followup(**d)


def _prune(state: CentreState) -> None:
    """Closed follow-ups of an earlier day than the core's leave (the containers are
    replaced, never mutated: day_rollover.rollback)."""
    start = state._day_span[0]
    if any(not f.open and (f.closed_at or 0.0) < start for f in state.followups.values()):
        state.followups = {k: f for k, f in state.followups.items()
                           if f.open or (f.closed_at or 0.0) >= start}
