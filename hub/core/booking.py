"""Booking (预约) with check-in: a resident books an item, a day and a slot; at the centre
they check in by the booking's code or their card, and get an appointment ticket that goes
first in its slot.

Slots are `slot_minutes` long and lie within the day's opening hours (the centre's
calendar); a slot is named ``{centre}/{line}/{YYYYMMDD}/{HHMM}`` (its local start), so a
slot of another centre or line is refused by name. Each department line takes at most
`capacity` bookings per slot: the configured number ([booking] capacity in centre.toml),
else the number of configured windows that can serve the line. Bookings open for today and
`days_ahead` days after it. One active booking per resident token, item and day.

Check-in is open from `policy.appointment_early` before the slot's start to
`policy.appointment_grace` after it (10 min before to 15 min after, what the ordering
policy already serves appointments by): in time, an appointment ticket (appointment_at =
the slot's start); earlier, refused with the time to come back; later, a normal ticket.
A booking nobody checked in by then is a no-show: `sweep` marks it when the core first
hears of a time past that (Centre.apply, like the day's roll-over: the core reads no clock),
which releases its capacity and the resident's one booking of the day, and counts it.

Booking codes: the core names a booking `B0001`, `B0002`, ... (never reused). What a
resident holds is that name signed with a key derived from the centre's secret
(`short_code`: ``B0012-7KQ2MX``, typed; `qr_text`: ``OWB1/{centre}/B0012/{sig}``, scanned):
the adapters verify the signature (`verify`) before the core sees the name, so a forged
code is refused; the core refuses a second check-in of one booking.

Per day, the counts (booked, cancelled, checked in, late, no-shows) stay in the core for
the staff report; a past day's finished bookings leave memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from typing import Any

from . import commands as c
from . import signing
from .effects import Effect, TicketIssued
from .issuing import take_ticket
from .model import BOOKED, CANCELLED, CHECKED_IN, LATE, NO_SHOW, Booking, Priority
from .notices import LANGS, Contact
from .rejected import Rejected
from .state import CentreState

__all__ = ["BOOKED", "CANCELLED", "CHECKED_IN", "LATE", "NO_SHOW", "Booking"]  # the record's
STATES = (BOOKED, CANCELLED, CHECKED_IN, LATE, NO_SHOW)
COUNTS = ("booked", "cancelled", "checked_in", "late", "no_show")  # per day, in this order
ACTIVE = (BOOKED, CHECKED_IN, LATE)  # hold the resident's one booking of the item and day
TAKEN = (BOOKED, CHECKED_IN)  # hold a place in the slot's capacity
NEXT_FREE = 3  # free slots offered when one is full
MAX_RESIDENT = 128
_SLOT = re.compile(r"^([^/]{1,64})/([^/]{1,64})/(\d{8})/(\d{4})$")


# ---- slots ------------------------------------------------------------------------------

def slot_name(state: CentreState, line: str, start: float) -> str:
    local = state.calendar.local_time(start)
    return f"{state.config.centre_id}/{line}/{local:%Y%m%d}/{local:%H%M}"


def day_slots(state: CentreState, d: dt.date) -> list[float]:
    """The starts of date `d`'s slots: whole slots inside its opening hours."""
    span = state.calendar.opening(d)
    if span is None:
        return []
    length = state.booking_rules.slot_minutes * 60
    out, at = [], span[0]
    while at + length <= span[1]:
        out.append(at)
        at += length
    return out


def capacity(state: CentreState, line: str) -> int:
    return capacities(state).get(line, 0)


def capacities(state: CentreState) -> dict[str, int]:
    """Bookings per slot of each line, derived once from the configuration (line_capacity)
    when first asked: the state holds it, and does not import this module to fill it."""
    if state._booking_capacity is None:
        state._booking_capacity = line_capacity(state)
    return state._booking_capacity


