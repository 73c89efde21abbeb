"""Operations the core accepts. Each is journaled as `{"op": ..., **fields}`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

_PLAIN = (str, int, float, bool, type(None))
_NAMES: dict[type, tuple[str, ...]] = {}  # a command class's field names, in order


@dataclass(frozen=True, slots=True)
class Command:
    op: ClassVar[str] = ""

    def to_record(self) -> dict[str, Any]:
        # asdict's recursive deep copy was a fifth of `onewindow sim --history`: a field
        # that is a plain immutable value (or a tuple of them) is taken as is, which is
        # what asdict's copy equals; any other value (a dict, an enum ...) gets asdict's.
        # hub/tests/test_ticket_dict.py holds every command's record equal to asdict's.
        cls = type(self)
        names = _NAMES.get(cls)
        if names is None:
            names = _NAMES[cls] = tuple(f.name for f in fields(self))
        d: dict[str, Any] = {}
        for name in names:
            v = getattr(self, name)
            if type(v) in _PLAIN or (type(v) is tuple and all(type(x) in _PLAIN for x in v)):
                d[name] = v
            else:
                d = asdict(self)
                break
        d["op"] = self.op
        return d


@dataclass(frozen=True, slots=True)
class TakeTicket(Command):
    op: ClassVar[str] = "take"
    item: str
    priority: str = "normal"
    resident: str | None = None
    appointment_at: float | None = None
    extra_items: tuple[str, ...] = ()
    source: str | None = None
    # A ticket a button box issued by itself while the hub was unreachable, from a block
    # reserved for it: the number it printed and when the resident pressed the button.
    number: str | None = None
    taken_at: float | None = None
    # The device's event seq that asks (`request`) and, for an offline ticket, the seq of
    # the take it replaces (`supersedes`, protocol `for_seq`): a ticket issued late for
    # that one is voided, so one press stays one ticket.
    request: int | None = None
    supersedes: int | None = None
    # The kiosk's pre-review (预审) of this ticket's materials (hub/core/prereview.py):
    # {"ticked": [...], "missing": [...], "tips": bool, "insisted": bool}, materials named
    # "ITEM.k" (the k-th material of the item). None: no pre-review (a button press).
    review: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        d = Command.to_record(self)
        if d["review"] is None:
            del d["review"]  # records stay as they were before pre-review was journaled
        return d


@dataclass(frozen=True, slots=True)
class ReserveBlock(Command):
    """Numbers a button box may issue on its own if it loses the hub (A901-A910 ...)."""

    op: ClassVar[str] = "reserve"
    device: str
    prefixes: tuple[str, ...]
    size: int = 10


@dataclass(frozen=True, slots=True)
class WindowCommand(Command):
    window: int


@dataclass(frozen=True, slots=True)
class CallNext(WindowCommand):
    op: ClassVar[str] = "call"


@dataclass(frozen=True, slots=True)
class Recall(WindowCommand):
    op: ClassVar[str] = "recall"


@dataclass(frozen=True, slots=True)
class Skip(WindowCommand):
    """The called resident did not come. `requeue=None` follows the centre's policy."""

    op: ClassVar[str] = "skip"
    requeue: bool | None = None


@dataclass(frozen=True, slots=True)
class Transfer(WindowCommand):
    op: ClassVar[str] = "transfer"
    to_window: int | None = None
    to_item: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Start(WindowCommand):
    op: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class Complete(WindowCommand):
    op: ClassVar[str] = "complete"


@dataclass(frozen=True, slots=True)
class Pause(WindowCommand):
    """A break at the window. `reason`: a code of desk.PAUSE_REASONS (lunch, meeting,
    training, system, other), or "" (a keypad's key, records written before reasons:
    reported as unspecified). The record carries `reason` only when there is one."""

    op: ClassVar[str] = "pause"
    reason: str = ""

    def to_record(self) -> dict[str, Any]:
        d = Command.to_record(self)
        if not d["reason"]:
            del d["reason"]  # a keypad's pause stays the record it always was
        return d


@dataclass(frozen=True, slots=True)
class Resume(WindowCommand):
    op: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class OpenWindow(WindowCommand):
    op: ClassVar[str] = "open"
    clerk: str | None = None


@dataclass(frozen=True, slots=True)
class CloseWindow(WindowCommand):
    op: ClassVar[str] = "close"


@dataclass(frozen=True, slots=True)
class SetSkills(WindowCommand):
    op: ClassVar[str] = "skills"
    skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reprint(Command):
    op: ClassVar[str] = "reprint"
    ticket: str  # number ("A017", today) or id ("20261123-A017")
    source: str | None = None


