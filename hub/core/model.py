"""Tickets, windows and cases: the mutable state the dispatch core owns."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class Priority(StrEnum):
    NORMAL = "normal"
    PRIORITY = "priority"  # elderly, disabled, pregnant: 老弱病残孕
    APPOINTMENT = "appointment"


class TicketState(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # still waiting when the day closed
    # Issued late for a press the device had already served with an offline number: the
    # offline ticket replaced it (one press, one ticket). Its number is never reissued.
    VOIDED = "voided"


ACTIVE_TICKET_STATES = frozenset({TicketState.WAITING, TicketState.CALLED, TicketState.SERVING})


class WindowState(StrEnum):
    CLOSED = "closed"
    IDLE = "idle"
    CALLING = "calling"
    SERVING = "serving"
    PAUSED = "paused"


@dataclass(slots=True)
class Ticket:
    id: str  # "20261123-A017": unique forever; `number` is unique within a day
    number: str
    day: str
    item: str
    priority: Priority
    issued_at: float
    order_key: float  # position in the queue: issue time, or the time it was requeued
    serial: int  # tie-breaker: global issue order
    extra_items: tuple[str, ...] = ()
    resident: str | None = None  # keyed hash of the resident's card, never the raw number
    appointment_at: float | None = None
    source: str | None = None
    request: int | None = None  # the source device's event seq that asked for it
    state: TicketState = TicketState.WAITING
    window: int | None = None  # window currently calling/serving it
    target_window: int | None = None  # set by a transfer to one window
    requeued: bool = False
    recalls: int = 0
    note: str = ""
    history: list[tuple[float, str, int | None]] = field(default_factory=list)
    # The kiosk's pre-review of its materials (commands.TakeTicket.review; None: none),
    # and, when the clerk returned it for materials (退回补材料, hub/core/prereview.py),
    # which were missing ("ITEM.k") and who returned it: it ended done, but not served.
    review: dict[str, Any] | None = None
    returned: tuple[str, ...] = ()
    returned_by: str | None = None

    @property
    def sort_key(self) -> tuple[float, int]:
        return (self.order_key, self.serial)

    def mark(self, now: float, state: TicketState, window: int | None = None) -> None:
        self.state = state
        self.history.append((now, state.value, window))

    def to_dict(self) -> dict[str, Any]:
        # asdict's recursive deep copy of every field was most of a snapshot's cost (and
        # ~half of the core's state-machine tests' time): every field but these is an
        # immutable scalar, taken as is; these are converted (and so copied) by hand. The
        # field list is asdict's own (_TICKET_FIELDS, below), so a new field is not missed;
        # hub/tests/test_ticket_dict.py holds the result equal to asdict's.
        d = {name: getattr(self, name) for name in _TICKET_FIELDS}
        d["priority"] = self.priority.value
        d["state"] = self.state.value
        d["extra_items"] = list(self.extra_items)
        d["history"] = [list(h) for h in self.history]
        d["returned"] = list(self.returned)
        if self.review is not None:
            d["review"] = copy.deepcopy(self.review)
        return d


_TICKET_FIELDS = tuple(f.name for f in fields(Ticket))


def first_call(t: Ticket) -> tuple[float, int | None] | None:
    """(when, window) of the ticket's first call, None if never called."""
    for ts, state, window in t.history:
        if state == TicketState.CALLED.value:
            return ts, window
    return None


def one_window(t: Ticket) -> bool:
    """Served where first called, with no transfer on the way."""
    fc = first_call(t)
    if t.state is not TicketState.DONE or fc is None:
        return False
    if any(state == "transferred" for _, state, _ in t.history):
        return False
    done = [w for _, state, w in t.history if state == TicketState.DONE.value]
    return bool(done) and done[-1] == fc[1]