def line_capacity(state: CentreState) -> dict[str, int]:
    """Bookings per slot of each line: configured, else the configured windows that can
    serve an item of the line (derived once from the configuration)."""
    explicit = dict(state.booking_rules.capacity)
    out = {}
    for line in state.catalog.lines:
        if line in explicit:
            out[line] = explicit[line]
            continue
        items = {i.id for i in state.catalog.items.values() if i.line == line}
        out[line] = sum(1 for w in state._configured_skills if w & items)
    return out


def taken(state: CentreState, line: str, start: float) -> int:
    return sum(1 for b in state.bookings.values()
               if b.line == line and b.slot == start and b.state in TAKEN)


def free_slots(state: CentreState, item_id: str, d: dt.date, now: float
               ) -> list[tuple[float, int, int]]:
    """(start, capacity, taken) of date `d`'s slots still open for booking `item_id` at
    `now` (a slot is open until its check-in window closes)."""
    item = state.catalog.item(item_id)
    if item is None:
        return []
    cap = capacity(state, item.line)
    grace = state.policy.appointment_grace
    return [(s, cap, taken(state, item.line, s)) for s in day_slots(state, d) if s + grace > now]


def bookable_days(state: CentreState, now: float) -> list[dt.date]:
    today = state.calendar.local_date(now)
    days = (today + dt.timedelta(days=k) for k in range(state.booking_rules.days_ahead + 1))
    return [d for d in days if state.calendar.opening(d) is not None]


def next_free(state: CentreState, line: str, after: float, now: float) -> list[float]:
    """The next `NEXT_FREE` slots of `line` with room, from `after` on, within the days
    bookings are open."""
    out: list[float] = []
    cap = capacity(state, line)
    for d in bookable_days(state, now):
        for s in day_slots(state, d):
            if s > after and s + state.policy.appointment_grace > now and \
                    taken(state, line, s) < cap:
                out.append(s)
                if len(out) == NEXT_FREE:
                    return out
    return out


def _parse_slot(state: CentreState, name: Any, line: str, now: float) -> tuple[dt.date, float]:
    m = _SLOT.match(name) if isinstance(name, str) else None
    if m is None:
        raise Rejected("bad_slot", "时段格式不对 / 時段格式不對 / the slot is malformed "
                                   f"({str(name)[:80]!r})")
    centre, slot_line, day, hhmm = m.groups()
    if centre != state.config.centre_id:
        raise Rejected("other_centre", f"该时段不属于本中心 / 該時段不屬於本中心 / the slot is "
                                       f"another centre's ({centre})")
    if slot_line != line:
        raise Rejected("wrong_line", f"该时段不属于此事项的条线 / 該時段不屬於此事項的條線 / "
                                     f"the slot is for line {slot_line}, the item is {line}'s")
    try:
        d = _date(day)
        t = dt.time(int(hhmm[:2]), int(hhmm[2:]))
    except ValueError:
        raise Rejected("bad_date", f"日期或时间无效 / 日期或時間無效 / no such date or time "
                                   f"({day} {hhmm})") from None
    today = state.calendar.local_date(now)
    if d < today:
        raise Rejected("past_day", f"不能预约已过去的日期 / 不能預約已過去的日期 / "
                                   f"{d.isoformat()} is in the past")
    if d > today + dt.timedelta(days=state.booking_rules.days_ahead):
        n = state.booking_rules.days_ahead
        raise Rejected("too_far", f"只能预约{n}天内 / 只能預約{n}天內 / bookings open only "
                                  f"{n} days ahead")
    start = dt.datetime.combine(d, t, state.calendar.tz).timestamp()
    if start not in day_slots(state, d):
        raise Rejected("no_such_slot", f"{d.isoformat()} {t:%H:%M}不是可预约时段 / "
                                       f"不是可預約時段 / is not a booking slot "
                                       "(closed, or not a slot's start)")
    if start + state.policy.appointment_grace <= now:
        raise Rejected("past_slot", f"{t:%H:%M}时段已过 / {t:%H:%M}時段已過 / the "
                                    f"{t:%H:%M} slot has passed")
    return d, start


def _date(day: str) -> dt.date:
    return dt.date(int(day[:4]), int(day[4:6]), int(day[6:8]))


