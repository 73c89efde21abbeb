"""Remote takes (远程取号) and the notices a remote ticket's resident gets (pure).

A remote take is a take from the resident's own phone (the entrance QR's /remote page): the
centre must be open and not within `stop_minutes` of closing (the calendar's opening hours),
and one resident (a keyed hash of the mobile number, never the number) takes at most
`per_day` remote tickets a day. The sealed number (`hub/notify/phones.py`) and the
resident's language are kept beside the ticket as its `Contact`, only for its notices, and
leave memory with the ticket at the day's close. The rules in force are journaled in the
take's own record (`per_day`, `stop_minutes`), so a replay decides as the live hub did
even after centre.toml changed.

Notices: after each step the hub asks `due` which notices the state now calls for: "near"
for a waiting ticket with at most `near_ahead` people ahead or an estimate of at most
`near_minutes`, "called" for a ticket being called to a window. Each kind goes once per
ticket (its id is `notice_id(ticket, kind)`), never "near" for a ticket already called and
nothing for one no longer waiting or called (done, no-show, expired, voided). A due notice
is journaled (`NoticeDue`, the intent, with the figures its text quotes and its channels)
before anything is sent, and each channel's outcome after (`NoticeOutcome`: sent, failed
after the retry bound, or dropped because the ticket moved on before it went), so a hub
restarted in between sends again exactly what was due and not confirmed (`pending`).
Booking reminders are a kind of the same record: what decides them joins `due`.

Cases (承诺件) outlive their ticket's day: a case returned for material (补正,
"case_returned") or approved and ready for pick-up ("ready_for_pickup") is told to the
resident reached by the case's ticket's `Contact` (the remote take's, or one given for the
case: pickup.CaseContact), which with the case's notices stays while the case is held
(`close_day`). What makes them due is the case's step itself (`case_due`, given the case
actions of the step), journaled as `CaseNoticeDue` in the same commit; the n-th return
(or approval, after a reopening) of a case is occurrence n of its kind, so each goes
exactly once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from . import commands as c
from . import issuing, people_ahead
from .effects import Effect, TicketIssued
from .model import BOOKED, TicketState, first_call
from .rejected import Rejected
from .state import CentreState

NEAR, CALLED = "near", "called"
RETURNED, READY = "case_returned", "ready_for_pickup"
KINDS = ("near", "called", "booking_reminder", READY, RETURNED)
CASE_KINDS = {RETURNED: "returned", READY: "ready"}  # notice kind -> the case state it tells
CHANNELS = ("sms", "page")
OUTCOMES = ("sent", "failed", "dropped")
LANGS = ("zh-CN", "zh-TW", "en")
REMOTE = "remote"  # the source of a remote ticket
MAX_PER_DAY = 20


class RulesError(ValueError):
    """A [remote] or [notices] setting out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class RemoteRules:
    """[remote] in centre.toml."""

    enabled: bool = False
    per_resident_per_day: int = 1
    stop_minutes_before_close: int = 60

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise RulesError("[remote] enabled: true or false")
        if isinstance(self.per_resident_per_day, bool) or not isinstance(
                self.per_resident_per_day, int) or not 1 <= self.per_resident_per_day \
                <= MAX_PER_DAY:
            raise RulesError(f"[remote] per_resident_per_day: a whole number 1..{MAX_PER_DAY}")
        if isinstance(self.stop_minutes_before_close, bool) or not isinstance(
                self.stop_minutes_before_close, int) or not 0 <= \
                self.stop_minutes_before_close <= 720:
            raise RulesError("[remote] stop_minutes_before_close: whole minutes 0..720")

    @classmethod
    def from_table(cls, table: Any) -> RemoteRules:
        if not isinstance(table, dict):
            raise RulesError("[remote] must be a table")
        unknown = set(table) - {"enabled", "per_resident_per_day", "stop_minutes_before_close"}
        if unknown:
            raise RulesError(f"[remote]: unknown setting(s) {', '.join(sorted(unknown))}")
        return cls(**table)


