"""The dispatch core's entry point: `Centre`, one centre's tickets and windows.

Pure: no I/O and no clock. Every operation gets `now` (epoch seconds) from the caller, so the
hub, the journal replay and the simulator drive the very same code. An operation either
raises `Rejected` having changed nothing, or mutates the state and returns its effects.

The state and its shared look-ups are `CentreState` (state.py); each operation lives with
its concern (issuing, numbering, serving, window_admin, cases, ratings, help_requests,
prioritise) and the day's roll-over in day_rollover.py. This module dispatches to them and
offers the queries the adapters read (calendar, people ahead, offline blocks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from . import (
    booking,
    cases,
    city,
    desk,
    followups,
    help_requests,
    issuing,
    notices,
    numbering,
    people_ahead,
    pickup,
    prereview,
    prioritise,
    ratings,
    reminders,
    serving,
    stations,
    window_admin,
)
from . import commands as c
from .day_rollover import roll_over, rollback, savepoint
from .effects import Effect
from .model import Ticket
from .rejected import Rejected
from .state import CentreState


class Centre(CentreState):
    # ---- the one entry point ---------------------------------------------------------
    def apply(self, cmd: c.Command, now: float) -> list[Effect]:
        handler = _HANDLERS.get(type(cmd))
        if handler is None:
            raise Rejected("unknown_op", f"unknown operation {cmd.op!r}")
        # Help requests and answers never roll the day over (help_requests.py says why).
        # ... nor sweep bookings past their check-in window (booking.sweep: the same way,
        # at the first command that brings a time past a booking's window).
        if type(cmd) in help_requests.DAYLESS or (
                self._day_span[0] <= now < self._day_span[1]
                and not booking.sweep_due(self, now)):
            return handler(self, cmd, now)
        # Only near midnight (or on the first call) is the date worth formatting. A new day
        # is judged on the new day's state (yesterday's queue expired, numbers restarted),
        # so the roll-over comes first, but it belongs to the command: if the command is
        # refused, yesterday is put back as it was and the next accepted command rolls over
        # instead. Why not a roll-over record of its own, or checking on a copy: the journal
        # holds only accepted commands, so a replay rolls over at the very same record
        # without any new record kind (old journals, the simulator and the report replay
        # drive `apply` alone), and a copy of the whole day for every command near
        # midnight would cost far more than this savepoint, which is cheap because
        # `close_day` replaces containers rather than mutating them.
        saved = savepoint(self)
        try:
            effects = roll_over(self, now)
            if effects:  # a day closed: remote contacts and notices leave with it
                notices.close_day(self)
                pickup.close_day(self)
            effects.extend(booking.sweep(self, now))
            effects.extend(handler(self, cmd, now))
        except BaseException:
            rollback(self, saved)
            raise
        return effects

    # ---- the centre's calendar (day_calendar.py) -------------------------------------
    def local_time(self, now: float) -> dt.datetime:
        return self.calendar.local_time(now)

    def local_date(self, now: float) -> dt.date:
        return self.calendar.local_date(now)

    def is_workday(self, d: dt.date) -> bool:
        return self.calendar.is_workday(d)

    def add_workdays(self, start: dt.date, days: int) -> dt.date:
        return self.calendar.add_workdays(start, days)

    # ---- who is ahead (people_ahead.py) ----------------------------------------------
    def ahead_of(self, t: Ticket, now: float) -> list[Ticket]:
        return people_ahead.ahead_of(self, t, now)

    def count_ahead(self, t: Ticket, now: float) -> int:
        return people_ahead.count_ahead(self, t, now)

    def estimate(self, t: Ticket, now: float) -> tuple[int, float]:
        return people_ahead.estimate(self, t, now)

    def estimate_new(self, item: str, now: float) -> tuple[int, float] | None:
        return people_ahead.estimate_new(self, item, now)

    def _tier(self, t: Ticket, now: float) -> int:  # hub/web/ahead.py, hub/forecast/wait.py
        return people_ahead.tier(t, now, self.policy)

    # ---- numbering (numbering.py) ----------------------------------------------------
    def offline_blocks(self, device: str) -> dict[str, list[list[int]]]:
        return numbering.offline_blocks(self, device)


_HANDLERS: dict[type, Callable[[CentreState, Any, float], list[Effect]]] = {
    c.TakeTicket: issuing.take_ticket,
    c.ReserveBlock: numbering.reserve_block,
    c.CallNext: serving.call_next,
    c.Recall: serving.recall,
    c.Skip: serving.skip,
    c.Transfer: serving.transfer,
    c.Start: serving.start,
    c.Complete: serving.complete,
    c.Pause: window_admin.pause,
    c.Resume: window_admin.resume,
    c.OpenWindow: window_admin.open_window,
    c.CloseWindow: window_admin.close_window,
    c.SetSkills: window_admin.set_skills,
    c.Reprint: issuing.reprint,
    c.CaseUpdate: cases.update_case,
    c.Rate: ratings.rate,
    c.MarkPriority: prioritise.mark_priority,
    desk.CallTicket: desk.call_ticket,
    c.RemoteTake: notices.remote_take,
    c.NoticeDue: notices.notice_due,
    c.NoticeOutcome: notices.notice_outcome,
    notices.CaseNoticeDue: notices.case_notice_due,
    reminders.BookingReminderDue: reminders.reminder_due,
    pickup.PickupTicket: pickup.pickup_ticket,
    pickup.CaseContact: pickup.case_contact,
    c.CloseFollowup: followups.close,
    c.Book: booking.book,
    c.CancelBooking: booking.cancel,
    c.CheckIn: booking.check_in,
    prereview.PreReview: prereview.left,
    prereview.ReturnForMaterials: prereview.return_for_materials,
    help_requests.Help: help_requests.ask,
    help_requests.HelpAnswer: help_requests.answer,
    # Community stations (协管员代收): their commands are stations.py's own.
    **stations.HANDLERS,
    **city.HANDLERS,  # cases across centres, the city's catalog
    help_requests.HelpArrive: help_requests.arrive,
    help_requests.HelpResolve: help_requests.resolve,
    help_requests.HelpEscalate: help_requests.escalate,
}