def _hhmm(state: CentreState, at: float) -> str:
    return f"{state.calendar.local_time(at):%H:%M}"


# ---- operations -------------------------------------------------------------------------

def book(state: CentreState, cmd: c.Book, now: float) -> list[Effect]:
    item = state.catalog.item(cmd.item) if isinstance(cmd.item, str) else None
    if item is None:
        raise Rejected("unknown_item", f"未知事项 / 未知事項 / unknown item {cmd.item!r}")
    # No resident: a record whose token a purge removed (hub/store/retention.py), replayed.
    # The adapters always give one; the token only refused a second booking, and the
    # journal holds only bookings that were accepted, so none is refused without it.
    resident = None if cmd.resident is None else _resident(cmd.resident)
    phone = _phone(cmd)
    if capacity(state, item.line) <= 0:
        raise Rejected("not_bookable", f"{item.name.zh}不接受预约 / 不接受預約 / "
                                       f"{item.id} cannot be booked here")
    d, start = _parse_slot(state, cmd.slot, item.line, now)
    day = d.strftime("%Y%m%d")
    held = None if resident is None else next(
        (b for b in state.bookings.values() if b.resident == resident
         and b.item == item.id and b.day == day and b.state in ACTIVE), None)
    if held is not None:
        raise Rejected("already_booked", f"您当天已预约此事项 / 您當天已預約此事項 / you have "
                                         f"booked this item that day already "
                                         f"({_hhmm(state, held.slot)})", booking=held.code)
    if taken(state, item.line, start) >= capacity(state, item.line):
        offered = next_free(state, item.line, start, now)
        raise Rejected("slot_full", f"{_hhmm(state, start)}时段已约满 / 時段已約滿 / the "
                                    f"{_hhmm(state, start)} slot is full",
                       next=[slot_name(state, item.line, s) for s in offered])
    state.booking_serial += 1
    code = f"B{state.booking_serial:04d}"
    state.bookings[code] = Booking(code, item.id, item.line, day, start, resident, now, at=now)
    if phone is not None:  # the booking's reminders reach it (hub/core/reminders.py)
        state.contacts[code] = Contact(code, phone, cmd.lang)
    _count(state, day, "booked")
    _due(state)
    return [BookingChanged(code)]


def cancel(state: CentreState, cmd: c.CancelBooking, now: float) -> list[Effect]:
    b = _known(state, cmd.booking)
    if cmd.resident is not None and cmd.resident != b.resident:
        raise Rejected("not_yours", "这不是您的预约 / 這不是您的預約 / not your booking")
    if b.state != BOOKED:
        raise _not_open(b)
    if b.slot + state.policy.appointment_grace <= now:
        raise Rejected("past_slot", "时段已过，无法取消 / 時段已過，無法取消 / the slot has "
                                    "passed")
    state.bookings[b.code] = replace(b, state=CANCELLED, at=now)
    _count(state, b.day, "cancelled")
    _due(state)
    return [BookingChanged(b.code)]