@dataclass(frozen=True, slots=True)
class NoticeRules:
    """[notices] near_ahead / near_minutes in centre.toml, and the booking reminders
    (hub/core/reminders.py): `reminder_minutes` before the slot (0: none) and/or the day
    before at `reminder_day_before` ("HH:MM", local; "" or absent: none)."""

    near_ahead: int = 3
    near_minutes: float = 10.0
    reminder_minutes: int = 60
    reminder_day_before: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.near_ahead, bool) or not isinstance(self.near_ahead, int) or \
                not 0 <= self.near_ahead <= 100:
            raise RulesError("[notices] near_ahead: a whole number 0..100")
        if isinstance(self.near_minutes, bool) or not isinstance(
                self.near_minutes, int | float) or not 0 <= self.near_minutes <= 240:
            raise RulesError("[notices] near_minutes: minutes 0..240")
        if isinstance(self.reminder_minutes, bool) or not isinstance(
                self.reminder_minutes, int) or not 0 <= self.reminder_minutes <= 1440:
            raise RulesError("[notices] reminder_minutes: whole minutes 0..1440 before a "
                             "booking's slot (0: no reminder then)")
        if not isinstance(self.reminder_day_before, str) or (
                self.reminder_day_before and not _hhmm(self.reminder_day_before)):
            raise RulesError('[notices] reminder_day_before: a local time "HH:MM" the day '
                             'before a booking\'s day ("" for none)')

    @classmethod
    def from_table(cls, table: Any) -> NoticeRules:
        if not isinstance(table, dict):
            raise RulesError("[notices] must be a table")
        mine = ("near_ahead", "near_minutes", "reminder_minutes", "reminder_day_before")
        unknown = set(table) - {*mine, "signature", "attempts", "smpp"}
        if unknown:
            raise RulesError(f"[notices]: unknown setting(s) {', '.join(sorted(unknown))}")
        return cls(**{k: table[k] for k in mine if k in table})


def _hhmm(text: str) -> bool:
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        return False
    return int(text[:2]) < 24 and int(text[3:]) < 60


@dataclass(slots=True)
class Contact:
    """How a remote ticket's resident is reached: the sealed number (a `PhoneRef` token,
    None once purged) and the language they chose."""

    ticket: str
    phone: str | None
    lang: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Notice:
    """A notice journaled as due, and each channel's state: due, sent, failed, dropped."""

    id: str
    ticket: str
    kind: str
    at: float
    ahead: int | None = None
    minutes: int | None = None
    window: int | None = None
    channels: dict[str, str] = field(default_factory=dict)
    # Case notices (CaseNoticeDue): which return or approval of the case this is, and the
    # materials (indices into the item's catalog materials) a return named.
    occurrence: int = 0
    materials: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.materials = tuple(self.materials)  # a list when read back from a snapshot

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = dict(self.channels)
        d["materials"] = list(self.materials)
        return d


@dataclass(frozen=True, slots=True)
class CaseNoticeDue(c.Command):
    """A case notice the step of `case` called for: `kind` case_returned (with the
    `materials` to correct) or ready_for_pickup (`window`: the pick-up window named),
    its `occurrence`, and the channels it goes through."""

    op: ClassVar[str] = "case_notice"
    case: str
    kind: str
    occurrence: int = 0
    materials: tuple[int, ...] = ()
    window: int | None = None
    channels: tuple[str, ...] = ()


c.BY_OP[CaseNoticeDue.op] = CaseNoticeDue
c._TUPLE_FIELDS.add("materials")


def notice_id(ticket_id: str, kind: str, occurrence: int = 0) -> str:
    """The same id hub/notify/channel.py `notice_id` gives: each kind goes once per
    ticket, a case's kinds once per occurrence."""
    return f"n1:{ticket_id}:{kind}:{occurrence}"


# ---- operations ----------------------------------------------------------------------------
def remote_take(state: CentreState, cmd: c.RemoteTake, now: float) -> list[Effect]:
    if cmd.lang not in LANGS:
        raise Rejected("bad_field", f"lang {cmd.lang!r}: one of {', '.join(LANGS)}")
    if cmd.phone is not None and (not isinstance(cmd.phone, str)
                                  or not cmd.phone.startswith("p1.")):
        raise Rejected("bad_field", "phone: not a sealed number")
    if cmd.per_day < 1 or cmd.stop_minutes < 0:
        raise Rejected("bad_field", "per_day >= 1 and stop_minutes >= 0")
    hours = state.calendar.opening_at(now)
    if hours is None or not hours[0] <= now < hours[1]:
        raise Rejected("remote_closed", "中心现在不在办公时间，无法远程取号 / "
                       "中心現在不在辦公時間，無法遠端取號 / The centre is closed now: "
                       "remote tickets are issued during opening hours")
    if now >= hours[1] - cmd.stop_minutes * 60.0:
        raise Rejected("remote_stopped", f"今日远程取号已于闭馆前{cmd.stop_minutes}分钟停止 / "
                       f"今日遠端取號已於閉館前{cmd.stop_minutes}分鐘停止 / Remote tickets stop "
                       f"{cmd.stop_minutes} minutes before closing")
    today = state.calendar.day_id(now)
    # No resident: a record whose token a purge removed (hub/store/retention.py), replayed.
    taken = sum(1 for t in state.tickets.values()
                if t.source == REMOTE and t.resident == cmd.resident and t.day == today
                ) if cmd.resident else 0
    if taken >= cmd.per_day:
        raise Rejected("remote_limit", f"每人每天最多远程取号{cmd.per_day}次 / "
                       f"每人每天最多遠端取號{cmd.per_day}次 / At most {cmd.per_day} remote "
                       f"ticket(s) a day per mobile number")
    effects = issuing.take_ticket(state, c.TakeTicket(cmd.item, resident=cmd.resident,
                                                      source=REMOTE), now)
    issued = next(e for e in effects if isinstance(e, TicketIssued))
    state.contacts[issued.ticket] = Contact(issued.ticket, cmd.phone, cmd.lang)
    return effects


