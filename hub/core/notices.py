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
Booking reminders and "ready for pick-up" are kinds of the same record: what decides
them joins `due`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from . import commands as c
from . import issuing, people_ahead
from .effects import Effect, TicketIssued
from .model import TicketState, first_call
from .rejected import Rejected
from .state import CentreState

NEAR, CALLED = "near", "called"
KINDS = ("near", "called", "booking_reminder", "ready_for_pickup")
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
    """[notices] near_ahead / near_minutes in centre.toml."""

    near_ahead: int = 3
    near_minutes: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.near_ahead, bool) or not isinstance(self.near_ahead, int) or \
                not 0 <= self.near_ahead <= 100:
            raise RulesError("[notices] near_ahead: a whole number 0..100")
        if isinstance(self.near_minutes, bool) or not isinstance(
                self.near_minutes, int | float) or not 0 <= self.near_minutes <= 240:
            raise RulesError("[notices] near_minutes: minutes 0..240")

    @classmethod
    def from_table(cls, table: Any) -> NoticeRules:
        if not isinstance(table, dict):
            raise RulesError("[notices] must be a table")
        unknown = set(table) - {"near_ahead", "near_minutes", "signature", "attempts",
                                "smpp"}
        if unknown:
            raise RulesError(f"[notices]: unknown setting(s) {', '.join(sorted(unknown))}")
        return cls(**{k: table[k] for k in ("near_ahead", "near_minutes") if k in table})


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = dict(self.channels)
        return d


def notice_id(ticket_id: str, kind: str) -> str:
    """The same id hub/notify/channel.py `notice_id` gives (occurrence 0): each kind goes
    once per ticket."""
    return f"n1:{ticket_id}:{kind}:0"


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
    """The day closed: contacts and notices leave with their tickets. Replaces the
    containers (a refused command's roll-over is undone by putting the old ones back)."""
    state.contacts = {k: v for k, v in state.contacts.items() if k in state.tickets}
    state.notices = {k: v for k, v in state.notices.items() if v.ticket in state.tickets}


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


def wanted(state: CentreState, n: Notice) -> bool:
    """Is this due notice still worth sending? Not "near" once the ticket was called, and
    nothing once it is no longer waiting or called."""
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