def check_in(state: CentreState, cmd: c.CheckIn, now: float) -> list[Effect]:

    if (cmd.booking is None) == (cmd.resident is None):
        raise Rejected("bad_field", "签到需要预约码或身份证 / 簽到需要預約碼或身分證 / check in "
                                    "with a booking code or a card (one of them)")
    b = _known(state, cmd.booking) if cmd.booking is not None else _of_resident(
        state, _resident(cmd.resident), now)
    today = state.day
    if b.state in (CHECKED_IN, LATE):
        raise Rejected("already_checked_in", f"该预约已签到 / 該預約已簽到 / this booking has "
                                             f"checked in already ({b.ticket})",
                       booking=b.code)
    if b.state == CANCELLED:
        raise _not_open(b)
    if b.day != today:
        d = _date(b.day)
        raise Rejected("not_today", f"预约日期是{d:%m-%d} {_hhmm(state, b.slot)} / 預約日期是"
                                    f"{d:%m-%d} {_hhmm(state, b.slot)} / your booking is on "
                                    f"{d.isoformat()} at {_hhmm(state, b.slot)}",
                       booking=b.code)
    early, grace = state.policy.appointment_early, state.policy.appointment_grace
    if now < b.slot - early:
        back = _hhmm(state, b.slot - early)
        raise Rejected("too_early", f"请于{back}后再来签到 / 請於{back}後再來簽到 / come back "
                                    f"at {back} to check in", come_back=back, booking=b.code)
    late = now > b.slot + grace or b.state == NO_SHOW
    take = c.TakeTicket(b.item, priority=Priority.NORMAL.value if late
                        else Priority.APPOINTMENT.value,
                        resident=b.resident, appointment_at=None if late else b.slot,
                        source=cmd.source, request=cmd.request)
    effects = take_ticket(state, take, now)  # refuses with nothing changed
    ticket = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    if late:
        if b.state == NO_SHOW:
            _count(state, b.day, "no_show", -1)
        _count(state, b.day, "late")
    else:
        _count(state, b.day, "checked_in")
    state.bookings[b.code] = replace(b, state=LATE if late else CHECKED_IN, ticket=ticket,
                                     at=now)
    _due(state)
    return [BookingChanged(b.code), *effects]


@dataclass(frozen=True, slots=True)
class BookingChanged(Effect):
    code: str


def sweep(state: CentreState, now: float) -> list[Effect]:
    """Bookings past their check-in window become no-shows; a past day's finished bookings
    leave memory. Replaces the containers it changes (day_rollover.rollback)."""
    grace = state.policy.appointment_grace
    today = state.day
    gone = [b for b in state.bookings.values() if b.state == BOOKED and b.slot + grace <= now]
    old = [k for k, b in state.bookings.items()
           if b.day < today and b.state != BOOKED]
    state._booking_day = today
    if gone or old:
        books = {k: b for k, b in state.bookings.items() if k not in old}
        counts = {d: list(v) for d, v in state.booking_counts.items()}
        for b in gone:
            books[b.code] = replace(b, state=NO_SHOW, at=b.slot + grace)
            counts.setdefault(b.day, [0] * len(COUNTS))[COUNTS.index("no_show")] += 1
        state.bookings, state.booking_counts = books, counts
    _due(state)
    return [BookingChanged(b.code) for b in gone]


def sweep_due(state: CentreState, now: float) -> bool:
    return now >= state._booking_due or state._booking_day != state.day


# ---- helpers ----------------------------------------------------------------------------

def _due(state: CentreState) -> None:
    grace = state.policy.appointment_grace
    state._booking_due = min((b.slot + grace for b in state.bookings.values()
                              if b.state == BOOKED), default=float("inf"))


def _count(state: CentreState, day: str, what: str, n: int = 1) -> None:
    row = state.booking_counts.setdefault(day, [0] * len(COUNTS))
    row[COUNTS.index(what)] += n