@dataclass(frozen=True, slots=True)
class CaseUpdate(Command):
    """The back office's word on a promised item (承诺件) accepted at a window
    (hub/core/cases.py; the states and moves are `CASE_ACTIONS`).

    `action`: ``returned`` (退件 for correction 补正, open -> returned: a non-empty
    `reason` and the `materials` to correct, 0-based indices into the item's catalog
    materials, at least one when the item lists any), ``resubmitted`` (the corrected
    materials came back, returned -> open), ``corrected`` (the acceptance had to be
    corrected, the case stays open), ``reassigned`` (sent to another `department` of the
    catalog with a `reason`, open or returned, its state stays), ``approved`` (open ->
    ready: waiting for pick-up, 统一窗口出件), ``handed_over`` (ready -> closed: the result
    collected, `by` the clerk or "card"), ``closed`` (办结 with nothing to collect,
    open -> closed), ``reopened`` (a closed case opened again, closed -> open).
    Returned, corrected and reopened count against the clerk who accepted the case.

    `by`: who did it (the staff page's user; "card" for a hand-over signed by the
    resident's card). Every record written since the case loop carries the key, even as
    null; a record without it was written before and is replayed by the rules of its
    time (`before_loop`: a return needed no reason or materials then).

    `restore`: a closed case that has left the core's memory (archived at the day's close
    after its closing) is reopened with its archived fields (`Case` field -> value), which
    the app reads from the history tables and journals here, so a replay needs no SQL. The
    core re-admits it only for ``reopened`` and only when the case is not in memory.
    """

    op: ClassVar[str] = "case"
    case: str
    action: str
    reason: str = ""
    restore: dict[str, Any] | None = None
    by: str | None = None
    department: str = ""  # reassigned: where to
    materials: tuple[int, ...] = ()  # returned: which of the item's materials
    # A record from before the case loop (no `by` key). Never recorded: only
    # `from_record` sets it.
    before_loop: bool = False

    def to_record(self) -> dict[str, Any]:
        d = Command.to_record(self)
        if d["restore"] is None:
            del d["restore"]  # records stay as they were before archiving
        for key in ("department", "materials"):
            if not d[key]:
                del d[key]
        if d.pop("before_loop"):
            del d["by"]  # written again as it was: still replayed by its old rules
        return d


@dataclass(frozen=True, slots=True)
class Rate(WindowCommand):
    """A resident's rating of the service at `window` (a node's rating keys, the phone
    page) on the national 好差评 scale, `scale` 5: `score` 5 非常满意, 4 满意, 3 基本满意,
    2 不满意, 1 非常不满意. `scale` 3 is the old three-level score (1 满意 good, 2 基本满意
    ok, 3 不满意 bad), which the core maps onto the five levels (5, 3, 1: ratings.py).
    One per served ticket, from the window that served it, while it is served or within
    the policy's `rating_window` after it. `comment`: the resident's optional words (phone
    page), kept with the follow-up a low rating opens (followups.py). The journal record
    is `{op: "rate", window, ticket, score, scale[, comment]}`; records written before the
    five levels have no `scale` and are three-level (`from_record`); records written
    before ratings were checked also carry `clerk`, which is ignored (the core names it)."""

    op: ClassVar[str] = "rate"
    ticket: str = ""  # id ("20261123-A017") or today's number ("A017")
    score: int = 0
    scale: int = 5
    comment: str = ""
    # A record written before the five levels (no `scale`): follow-ups did not exist, and
    # a snapshot of that time holds none, so replaying it opens none either (snapshot +
    # tail = full replay). Never recorded: only `from_record` sets it.
    before_followups: bool = False

    def to_record(self) -> dict[str, Any]:
        d = Command.to_record(self)
        del d["before_followups"]
        if not d["comment"]:
            del d["comment"]  # a key press has none: records stay as small as before
        return d


@dataclass(frozen=True, slots=True)
class CloseFollowup(Command):
    """A supervisor (`by`) closes the follow-up (差评整改) a low rating of `ticket` (its
    id) opened, with a `note` of what was done: `{op: "close_followup", ticket, by, note}`
    (hub/core/followups.py)."""

    op: ClassVar[str] = "close_followup"
    ticket: str
    by: str
    note: str


@dataclass(frozen=True, slots=True)
class MarkPriority(Command):
    """A clerk (`by`, the console's user) marks a waiting ticket priority (爱心优先): a
    resident who did not press priority, e.g. a pregnant woman staff noticed. The record,
    `{op: "mark_priority", ticket, by}`, keeps who did it (hub/core/prioritise.py)."""

    op: ClassVar[str] = "mark_priority"
    ticket: str  # id ("20261123-A017") or today's number ("A017")
    by: str



