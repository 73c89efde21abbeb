"""The discrete-event simulation of a centre's day, decided by the real dispatch core.

SimPy keeps the clock and the people; every decision the hub would make is made by the
very `Centre` the hub runs, through `Centre.apply(command, now)` with simulated epoch
seconds: arrival -> TakeTicket, a free clerk -> CallNext, the resident at the window ->
Start, done -> Complete, nobody there -> Recall then Skip, an item this window cannot
serve -> Transfer, breaks -> Pause/Resume, the day -> OpenWindow/CloseWindow.

    engine = Engine(catalog, layout("mixed", catalog, 8))
    day = engine.run_day(dt.date(2026, 11, 23), Weather(rain=True), seed=1)
    day.metrics()            # -> metrics.DayMetrics

A day's `DayResult` is defined with its scoring in metrics.py, which knows nothing of the
engine (the engine depends on the statistics, never the other way round).

The Centre lives across `run_day` calls (numbers restart at local midnight inside the core),
so months of days make one continuous history; `recorder(now, dev, seq, body)` receives
every journal record as the app layer would write it (see history.py).

The same processes can act on a live hub instead (`onewindow demo`): give the Engine the
hub's `Centre` to read and an `act(command, now, dev)` that makes the named device send the
matching event and returns what the engine needs of the answer; then step `start_day(...)`'s
`env` against a wall clock yourself.

Why one module over ~400 lines: `Day`'s processes are the engine's own (they apply and rate
through it and read its pools, clerks and service model); a separate day module would need
either an interface as wide as `Engine` or an import circle back to it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import simpy

from ..core import commands as c
from ..core.catalog import Catalog
from ..core.centre import Centre
from ..core.effects import TicketIssued
from ..core.model import Ticket
from ..core.prereview import PreReview, ReturnForMaterials
from ..core.rejected import Rejected
from .metrics import DayResult, QueueMonitor
from .model import (
    ArrivalModel,
    Population,
    ResidentModel,
    Visit,
    Weather,
    at_local,
    day_info,
    midnight,
)
from .policies import Layout
from .prereview import (
    KIOSK,
    KIOSK_LEFT,
    ComeBacks,
    PreReviewModel,
    at_kiosk,
    missing_keys,
    review,
)
from .service import Clerk, ServiceModel


class SimAdmission(Protocol):
    """Admission control in a simulated day (hub/sim/admission.py), as the engine calls it
    (a Protocol here: that module runs whole days with this engine)."""

    def before(self, centre: Centre, cmd: c.Command, now: float, pos: int) -> None: ...

    def after(self, centre: Centre, cmd: c.Command, effects: list[Any], now: float,
              pos: int) -> None: ...

    def judge(self, centre: Centre, v: Visit, now: float, pos: int,
              opening: tuple[float, float]) -> str | None: ...


class SimAhead(Protocol):
    """Residents who book ahead or take a number by phone (hub/sim/bookings.py)."""

    def prepare(self, day: Day) -> Any: ...

    def after(self, now: float) -> None: ...

Recorder = Callable[[float, "str | None", dict[str, Any]], None]
# Carries out one command for the device `dev` at simulated time `now` instead of the
# engine's own Centre: returns the effects the engine reads (a take's TicketIssued), raises
# Rejected as the core would.
Act = Callable[[c.Command, float, "str | None"], list[Any]]

OPEN = dt.time(9, 0)
CLOSE = dt.time(17, 0)
LUNCH = (dt.time(11, 40), dt.time(12, 25))  # staggered: odd windows first
LUNCH_MINUTES = 30.0
BREAK_SHARE = 0.02  # a short break after a ticket
TRANSFER_SECONDS = 60.0  # explaining a transfer to another window
SLOT_SECONDS = 1800.0  # a staffing schedule's half-hour


@dataclass(slots=True)
class DayOptions:
    open_at: dt.time = OPEN
    close_at: dt.time = CLOSE
    reopen_at: dt.time | None = None  # a drill: closed from open_at until reopen_at
    hard_stop: dt.time = dt.time(19, 0)  # windows close even with a queue (it expires)
    lunch: bool = True
    breaks: bool = True
    # A staffing plan: windows staffed in each half-hour from open_at (the last value holds
    # until close_at), in `staff_order` (window numbers; default ascending). A window off
    # duty pauses once free and resumes when staffed; one not staffed again before close_at
    # closes. None: every window all day (as before).
    schedule: tuple[int, ...] | None = None
    staff_order: tuple[int, ...] | None = None
    # When the simulation starts (None: 08:00 or the first arrival if earlier). Residents
    # who came before it are already at the door and take their tickets at once.
    start_at: dt.time | None = None
    # Each window's lunch break: window number -> (start, minutes); a window not named has
    # none. None: the usual staggered lunch (odd windows from LUNCH[0], even from LUNCH[1],
    # up to 10 minutes later, about LUNCH_MINUTES long). `lunch` False: no lunch at all.
    lunches: dict[int, tuple[dt.time, float]] | None = None


@dataclass(frozen=True, slots=True)
class Rating(c.Command):
    """A resident's rating at the window, as a live `act` sends it (a node's `rate` event,
    naming the clerk the engine saw); the hub's core decides it as `commands.Rate`."""

    op: ClassVar[str] = "rate"
    ticket: str  # ticket id
    score: int  # 1 满意, 2 基本满意, 3 不满意
    window: int
    clerk: str | None