def _resident(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_RESIDENT:
        raise Rejected("bad_resident", "缺少有效的居民标识 / 缺少有效的居民標識 / a valid "
                                       "resident token is required")
    return value


def _phone(cmd: c.Book) -> str | None:
    """The booking's sealed number (None: none given, or a purge removed it from the
    record: hub/store/retention.py). Never a clear number: only a sealed token."""
    if cmd.lang not in LANGS:
        raise Rejected("bad_field", f"lang {cmd.lang!r}: one of {', '.join(LANGS)}")
    if cmd.phone is None:
        return None
    if not isinstance(cmd.phone, str) or not cmd.phone.startswith("p1."):
        raise Rejected("bad_field", "phone: not a sealed number")
    return cmd.phone


def _known(state: CentreState, code: Any) -> Booking:
    b = state.bookings.get(code) if isinstance(code, str) else None
    if b is None:
        raise Rejected("unknown_booking", f"没有此预约 / 沒有此預約 / no booking {code!r}")
    return b


def _of_resident(state: CentreState, resident: str, now: float) -> Booking:
    """The resident's booking to check in today: the one booked nearest to now."""
    mine = [b for b in state.bookings.values() if b.resident == resident
            and b.day == state.day and b.state in (BOOKED, NO_SHOW)]
    if not mine:
        raise Rejected("no_booking", "您今天没有预约 / 您今天沒有預約 / you have no booking "
                                     "today")
    return min(mine, key=lambda b: (abs(b.slot - now), b.code))


def _not_open(b: Booking) -> Rejected:
    words = {CANCELLED: ("已取消", "已取消", "cancelled"),
             CHECKED_IN: ("已签到", "已簽到", "checked in"),
             LATE: ("已签到", "已簽到", "checked in"),
             NO_SHOW: ("已过期（未到）", "已過期（未到）", "missed (no-show)")}[b.state]
    return Rejected(f"booking_{b.state}", f"该预约{words[0]} / 該預約{words[1]} / the booking "
                                          f"is {words[2]}", booking=b.code)


def counts_of(state: CentreState, day: str) -> dict[str, int]:
    row = state.booking_counts.get(day, [0] * len(COUNTS))
    return dict(zip(COUNTS, row, strict=True))


# ---- signed codes (pure: the key is the adapter's) ------------------------------------

QR_PREFIX = "OWB1"
CODES = signing.CodeFormat(  # the same signing as ticket tokens, its own purpose
    "booking", QR_PREFIX, short=6,  # base32 characters: 30 bits, endpoints rate-limited
    qr=16, name=re.compile(r"^B\d{4,9}$"),
    forged="预约码无效 / 預約碼無效 / the booking code is not valid",
    other_centre="这是其他中心的预约码 / 這是其他中心的預約碼 / a booking code of another centre")


def derive_key(secret: bytes, centre: str) -> bytes:
    """The booking-code key from the centre's secret (the fleet secret)."""
    return hmac.new(secret, f"onewindow booking code v1|{centre}".encode(),
                    hashlib.sha256).digest()


def short_code(key: bytes, centre: str, code: str) -> str:
    return CODES.typed(key, centre, code)


def qr_text(key: bytes, centre: str, code: str) -> str:
    return CODES.qr_text(key, centre, code)


def verify(key: bytes, centre: str, text: Any) -> str:
    """The booking's name inside a signed code (short or QR text). Raises Rejected."""
    return CODES.verify(key, centre, text)


# ---- today's load per slot (the supervisors' dashboard) --------------------------------

def today_load(state: CentreState, now: float) -> list[dict[str, Any]]:
    """Per slot of today: its start (HH:MM), the bookable capacity (all lines), bookings
    (not cancelled), checked in (in time or late), no-shows (swept, or past their window
    and not yet swept: the core sweeps lazily) and walk-in tickets issued during it (every
    ticket of today not issued by a check-in)."""
    d = state.calendar.local_date(now)
    day = d.strftime("%Y%m%d")
    starts = day_slots(state, d)
    if not starts:
        return []
    length = state.booking_rules.slot_minutes * 60
    grace = state.policy.appointment_grace
    cap = sum(capacities(state).values())
    counts: dict[float, dict[str, int]] = {
        s: {"booked": 0, "checked_in": 0, "no_show": 0, "walk_in": 0} for s in starts}
    from_bookings = set()
    for b in state.bookings.values():
        if b.ticket is not None:
            from_bookings.add(b.ticket)
        row = counts.get(b.slot) if b.day == day else None
        if row is None or b.state == CANCELLED:
            continue
        row["booked"] += 1
        if b.state in (CHECKED_IN, LATE):
            row["checked_in"] += 1
        elif b.state == NO_SHOW or b.slot + grace <= now:
            row["no_show"] += 1
    first = starts[0]
    for t in state.tickets.values():
        if t.day != state.day or t.id in from_bookings or state.day != day:
            continue
        k = int((t.issued_at - first) // length)
        if 0 <= k < len(starts):
            counts[starts[k]]["walk_in"] += 1
    return [{"slot": _hhmm(state, s), "capacity": cap, **counts[s]} for s in starts]
