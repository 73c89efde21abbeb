"""Bookings (预约) and remote tickets (远程取号) in the simulator, decided by the real core.

A share of the day's residents book ahead, and a share of the others take a number from
their phone; everything the hub would decide is the core's own operation, applied through
the engine (so journaled like the rest): `book` (hub/core/booking.py: slot capacity per
line, one booking per resident, item and day), `checkin` (an appointment ticket inside the
check-in window, "come back at" before it, a normal ticket after it; no-shows swept by
the core), `remote_take` (hub/core/notices.py: opening hours, the stop before closing, the
per-resident limit) and the notices a remote ticket calls for (`notices.due`, journaled as
`notice` with the page channel's outcome `notice_outcome`: the simulated residents leave no
phone number, so no SMS).

What residents do is the simulator's assumption, not the hub's (no field data yet; every
number is a parameter of `AheadModel`):

* booking: `share` (15 %) of the day's visits book ahead. Each asks for the slot holding
  the time they would have come (the first or last slot outside them); a full slot is
  refused by the core with the next free ones, and they take the first of those, or come
  as a walk-in when none is left. The bookings are made when the day's simulation starts.
  With bookings modelled, the resident model's own appointment draw is replaced: a
  booking's check-in is the only way to an appointment ticket.
* at the centre, of the booked: `early` (8 %) come 5-30 min before the check-in window
  opens, are told to come back and check in when it opens; `late` (7 %) come 1-30 min
  after it closed and get a normal ticket; `no_show` (10 %) never come; the rest (75 %)
  check in within the window (90 % of its span around the slot's start).
* remote: `remote` (10 %) of the walk-ins take their number from the phone `remote_lead`
  (20-90 min) before they would have come, if the core's remote hours allow then (else
  they walk in as usual). They come at that time, or earlier when the "near" notice
  reaches them (`travel`, 5-15 min later); `remote_miss` (10 %) never come. Called before
  they are there, they are not there (the clerk recalls and skips, as for anyone absent).

A visit run here carries `ahead` ("booked" or "remote"); the engine's arrivals process
leaves such visits to this module and waits for them before calling the day's arrivals
done. The day's counts are in `DayResult.extra["ahead"]` and its metrics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..core import booking as core_booking
from ..core import commands as c
from ..core import notices as core_notices
from ..core.booking import BookingChanged
from ..core.effects import TicketIssued
from ..core.rejected import Rejected
from .model import Visit

if TYPE_CHECKING:
    from .engine import Day

BOOKED, REMOTE = "booked", "remote"  # Visit.ahead
ON_TIME, EARLY, LATE, NO_SHOW = "on_time", "early", "late", "no_show"  # Visit.arrival
BOOKED_NO_SHOW = "booked_no_show"  # a Visit's outcome: booked and never came
# The journal's device of bookings, check-ins and remote takes: none, as the hub's web pages
# (hub/web/booking.py, the kiosk's check-in page and the phone's remote page) journal them.
BOOK_DEV = None


@dataclass(frozen=True, slots=True)
class AheadModel:
    """What residents do about bookings and remote tickets (the module's docstring)."""

    share: float = 0.15
    early: float = 0.08
    late: float = 0.07
    no_show: float = 0.10
    remote: float = 0.10
    remote_lead: tuple[float, float] = (20.0, 90.0)  # minutes before they would have come
    remote_miss: float = 0.10
    travel: tuple[float, float] = (5.0, 15.0)  # minutes from the "near" notice to the door

    def __post_init__(self) -> None:
        for name in ("share", "early", "late", "no_show", "remote", "remote_miss"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} {v!r}: a share in [0, 1]")
        if self.early + self.late + self.no_show > 1.0:
            raise ValueError("early + late + no_show must be at most 1")
        for name in ("remote_lead", "travel"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} {(lo, hi)!r}: minutes, 0 < low <= high")


class SimAhead:
    """The engine's bookings and remote tickets (`Engine(..., ahead=SimAhead())`)."""

    def __init__(self, model: AheadModel | None = None, seed: int = 0,
                 notices: bool = True) -> None:
        """`notices`: journal the notices remote tickets call for (False on a live hub,
        whose own notifier does it; its remote residents then come at their own time, the
        "near" notice does not bring them earlier)."""
        self.model = model or AheadModel()
        self.seed = seed
        self.notices = notices
        self.rules = core_notices.NoticeRules()
        self.day: Day | None = None
        self.near: dict[str, Any] = {}  # remote ticket -> its resident's "near" event
        self.rng = random.Random(0)
        self._busy = False

    # ---- the day's start: bookings made, processes started --------------------------------
    def prepare(self, day: Day) -> Any:
        """The day's bookings are made first thing (a process the engine's arrivals wait
        for: on a live hub each is a round trip the engine's thread waits on)."""
        # copies: the caller's visits stay as drawn (common random numbers across runs)
        day.visits = [replace(v, windows=list(v.windows), served=dict(v.served))
                      for v in day.visits]
        self.day = day
        return day.env.process(self._start(day))

    def _start(self, day: Day):  # type: ignore[no-untyped-def]
        m, centre, env = self.model, day.centre, day.env
        yield env.timeout(0)
        rng = random.Random(f"ahead:{self.seed}:{day.d.isoformat()}")
        day.ahead = {"booked": 0, "moved": 0, "booking_full": 0, "checked_in": 0, "early": 0,
                     "late": 0, "no_show": 0, "remote": 0, "remote_refused": 0,
                     "remote_missed": 0, "notices_near": 0, "notices_called": 0}
        day.ahead_procs = []
        self.near = {}
        self.rng = rng
        slots = core_booking.day_slots(centre, day.d)
        hours = centre.calendar.opening(day.d)
        early, grace = centre.policy.appointment_early, centre.policy.appointment_grace
        stop = core_notices.RemoteRules().stop_minutes_before_close * 60.0
        for v in day.visits:
            u, kind, lead = rng.random(), rng.random(), rng.uniform(*m.remote_lead) * 60
            token = f"sim{rng.getrandbits(64):016x}"
            if v.priority == "appointment":  # replaced by the booking model
                v.priority, v.appointment_at = "normal", None
            if u < m.share and slots:
                start = self._book(day, v, slots, token)
                if start is None:
                    continue
                if kind < m.no_show:
                    v.arrival = NO_SHOW
                    v.at = start + grace  # would have come by then; only counted
                elif kind < m.no_show + m.late:
                    v.arrival, v.at = LATE, start + grace + rng.uniform(1, 30) * 60
                elif kind < m.no_show + m.late + m.early:
                    v.arrival, v.at = EARLY, start - early - rng.uniform(5, 30) * 60
                else:
                    v.arrival = ON_TIME
                    v.at = start + rng.uniform(-0.9 * early, 0.9 * grace)
                v.ahead = BOOKED
                day.ahead_procs.append(env.process(self._booked(day, v)))
            elif u < m.share + m.remote * (1 - m.share) and hours is not None \
                    and hours[0] <= v.at - lead < hours[1] - stop:
                v.ahead, v.taken_at = REMOTE, v.at - lead
                if kind < m.remote_miss:
                    v.absent = 99
                day.ahead_procs.append(env.process(self._remote(day, v, token)))
        day.visits.sort(key=lambda x: x.at)

    def _book(self, day: Day, v: Visit, slots: list[float], token: str) -> float | None:
        """The booking of visit v in the slot holding its time (or the next free one)."""
        centre = day.centre
        line = centre.catalog.items[v.item].line
        today = f"{day.d:%Y%m%d}"
        want = max([s for s in slots if s <= v.at] or slots[:1])
        name = core_booking.slot_name(centre, line, want)
        for _ in range(2):
            try:
                effects = day.apply(c.Book(v.item, name, token), BOOK_DEV)
            except Rejected as e:
                # the core offers the next free slots, maybe of later days: today's only
                offered = [n for n in (e.detail.get("next") or []) if f"/{today}/" in n
                           ] if e.code == "slot_full" else []
                if not offered:
                    day.ahead["booking_full"] += 1
                    return None
                name = offered[0]
                day.ahead["moved"] += 1
                continue
            code = next(x.code for x in effects if isinstance(x, BookingChanged))
            v.booking, v.resident = code, token
            v.slot = centre.bookings[code].slot
            day.ahead["booked"] += 1
            return v.slot
        day.ahead["booking_full"] += 1
        return None

    # ---- the residents ------------------------------------------------------------------
    def _booked(self, day: Day, v: Visit):  # type: ignore[no-untyped-def]
        env = day.env
        if v.arrival == NO_SHOW:
            day.ahead["no_show"] += 1
            v.outcome = BOOKED_NO_SHOW
            return
        if v.at > env.now:
            yield env.timeout(v.at - env.now)
        while True:
            try:
                effects = day.apply(c.CheckIn(booking=v.booking, source="kiosk-1"), BOOK_DEV)
            except Rejected as e:
                if e.code == "too_early":
                    yield env.timeout(max(1.0, (v.slot or env.now)
                                          - day.centre.policy.appointment_early - env.now))
                    continue
                v.outcome = "rejected"
                return
            break
        day.ahead["late" if v.arrival == LATE else "checked_in"] += 1
        if v.arrival == EARLY:
            day.ahead["early"] += 1
        self._issued(day, v, effects)

    def _remote(self, day: Day, v: Visit, token: str):  # type: ignore[no-untyped-def]
        env = day.env
        if v.taken_at > env.now:
            yield env.timeout(v.taken_at - env.now)
        try:
            effects = day.apply(c.RemoteTake(v.pressed, resident=token), BOOK_DEV)
        except Rejected:  # the core's remote rules said no: they walk in as usual (the
            # arrivals process reaches them later, at `at`)
            day.ahead["remote_refused"] += 1
            v.ahead = ""
            return
        v.resident = token  # the keyed hash of their mobile number, on a hub
        day.ahead["remote"] += 1
        tid = self._issued(day, v, effects)
        if v.absent >= 99:
            day.ahead["remote_missed"] += 1
            return
        near = env.event()
        self.near[tid] = near
        come = env.timeout(max(0.0, v.at - env.now))
        yield come | near
        if near.triggered and not come.triggered:
            v.at = min(v.at, env.now + self.rng.uniform(*self.model.travel) * 60)
        self.near.pop(tid, None)

    def _issued(self, day: Day, v: Visit, effects: list[Any]) -> str:
        tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
        v.ticket = tid
        day.by_ticket[tid] = v
        t = day.centre.tickets[tid]
        day.tickets[tid] = t
        day.monitor.add(day.env.now, t.item)
        day.wake(t.item)
        return tid

    # ---- the simulated hub's notices ------------------------------------------------------
    def after(self, now: float) -> None:
        """After each operation, as the hub's notifier asks after each step: the notices the
        state now calls for, journaled as due and as sent on the page channel."""
        day = self.day
        if not self.notices or day is None or self._busy or not day.centre.contacts:
            return
        self._busy = True  # the notices' own operations come back here
        try:
            for cmd in core_notices.due(day.centre, self.rules, now, ("page",)):
                day.eng.apply(cmd, now, None)
                nid = core_notices.notice_id(cmd.ticket, cmd.kind)
                day.eng.apply(c.NoticeOutcome(nid, "page", "sent", attempts=1), now, None)
                key = "notices_" + cmd.kind
                day.ahead[key] = day.ahead.get(key, 0) + 1
                ev = self.near.get(cmd.ticket) if cmd.kind == core_notices.NEAR else None
                if ev is not None and not ev.triggered:
                    ev.succeed()
        finally:
            self._busy = False
