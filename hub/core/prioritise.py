"""A clerk marks a waiting ticket priority (爱心优先) from the console: a resident who did
not press priority, e.g. a pregnant woman or an elderly resident staff noticed.

The ticket moves into the priority tier and keeps its place there by its order key (its
issue time, or the time a skip sent it to the back once): marking does not make it newer,
and does not push it ahead of priority residents who came earlier. Who is called next is
still the ordering policy's (policy.choose: ratio or aging). Only a waiting ticket of
today's queue can be marked; a ticket already priority or booked (appointment) is refused
with nothing changed. The journal record names the clerk (`by`); the ticket's history gets
``prioritised`` at that time.
"""

from __future__ import annotations

from . import commands as c
from .effects import Effect, QueueChanged
from .model import Priority, TicketState
from .rejected import Rejected
from .state import CentreState

PRIORITISED = "prioritised"  # the ticket's history entry


def mark_priority(state: CentreState, cmd: c.MarkPriority, now: float) -> list[Effect]:
    if not isinstance(cmd.by, str) or not cmd.by.strip():
        raise Rejected("bad_field",
                       "未指明操作人 / 未指明操作人 / the clerk who marks it (by) is missing")
    ref = cmd.ticket
    t = state.find_ticket(ref) if isinstance(ref, str) else None
    if t is None:
        raise Rejected("unknown_ticket", f"今日没有{ref}号 / 今日沒有{ref}號 / "
                                         f"no ticket {ref} today")
    if t.state is not TicketState.WAITING:
        raise Rejected("not_waiting", f"{t.number}号不在等候中 / {t.number}號不在等候中 / "
                                      f"ticket {t.number} is not waiting",
                       ticket=t.number, state=t.state.value)
    if t.priority is Priority.PRIORITY:
        raise Rejected("already_priority", f"{t.number}号已是优先号 / {t.number}號已是優先號 / "
                                           f"ticket {t.number} is already priority",
                       ticket=t.number)
    if t.priority is Priority.APPOINTMENT:
        raise Rejected("appointment_ticket",
                       f"{t.number}号是预约号，按预约时段优先 / "
                       f"{t.number}號是預約號，按預約時段優先 / "
                       f"ticket {t.number} is booked: it goes first in its slot",
                       ticket=t.number)
    state.queue.remove(t)
    t.priority = Priority.PRIORITY
    state.queue.add(t)
    t.history.append((now, PRIORITISED, None))
    return [QueueChanged()]