class Engine:
    def __init__(self, catalog: Catalog, layout: Layout, *, arrivals: ArrivalModel | None = None,
                 residents: ResidentModel | None = None, service: ServiceModel | None = None,
                 recorder: Recorder | None = None, clerk_seed: int = 0,
                 centre: Centre | None = None, act: Act | None = None,
                 admission: SimAdmission | None = None, ahead: SimAhead | None = None,
                 prereview: PreReviewModel | None = None) -> None:
        """`centre`: a Centre someone else mutates (a live hub's), read by the processes;
        `act`: how commands reach it. Without them the engine owns a Centre and applies
        commands to it directly (the fast path of `onewindow sim`). `admission`: admission
        control (hub/sim/admission.py) asked before each resident takes a ticket. `ahead`:
        bookings and remote tickets (hub/sim/bookings.py)."""
        self.catalog = catalog
        self.layout = layout
        self.arrivals = arrivals or ArrivalModel()
        self.population = Population(catalog, residents)
        self.residents = self.population.model
        self.service = service or ServiceModel()
        self.recorder = recorder
        self.act = act
        self.admission = admission
        self.ahead = ahead
        # Pre-review at the kiosk and return visits (prereview.py), when asked for and on
        # the engine's own core: without, a resident missing a material is served and
        # goes, as before (the days other studies and their tests were tuned on).
        self.prereview = prereview if act is None else None
        self.comebacks = ComeBacks(self.prereview) if self.prereview is not None else None
        if centre is not None and centre.config.windows != layout.config.windows:
            raise ValueError(f"the centre's windows are not the {layout.name} layout's")
        self.centre = centre or Centre(catalog, layout.config)
        self.numbers = sorted(self.centre.windows)
        self.clerks: dict[int, Clerk] = dict(zip(
            self.numbers, self.service.clerks(len(self.numbers), clerk_seed,
                                              list(layout.home_lines)), strict=True))
        self.operations = 0
        # Every item's "pool": the windows with the same skills that serve it first.
        self.skills = {n: w.skills for n, w in self.centre.windows.items()}
        pools: dict[frozenset[str], list[int]] = {}
        for n, s in self.skills.items():
            pools.setdefault(s, []).append(n)
        self.pools = list(pools.values())
        pool_skills = list(pools)
        self.pool_of: dict[str, int] = {}
        for item in catalog.items.values():
            best = None
            for i, s in enumerate(pool_skills):
                if item.id in s:
                    own = (item.specialised and
                           self.centre.windows[self.pools[i][0]].kind in item.window_kinds)
                    key = (not own, len(s))
                    if best is None or key < best[0]:
                        best = (key, i)
            if best is not None:
                self.pool_of[item.id] = best[1]

    # ---- one operation -------------------------------------------------------------------
    def apply(self, cmd: c.Command, now: float, dev: str | None = None) -> list[Any]:
        if self.admission is not None:
            self.admission.before(self.centre, cmd, now, self.operations)
        effects = self.centre.apply(cmd, now) if self.act is None else self.act(cmd, now, dev)
        self.operations += 1
        if self.admission is not None:
            self.admission.after(self.centre, cmd, effects, now, self.operations)
        if self.recorder is not None:
            self.recorder(now, dev, cmd.to_record())
        if self.ahead is not None:  # the notices this step calls for (hub/sim/bookings.py)
            self.ahead.after(now)
        return effects

    def record(self, now: float, dev: str | None, body: dict[str, Any]) -> None:
        """A journal record that is not a core command, as the app writes it."""
        if self.recorder is not None:
            self.recorder(now, dev, body)

    def rate(self, now: float, dev: str | None, ticket: str, score: int, window: int,
             clerk: str | None) -> None:
        """A resident's rating (ticket id), recorded or sent by the window's device."""
        if self.act is not None:
            self.act(Rating(ticket, score, window, clerk), now, dev)
            return
        # The core decides, as on the hub (one rating per service, from its window, in
        # time), and only what it accepts is journaled, in the record form the app writes.
        rate = c.Rate(window, ticket, score, scale=3)  # the residents' three-level draw
        try:
            self.centre.apply(rate, now)
        except Rejected:
            return
        self.record(now, dev, {**rate.to_record(), "clerk": clerk})

    # ---- a day ---------------------------------------------------------------------------
    def visits_for(self, d: dt.date, weather: Weather, seed: int, scale: float = 1.0
                   ) -> list[Visit]:
        """The day's residents: a function of (seed, date, weather) only, not the layout."""
        info = day_info(d)
        rng = random.Random(f"visits:{seed}:{d.isoformat()}")
        times = self.arrivals.arrival_times(info, weather, rng, scale)
        return self.population.visits(times, rng, midnight(d))

    def run_day(self, d: dt.date, weather: Weather | None = None, seed: int = 0, *,
                scale: float = 1.0, visits: list[Visit] | None = None,
                options: DayOptions | None = None) -> DayResult:
        day = self.start_day(d, weather, seed, scale=scale, visits=visits, options=options)
        day.env.run()
        return day.result()

    def start_day(self, d: dt.date, weather: Weather | None = None, seed: int = 0, *,
                  scale: float = 1.0, visits: list[Visit] | None = None,
                  options: DayOptions | None = None) -> Day:
        """The day's processes, ready in `day.env`: run or step it, then `day.result()`."""
        weather = weather or Weather()
        if visits is None:
            visits = self.visits_for(d, weather, seed, scale)
        if self.comebacks is not None:  # residents sent away earlier come back today
            back = self.comebacks.take(d, len(visits) + 1)
            if back:
                visits = sorted([*visits, *back], key=lambda v: v.at)
        return Day(self, d, weather, visits, seed, options or DayOptions())