@dataclass(frozen=True, slots=True)
class Book(Command):
    """A resident books `item` in `slot` ("{centre}/{line}/{YYYYMMDD}/{HHMM}"): the core
    names the booking (B0001, ...; hub/core/booking.py). `resident`: the resident token.
    `phone`: a sealed mobile number for the booking's reminders (hub/core/reminders.py),
    with the resident's `lang`; None: no reminder by SMS."""

    op: ClassVar[str] = "book"
    item: str
    slot: str
    resident: str | None  # None only in a record a purge rewrote (hub/store/retention.py)
    phone: str | None = None
    lang: str = "zh-CN"

    def to_record(self) -> dict[str, Any]:
        # Without a number the record stays as bookings were journaled before reminders.
        d = Command.to_record(self)
        if d["phone"] is None:
            del d["phone"], d["lang"]
        return d


@dataclass(frozen=True, slots=True)
class CancelBooking(Command):
    """A booking cancelled by its (verified) code; `resident`, when given, must be its."""

    op: ClassVar[str] = "cancel_booking"
    booking: str
    resident: str | None = None


@dataclass(frozen=True, slots=True)
class CheckIn(Command):
    """Check-in of a booking by its (verified) name or by the resident's card token: an
    appointment ticket in time, a normal one late (hub/core/booking.py)."""

    op: ClassVar[str] = "checkin"
    booking: str | None = None
    resident: str | None = None
    source: str | None = None
    request: int | None = None

# action -> (from states, to state); SAME: the case keeps its state. A case is `open` at
# its department's back office, `returned` to the window for correction (补正), `ready`
# for pick-up (统一窗口出件) once approved, `closed` when handed over or closed directly.
SAME = ""
CASE_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "returned": (("open",), "returned"),
    "resubmitted": (("returned",), "open"),
    "corrected": (("open",), "open"),
    "reassigned": (("open", "returned"), SAME),
    "approved": (("open",), "ready"),
    "handed_over": (("ready",), "closed"),
    "closed": (("open",), "closed"),
    "reopened": (("closed",), "open"),
}
CASE_STATES = ("open", "returned", "ready", "closed")
CASE_DEFECTS = ("returned", "corrected", "reopened")


@dataclass(frozen=True, slots=True)
class RemoteTake(Command):
    """A take from the resident's phone (远程取号, hub/core/notices.py): `resident` is the
    keyed hash of the mobile number, `phone` the number sealed (a PhoneRef token, never
    the clear number; None once purged), `lang` the resident's language for notices.
    `per_day` and `stop_minutes` are the centre's [remote] rules when it was taken:
    journaled with it, so a replay judges it by the same rules."""

    op: ClassVar[str] = "remote_take"
    item: str
    resident: str | None = None
    phone: str | None = None
    lang: str = "zh-CN"
    per_day: int = 1
    stop_minutes: int = 60


@dataclass(frozen=True, slots=True)
class NoticeDue(Command):
    """A notice the core called for (journaled before it is sent): `kind` for `ticket`,
    the figures its text quotes, and the channels it goes through."""

    op: ClassVar[str] = "notice"
    ticket: str
    kind: str
    ahead: int | None = None
    minutes: int | None = None
    window: int | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NoticeOutcome(Command):
    """What became of a due notice on one channel: sent, failed (after the retry bound)
    or dropped (its ticket moved on before it went)."""

    op: ClassVar[str] = "notice_outcome"
    notice: str
    channel: str
    outcome: str
    attempts: int = 0


ALL: tuple[type[Command], ...] = (
    TakeTicket, ReserveBlock, CallNext, Recall, Skip, Transfer, Start, Complete,
    Pause, Resume, OpenWindow, CloseWindow, SetSkills, Reprint, CaseUpdate, Rate,
    MarkPriority, CloseFollowup,
)
BY_OP: dict[str, type[Command]] = {c.op: c for c in ALL}
_TUPLE_FIELDS = {"extra_items", "skills", "prefixes", "materials"}
# Remote takes and notices (hub/core/notices.py).
BY_OP.update({k.op: k for k in (RemoteTake, NoticeDue, NoticeOutcome)})
_TUPLE_FIELDS.add("channels")
# Booking and check-in (hub/core/booking.py).
BY_OP.update({k.op: k for k in (Book, CancelBooking, CheckIn)})



def from_record(record: dict[str, Any]) -> Command:
    """Rebuild a command from its journal record (the inverse of `to_record`)."""
    cls = BY_OP[record["op"]]
    kwargs = {}
    for f in fields(cls):
        if f.name in record:
            value = record[f.name]
            kwargs[f.name] = tuple(value) if f.name in _TUPLE_FIELDS else value
    if cls is CaseUpdate and "by" not in record:
        kwargs["before_loop"] = True  # written before the case loop: its rules (cases.py)
    if cls is Rate and "scale" not in record:
        kwargs["scale"] = 3  # written before the five levels: the three-level score
        kwargs["before_followups"] = True
    return cls(**kwargs)