def notice_due(state: CentreState, cmd: c.NoticeDue, now: float) -> list[Effect]:
    if cmd.kind not in KINDS:
        raise Rejected("bad_field", f"kind {cmd.kind!r}: one of {', '.join(KINDS)}")
    if not cmd.channels or any(ch not in CHANNELS for ch in cmd.channels) or \
            len(set(cmd.channels)) != len(cmd.channels):
        raise Rejected("bad_field", f"channels: some of {', '.join(CHANNELS)}, each once")
    if cmd.ticket not in state.contacts or cmd.ticket not in state.tickets:
        raise Rejected("unknown_ticket", f"no remote ticket {cmd.ticket} today")
    nid = notice_id(cmd.ticket, cmd.kind)
    if nid in state.notices:
        raise Rejected("notice_exists", f"notice {nid} was already due")
    state.notices[nid] = Notice(nid, cmd.ticket, cmd.kind, now, cmd.ahead, cmd.minutes,
                                cmd.window, {ch: "due" for ch in cmd.channels})
    return []


def case_notice_due(state: CentreState, cmd: CaseNoticeDue, now: float) -> list[Effect]:
    if cmd.kind not in CASE_KINDS:
        raise Rejected("bad_field", f"kind {cmd.kind!r}: one of {', '.join(CASE_KINDS)}")
    if not cmd.channels or any(ch not in CHANNELS for ch in cmd.channels) or \
            len(set(cmd.channels)) != len(cmd.channels):
        raise Rejected("bad_field", f"channels: some of {', '.join(CHANNELS)}, each once")
    if isinstance(cmd.occurrence, bool) or not isinstance(cmd.occurrence, int) or \
            cmd.occurrence < 0:
        raise Rejected("bad_field", "occurrence: a whole number >= 0")
    case = state.cases.get(cmd.case)
    if case is None or case.ticket not in state.contacts:
        raise Rejected("unknown_case", f"no case {cmd.case} with a contact")
    nid = notice_id(case.ticket, cmd.kind, cmd.occurrence)
    if nid in state.notices:
        raise Rejected("notice_exists", f"notice {nid} was already due")
    state.notices[nid] = Notice(nid, case.ticket, cmd.kind, now, window=cmd.window,
                                channels={ch: "due" for ch in cmd.channels},
                                occurrence=cmd.occurrence, materials=tuple(cmd.materials))
    return []


def notice_outcome(state: CentreState, cmd: c.NoticeOutcome, now: float) -> list[Effect]:
    n = state.notices.get(cmd.notice)
    if n is None:
        raise Rejected("unknown_notice", f"no notice {cmd.notice} is due")
    if cmd.outcome not in OUTCOMES:
        raise Rejected("bad_field", f"outcome {cmd.outcome!r}: one of {', '.join(OUTCOMES)}")
    if n.channels.get(cmd.channel) != "due":
        raise Rejected("notice_settled", f"notice {cmd.notice} via {cmd.channel}: not due")
    n.channels[cmd.channel] = cmd.outcome
    return []