class Day:
    """One day's processes; `tickets` keeps the day's Ticket objects after the core rolls."""

    def __init__(self, eng: Engine, d: dt.date, weather: Weather, visits: list[Visit],
                 seed: int, opts: DayOptions) -> None:
        self.eng, self.d, self.weather, self.visits, self.opts = eng, d, weather, visits, opts
        self.centre = eng.centre
        self.svc = eng.service
        self.items = eng.catalog.items
        if opts.start_at is not None:
            start = at_local(d, opts.start_at)
        else:
            start = min([at_local(d, dt.time(8, 0))] + [v.at for v in visits[:1]])
        self.env = simpy.Environment(initial_time=start)
        self.open_at = at_local(d, opts.reopen_at or opts.open_at)
        self.close_at = at_local(d, opts.close_at)
        self.hard_stop = at_local(d, opts.hard_stop)
        self.by_ticket: dict[str, Visit] = {}
        self.adopted: list[Visit] = []  # tickets others took (see adopt)
        self.tickets: dict[str, Ticket] = {}
        self.idle: dict[int, simpy.Event] = {}
        self.arrivals_done = False
        self.rng = {n: random.Random(f"clerk-day:{seed}:{d.isoformat()}:{n}")
                    for n in eng.numbers}
        self.monitor = QueueMonitor(eng.pools, eng.pool_of, start,
                                    {i.id: i.line for i in eng.catalog.items.values()})
        self.opened = self.open_at
        self.closed = self.close_at
        self.ops0 = eng.operations
        self.ops = 0
        order = opts.staff_order or tuple(eng.numbers)
        self.rank = {n: i for i, n in enumerate(order)}
        self.ahead: dict[str, int] = {}  # bookings and remote tickets (hub/sim/bookings.py)
        self.ahead_procs: list[Any] = []
        self.ahead_ready = None if eng.ahead is None else eng.ahead.prepare(self)
        self.env.process(self.arrivals())
        for n in eng.numbers:
            self.env.process(self.clerk(n))

    # ---- a staffing schedule ----
    def _slot(self, t: float) -> int:
        return max(0, int((t - self.open_at) // SLOT_SECONDS))

    def staffed_at(self, n: int, k: int) -> bool:
        sched = self.opts.schedule
        if not sched:
            return True
        return self.rank.get(n, len(self.rank)) < sched[min(k, len(sched) - 1)]

    def next_staffed(self, n: int, t: float) -> float | None:
        """When window n is staffed again after time t (before close_at), or None."""
        k = self._slot(t) + 1
        while self.open_at + k * SLOT_SECONDS < self.close_at:
            if self.staffed_at(n, k):
                return self.open_at + k * SLOT_SECONDS
            k += 1
        return None

    def result(self) -> DayResult:
        """The day as it went (visits still unserved when the run stopped: "expired")."""
        self.closed = max(self.close_at, self.monitor.last_close or self.close_at)
        visits = self.visits + self.adopted
        for v in visits:
            if not v.outcome:
                v.outcome = "expired"
        self.ops = self.eng.operations - self.ops0
        eng = self.eng
        return DayResult(self.d, day_info(self.d), self.weather, eng.layout.name,
                         len(eng.numbers), visits, self.tickets, self.monitor,
                         self.opened, self.closed, self.ops,
                         extra={"close_at": self.close_at, "ahead": dict(self.ahead)})

    def apply(self, cmd: c.Command, dev: str | None) -> list[Any]:
        return self.eng.apply(cmd, self.env.now, dev)

    # ---- residents ----
    def arrivals(self):  # type: ignore[no-untyped-def]
        env = self.env
        if self.ahead_ready is not None:  # the day's bookings are made first
            yield self.ahead_ready
        for v in self.visits:
            if v.ahead:  # booked or remote: hub/sim/bookings.py brings them
                continue
            if v.at > env.now:
                yield env.timeout(v.at - env.now)
            if self.eng.admission is not None:  # told before taking: day full / warned
                gone = self.eng.admission.judge(self.centre, v, env.now, self.eng.operations,
                                                (self.open_at, self.close_at))
                if gone is not None:
                    v.outcome = gone
                    continue
            checked: dict[str, Any] | None = None
            model, back = self.eng.prereview, self.eng.comebacks
            if model is not None and back is not None and v.source == KIOSK:  # 预审
                checked = self.pre_review(v, model, back)
                if v.outcome == KIOSK_LEFT:
                    continue
            cmd = c.TakeTicket(v.pressed, priority=v.priority, resident=v.resident,
                               appointment_at=v.appointment_at,
                               extra_items=(v.extra,) if v.extra else (), source=v.source,
                               review=checked)
            try:
                effects = self.apply(cmd, v.source)
            except Rejected:
                v.outcome = "rejected"
                continue
            tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
            v.ticket = tid
            self.by_ticket[tid] = v
            t = self.centre.tickets[tid]
            self.tickets[tid] = t
            self.monitor.add(env.now, t.item)
            self.wake(t.item)
        if self.ahead_procs:
            yield env.all_of(self.ahead_procs)
        self.arrivals_done = True

    def pre_review(self, v: Visit, model: PreReviewModel, back: ComeBacks
                   ) -> dict[str, Any] | None:
        """The kiosk's review of this resident's materials (prereview.py): None when they
        left to fetch a missing one (journaled, outcome KIOSK_LEFT), else the take's."""
        items = [self.items[i] for i in dict.fromkeys([v.pressed, *([v.extra] if v.extra
                                                                    else [])])]
        keys = missing_keys(self.items[v.pressed], v) if v.missing else ()
        seen = at_kiosk(model, v) if keys else "missed"
        if seen == "left":
            ticked = review(items, keys, False)["ticked"]
            # a kiosk page's action: journaled as the hub's own (no device), as on a hub
            self.apply(PreReview(tuple(i.id for i in items), tuple(ticked), keys,
                                 False, v.source), None)
            v.outcome = KIOSK_LEFT
            back.send_away(v, self.d, self.centre.add_workdays)
            return None
        return review(items, keys if seen == "queued_anyway" else (),
                      seen == "queued_anyway")

    def adopt(self, t: Ticket) -> Visit:
        """A ticket the engine did not issue: on a live hub, a person took it (the demo's
        kiosk page). Served as a median resident who comes when called and does not rate.
        Present from no later than now: the hub's clock may run a little ahead of the
        engine's (a live hub stamps the take on its own clock), and a ticket issued "after"
        the engine's now would be taken for a remote one whose holder is not there yet and
        be skipped as a no-show."""
        v = Visit(len(self.visits) + len(self.adopted) + 1, min(t.issued_at, self.env.now),
                  t.item, t.item,
                  t.extra_items[0] if t.extra_items else None, t.priority.value,
                  t.appointment_at, 0, False, (0.0, 0.0, 0.0), 1.0, t.source or "",
                  t.resident, ticket=t.id)
        self.adopted.append(v)  # not in `visits`: the arrivals process walks that list
        self.by_ticket[t.id] = v
        self.tickets[t.id] = t
        self.monitor.add(self.env.now, t.item)
        return v

    def wake(self, item: str | None) -> None:
        if not self.idle:
            return
        skills = self.eng.skills
        for n in list(self.idle):
            if item is None or item in skills[n]:
                self.idle.pop(n).succeed()
                if item is not None:
                    break  # one free window is enough for one new ticket

    # ---- clerks ----
    def clerk(self, n: int):  # type: ignore[no-untyped-def]
        env, rng, svc, eng = self.env, self.rng[n], self.svc, self.eng
        dev = f"kp-{n}"
        clerk = eng.clerks[n]
        yield env.timeout(max(0.0, self.open_at - env.now) + rng.uniform(0, 60))
        self.apply(c.OpenWindow(n, clerk.name), dev)
        self.monitor.window(env.now, n, +1)
        lunch_at = None
        if self.opts.lunches is not None:  # the day's own breaks (a scenario's)
            own = self.opts.lunches.get(n) if self.opts.lunch else None
            if own is not None:
                lunch_at = at_local(self.d, own[0])
            lunch_len = (own[1] if own is not None else 0.0) * 60
            if lunch_at is not None and lunch_at < env.now:
                lunch_at = None
        else:
            if self.opts.lunch and len(eng.numbers) >= 2:
                lunch_at = at_local(self.d, LUNCH[(n + 1) % 2]) + rng.uniform(0, 600)
                if lunch_at < env.now:
                    lunch_at = None
            lunch_len = LUNCH_MINUTES * 60 * math.exp(rng.gauss(0, 0.15))
        while True:
            if env.now >= self.hard_stop:
                self.close(n, dev)
                return
            if (self.opts.schedule and env.now < self.close_at
                    and not self.staffed_at(n, self._slot(env.now))):
                back = self.next_staffed(n, env.now)
                if back is None:
                    self.close(n, dev)
                    return
                self.apply(c.Pause(n), dev)
                self.monitor.window(env.now, n, -1)
                yield env.timeout(back - env.now)
                self.apply(c.Resume(n), dev)
                self.monitor.window(env.now, n, +1)
                if lunch_at is not None and lunch_at < env.now:
                    lunch_at = None  # off duty over lunch
                continue
            if lunch_at is not None and env.now >= lunch_at:
                lunch_at = None
                yield from self.pause(n, dev, lunch_len)
                continue
            try:
                self.apply(c.CallNext(n), dev)
            except Rejected:
                if env.now >= self.close_at and self.arrivals_done and not self.busy():
                    self.close(n, dev)
                    return
                ev = env.event()
                self.idle[n] = ev
                deadline = self.close_at if env.now < self.close_at else self.hard_stop
                if lunch_at is not None:
                    deadline = min(deadline or lunch_at, lunch_at)
                if self.opts.schedule and env.now < self.close_at:  # the next shift change
                    deadline = min(deadline, self.open_at + (self._slot(env.now) + 1)
                                   * SLOT_SECONDS)
                if deadline is not None and deadline > env.now:
                    yield ev | env.timeout(deadline - env.now)
                else:
                    yield ev
                self.idle.pop(n, None)
                continue
            w = self.centre.windows[n]
            t = self.centre.tickets[w.ticket]  # type: ignore[index]
            try:
                v = self.by_ticket[t.id]
            except KeyError:
                v = self.adopt(t)
            self.monitor.remove(env.now, t.item)
            v.calls += 1
            if v.calls <= v.absent or env.now < v.at:  # not there (yet: a remote ticket)
                yield env.timeout(svc.absent_wait)
                self.apply(c.Recall(n), dev)
                yield env.timeout(svc.absent_wait)
                self.apply(c.Skip(n), dev)
                if t.state.value == "waiting":
                    self.monitor.add(env.now, t.item)
                    self.wake(t.item)
                else:
                    v.outcome = "no_show"
                continue
            v.windows.append(n)
            yield env.timeout(svc.walk(v.z[2]))
            self.apply(c.Start(n), dev)
            yield from self.serve(n, dev, t, v, clerk)
            if env.now >= self.close_at:
                self.wake(None)
            yield env.timeout(svc.wrap_up)
            if self.opts.breaks and rng.random() < BREAK_SHARE:
                yield from self.pause(n, dev, rng.uniform(2, 6) * 60)

    def close(self, n: int, dev: str) -> None:
        """Window n closes for the day; a free colleague may take what it leaves waiting."""
        self.apply(c.CloseWindow(n), dev)
        self.monitor.window(self.env.now, n, -1)
        self.wake(None)

    def pause(self, n: int, dev: str, seconds: float):  # type: ignore[no-untyped-def]
        self.apply(c.Pause(n), dev)
        self.monitor.away(self.env.now, +1)
        yield self.env.timeout(seconds)
        self.apply(c.Resume(n), dev)
        self.monitor.away(self.env.now, -1)

    def busy(self) -> bool:
        return any(w.ticket is not None for w in self.centre.windows.values())

    def serve(self, n: int, dev: str, t: Ticket, v: Visit, clerk: Clerk):  # type: ignore[no-untyped-def]
        env, svc, skills = self.env, self.svc, self.eng.skills[n]
        needs = [v.item] + ([v.extra] if v.extra else [])
        pending = [i for i in needs if i not in v.served]
        if v.missing:
            yield env.timeout(svc.missing_minutes * 60 * math.exp(0.3 * v.z[1]))
            keys = missing_keys(self.items[t.item], v)
            back = self.eng.comebacks
            if back is not None and keys:  # 退回补材料: back another day
                self.complete(n, dev, t, v, "incomplete",
                              ReturnForMaterials(n, keys, self.centre.windows[n].clerk))
                back.send_away(v, self.d, self.centre.add_workdays)
            else:  # without pre-review (or a live hub's keypad): the service just ends
                self.complete(n, dev, t, v, "incomplete")
            return
        seconds = 0.0
        for k, item in enumerate(pending):
            if item not in skills:
                yield env.timeout(seconds + TRANSFER_SECONDS)
                try:
                    self.apply(c.Transfer(n, to_item=item, note="sim"), dev)
                except Rejected:
                    self.complete(n, dev, t, v, "incomplete")
                    return
                self.monitor.add(env.now, t.item)
                self.wake(t.item)
                return
            z = v.z[0] if item == v.item else v.z[1]
            seconds += svc.seconds(self.items[item], z, clerk) * (1.0 if k == 0 else 0.8)
            v.served[item] = n
        yield env.timeout(seconds)
        self.complete(n, dev, t, v, "done")

    def complete(self, n: int, dev: str, t: Ticket, v: Visit, outcome: str,
                 cmd: c.Command | None = None) -> None:
        # `cmd`: the console's return for materials, journaled as the hub's own (no device)
        self.apply(cmd, None) if cmd is not None else self.apply(c.Complete(n), dev)
        v.outcome = outcome
        rm = self.eng.residents
        if v.u < rm.rating:
            x = v.u / rm.rating
            acc = 0.0
            score = rm.ratings[-1][0]
            for s, p in rm.ratings:
                acc += p
                if x < acc:
                    score = s
                    break
            if outcome == "incomplete" and score == 1:
                score = 2
            self.eng.rate(self.env.now, dev, t.id, score, n, self.centre.windows[n].clerk)