@dataclass(slots=True)
class Window:
    number: int
    kind: str
    skills: frozenset[str]
    state: WindowState = WindowState.CLOSED
    clerk: str | None = None
    ticket: str | None = None  # ticket id being called or served
    since: float = 0.0
    # While paused: why (a code of desk.PAUSE_REASONS, "" when none was given); else None.
    pause_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "skills": sorted(self.skills),
            "state": self.state.value,
            "clerk": self.clerk,
            "ticket": self.ticket,
            "since": self.since,
            "pause_reason": self.pause_reason,
        }


@dataclass(slots=True)
class Case:
    """A promised item (承诺件) accepted at a window; outlives the ticket's day. Once closed
    it stays in the core until the day's close after its closing, then leaves memory for
    the history tables (`day_rollover.close_day`, hub/store/history.py `history_cases`)."""

    id: str
    ticket: str
    item: str
    opened_at: float
    due_day: str
    resident: str | None
    state: str = "open"  # open, returned, ready, closed (commands.CASE_ACTIONS)
    closed_at: float | None = None  # when it was last closed (办结); None while not closed
    # The back-office department (科室) the case is at: the item's approver when it opened
    # (also for cases opened before departments: `snapshot._cases`, `cases._archived_case`),
    # then wherever a reassignment sent it.
    department: str = ""
    ready_at: float | None = None  # approved, waiting for pick-up (统一窗口出件) since
    handed_by: str | None = None  # who handed the result over: a username, or "card"
    # The latest return for correction (补正): what the back office said, and which of the
    # item's catalog materials (indices into `Item.materials`, 0-based) must be corrected
    # or added. Kept after the resubmission, as the case's last return.
    return_reason: str = ""
    return_materials: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rating:
    """A resident's rating of one service (one per ticket): kept from when it is given to
    the next day's close, which hands it to the history tables (hub/core/ratings.py).

    `score` is a level of the national five-level scale (好差评): 5 非常满意, 4 满意,
    3 基本满意, 2 不满意, 1 非常不满意; a three-level rating (1 good, 2 ok, 3 bad) is kept
    as 5, 3 or 1 (ratings.FROM_THREE), also when an old journal or snapshot is read."""

    ticket: str
    score: int  # 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意
    window: int
    clerk: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HelpRequest:
    """A clerk's call for a back-office specialist (吹哨) and its answer (help_requests.py).
    `request` names it: the journal position of the record that asked, which the answer
    quotes. It stays in the core until a day's close after its answer."""

    request: int
    window: int
    clerk: str | None  # who asked: the console's user, or the window's clerk from a keypad
    at: float
    answered_at: float | None = None
    by: str | None = None  # the specialist who answered
    # Where it goes (窗口吹哨 科室报到): the catalog department (科室) called; None in
    # requests journaled before departments (and a keypad's with no current ticket): any.
    department: str | None = None
    # Its steps after the answer, each with who and when (help_requests.py): the specialist
    # came to the window, the matter was settled; and when it went to the supervisors
    # unanswered (the hub journals that when [help] escalate_after_s has passed).
    arrived_at: float | None = None
    arrived_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    escalated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- bookings (hub/core/booking.py decides them) ----------------------------------------
BOOKED, CANCELLED, CHECKED_IN, LATE, NO_SHOW = (
    "booked", "cancelled", "checked_in", "late", "no_show")


@dataclass(frozen=True, slots=True)
class Booking:
    code: str  # "B0012": the core's name; residents hold it signed (short_code, qr_text)
    item: str
    line: str
    day: str  # "20261123"
    slot: float  # the slot's start, epoch seconds
    resident: str | None  # None: removed by a purge (hub/store/retention.py)
    made_at: float
    state: str = BOOKED
    ticket: str | None = None  # the ticket a check-in issued
    at: float | None = None  # when the state last changed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- follow-ups of low ratings (hub/core/followups.py decides them) -----------------------
@dataclass(frozen=True, slots=True)
class Followup:
    ticket: str  # id
    number: str
    window: int
    clerk: str | None
    item: str
    score: int  # 2 不满意 or 1 非常不满意
    at: float  # when the rating was given
    comment: str = ""
    closed_at: float | None = None
    closed_by: str | None = None
    note: str = ""

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
