"""Booking reminders (预约提醒, issue 16): a booking made with a mobile number is reminded
before its slot, through the same notice channels as a remote ticket's "near" and "called"
(hub/core/notices.py: SMS and the phone page), exactly once each (pure).

The booking's contact (`notices.Contact`: the sealed number and the resident's language) is
kept in `state.contacts` under the booking's name ("B0012") while the booking is held
(`notices.close_day` keeps it past the day's close until the booking is checked in,
cancelled or missed). Two reminders, each optional ([notices] in centre.toml,
`notices.NoticeRules`):

* occurrence 0, "lead": `reminder_minutes` before the slot's start (0: none), for a booking
  made before that moment (one made within it was just confirmed on screen);
* occurrence 1, "day before": at `reminder_day_before` ("HH:MM", local) on the day before
  the slot's day, for a booking made before then.

A reminder is due from its moment until the slot starts; the hub asks `due` after every
step and on a timer (hub/runner.py), journals `BookingReminderDue` (the intent) before the
dispatcher sends it, and each channel's outcome after, as for every notice: a hub restarted
in between sends what was due and not confirmed, and never twice (the notice's id is
`notice_id(booking, "booking_reminder", occurrence)`). Nothing goes for a booking no longer
booked (cancelled, checked in, missed): `notices.wanted` drops it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from . import commands as c
from .effects import Effect
from .model import BOOKED
from .notices import CHANNELS, Notice, NoticeRules, notice_id
from .rejected import Rejected
from .state import CentreState

KIND = "booking_reminder"
LEAD, DAY_BEFORE = 0, 1  # occurrences


@dataclass(frozen=True, slots=True)
class BookingReminderDue(c.Command):
    """A booking reminder the core called for: occurrence 0 (lead time) or 1 (the day
    before) of `booking`, through `channels`."""

    op: ClassVar[str] = "booking_notice"
    booking: str
    occurrence: int = LEAD
    channels: tuple[str, ...] = ()


c.BY_OP[BookingReminderDue.op] = BookingReminderDue


def reminder_due(state: CentreState, cmd: BookingReminderDue, now: float) -> list[Effect]:
    if not cmd.channels or any(ch not in CHANNELS for ch in cmd.channels) or \
            len(set(cmd.channels)) != len(cmd.channels):
        raise Rejected("bad_field", f"channels: some of {', '.join(CHANNELS)}, each once")
    if cmd.occurrence not in (LEAD, DAY_BEFORE) or isinstance(cmd.occurrence, bool):
        raise Rejected("bad_field", "occurrence: 0 (lead time) or 1 (the day before)")
    b = state.bookings.get(cmd.booking)
    if b is None or b.state != BOOKED or cmd.booking not in state.contacts:
        raise Rejected("unknown_booking", f"no booking {cmd.booking} held with a contact")
    nid = notice_id(cmd.booking, KIND, cmd.occurrence)
    if nid in state.notices:
        raise Rejected("notice_exists", f"notice {nid} was already due")
    state.notices[nid] = Notice(nid, cmd.booking, KIND, now,
                                channels={ch: "due" for ch in cmd.channels},
                                occurrence=cmd.occurrence)
    return []


def moments(state: CentreState, rules: NoticeRules, slot: float) -> dict[int, float]:
    """When each configured reminder of a booking for `slot` is due."""
    out: dict[int, float] = {}
    if rules.reminder_minutes > 0:
        out[LEAD] = slot - rules.reminder_minutes * 60.0
    if rules.reminder_day_before:
        day = state.calendar.local_date(slot) - dt.timedelta(days=1)
        at = dt.time.fromisoformat(rules.reminder_day_before)
        out[DAY_BEFORE] = dt.datetime.combine(day, at, state.calendar.tz).timestamp()
    return out


def due(state: CentreState, rules: NoticeRules, now: float,
        channels: tuple[str, ...] = CHANNELS) -> list[BookingReminderDue]:
    """The reminders the state calls for now and that were not due before."""
    out: list[BookingReminderDue] = []
    if not channels:
        return out
    bookings, notices = state.bookings, state.notices
    for code, contact in state.contacts.items():
        b = bookings.get(code)
        if b is None or b.state != BOOKED or not now < b.slot:
            continue
        chans = tuple(ch for ch in channels if ch != "sms" or contact.phone is not None)
        if not chans:
            continue
        for occurrence, at in sorted(moments(state, rules, b.slot).items()):
            if b.made_at < at <= now and notice_id(code, KIND, occurrence) not in notices:
                out.append(BookingReminderDue(code, occurrence, chans))
    return out