def close_day(state: CentreState) -> None:
    """The day closed: contacts and notices leave with their tickets, but those of a case
    in progress stay with it. Replaces the containers (a refused command's roll-over is
    undone by putting the old ones back)."""
    held = {k.ticket for k in state.cases.values() if k.state != "closed"} \
        if state.contacts else set()
    # ... and a booking's (hub/core/reminders.py: keyed by its name) while it is held.
    held |= {k for k in state.contacts if k in state.bookings
             and state.bookings[k].state == BOOKED}
    state.contacts = {k: v for k, v in state.contacts.items()
                      if k in state.tickets or k in held}
    state.notices = {k: v for k, v in state.notices.items()
                     if v.ticket in state.tickets or v.ticket in held}


# ---- queries -------------------------------------------------------------------------------
def due(state: CentreState, rules: NoticeRules, now: float,
        channels: tuple[str, ...] = CHANNELS) -> list[c.NoticeDue]:
    """The notices the state calls for now and that were not due before."""
    out: list[c.NoticeDue] = []
    notices, tickets = state.notices, state.tickets
    for tid, contact in state.contacts.items():
        t = tickets.get(tid)
        if t is None:
            continue
        chans = channels if contact.phone is not None else tuple(
            ch for ch in channels if ch != "sms")
        if not chans:
            continue
        if t.state is TicketState.CALLED:
            if notice_id(tid, CALLED) not in notices and t.window is not None:
                out.append(c.NoticeDue(tid, CALLED, window=t.window, channels=chans))
        elif t.state is TicketState.WAITING and notice_id(tid, NEAR) not in notices \
                and first_call(t) is None:
            ahead = people_ahead.count_ahead(state, t, now)
            if ahead <= rules.near_ahead:
                _, minutes = people_ahead.estimate(state, t, now)
            else:
                ahead, minutes = people_ahead.estimate(state, t, now)
                if minutes > rules.near_minutes:
                    continue
            out.append(c.NoticeDue(tid, NEAR, ahead=ahead, minutes=(
                math.ceil(minutes) if math.isfinite(minutes) else None), channels=chans))
    return out


def case_due(state: CentreState, changes: list[tuple[str, str]], window: int | None,
             channels: tuple[str, ...] = CHANNELS) -> list[CaseNoticeDue]:
    """The case notices a step's case actions (`changes`: (case id, action)) call for:
    a return tells the materials to correct, an approval where to pick up (`window`, the
    first pick-up window, None when the centre has none configured). Only for a case
    whose ticket has a contact; each return or approval once (its occurrence)."""
    out: list[CaseNoticeDue] = []
    for cid, action in changes:
        case = state.cases.get(cid)
        kind = RETURNED if action == "returned" else READY if action == "approved" else None
        contact = state.contacts.get(case.ticket) if case is not None else None
        if kind is None or case is None or contact is None or \
                case.state != CASE_KINDS[kind]:
            continue
        chans = tuple(ch for ch in channels if ch != "sms" or contact.phone is not None)
        if not chans:
            continue
        n = sum(1 for x in state.notices.values() if x.ticket == case.ticket and x.kind == kind)
        out.append(CaseNoticeDue(cid, kind, n, tuple(case.return_materials)
                                 if kind == RETURNED else (),
                                 window if kind == READY else None, chans))
    return out


def wanted(state: CentreState, n: Notice) -> bool:
    """Is this due notice still worth sending? Not "near" once the ticket was called, and
    nothing once it is no longer waiting or called; a case notice while the case is still
    returned (ready) and it is the latest of its kind."""
    if n.kind == "booking_reminder":  # hub/core/reminders.py: while still booked
        b = state.bookings.get(n.ticket)
        return b is not None and b.state == BOOKED
    if n.kind in CASE_KINDS:
        case = state.cases.get(n.ticket)
        return case is not None and case.state == CASE_KINDS[n.kind] and not any(
            x.ticket == n.ticket and x.kind == n.kind and x.occurrence > n.occurrence
            for x in state.notices.values())
    t = state.tickets.get(n.ticket)
    if t is None:
        return False
    if n.kind == NEAR:
        return t.state is TicketState.WAITING and first_call(t) is None
    if n.kind == CALLED:
        return t.state is TicketState.CALLED
    return t.state in (TicketState.WAITING, TicketState.CALLED)


def pending(state: CentreState) -> list[tuple[str, str]]:
    """(notice id, channel) of every notice due and not yet settled on that channel."""
    return [(n.id, ch) for n in state.notices.values()
            for ch, s in n.channels.items() if s == "due"]


def of_ticket(state: CentreState, ticket: str, channel: str = "page") -> list[Notice]:
    """The ticket's notices that went out on `channel`, oldest first."""
    return [n for n in state.notices.values()
            if n.ticket == ticket and n.channels.get(channel) == "sent"]
