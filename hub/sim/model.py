"""The arrival model: who comes, when, for what, and with which known effects.

Residents per half-hour are Poisson with mean

    base_daily x shape[slot] x weekday[dow] x holiday effects x rain x temperature

(and, if `day_sigma` > 0, a lognormal day factor shared by the day's slots). Every
multiplier is a plain, documented parameter of `ArrivalModel`, so a forecaster fitted on
synthetic history can be checked against the truth. The calendar is China's: statutory
holidays are closed days, weekend working days (调休) are open, both from the maintained
`chinese-calendar` package (years it does not know fall back to Monday-Friday).

The resident mix (items, a second item, priority, appointments, no-shows, missing
materials, walking and rating) is drawn here too, independently of the window layout, so
policies compared on the same seed see the very same people (common random numbers).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field, replace

from ..core.catalog import Catalog, Item

CST = dt.timezone(dt.timedelta(hours=8), "CST")
SLOT_MINUTES = 30
FIRST_SLOT = dt.time(8, 30)  # doors open; windows open at 09:00
# Relative arrivals per half-hour from 08:30 to 16:00 (the ticket machines stop at 16:30):
# a crowd at the door, the mid-morning peak, a lunch lull, a smaller afternoon peak.
DEFAULT_SHAPE = (0.045, 0.080, 0.095, 0.100, 0.095, 0.075, 0.050, 0.030,
                 0.030, 0.045, 0.065, 0.070, 0.070, 0.060, 0.050, 0.040)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# How many residents come for each department line, relative to one another.
LINE_POPULARITY = {
    "social": 3.2, "medical": 3.0, "household": 1.6, "general": 1.5, "civil": 1.2,
    "employment": 1.2, "elderly": 1.1, "health": 0.8, "family": 0.8, "housing": 0.6,
    "disability": 0.6, "veterans": 0.4,
}
PRIORITY_SHARE = {"elderly": 0.4, "disability": 0.4}


# ---- the calendar ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Weather:
    rain: bool = False
    temp_c: float = 20.0


@dataclass(frozen=True, slots=True)
class DayInfo:
    date: dt.date
    open: bool  # a working day (the centre opens)
    holiday: str = ""  # the statutory holiday's name on a closed holiday
    adjusted_workday: bool = False  # a weekend working day (调休)
    post_holiday: bool = False  # first working day after a closure of 3 days or more


def _cc_workday(d: dt.date) -> tuple[bool, str]:
    try:
        import chinese_calendar as cc

        holiday, name = cc.get_holiday_detail(d)
        return (True, "") if not holiday else (False, str(name or ""))
    except (NotImplementedError, ImportError):  # a year the package does not cover yet
        return d.weekday() < 5, ""


def day_info(d: dt.date) -> DayInfo:
    open_, name = _cc_workday(d)
    if not open_:
        return DayInfo(d, False, holiday=name)
    closed = 0
    p = d - dt.timedelta(days=1)
    while closed < 10 and not _cc_workday(p)[0]:
        closed += 1
        p -= dt.timedelta(days=1)
    return DayInfo(d, True, adjusted_workday=d.weekday() >= 5, post_holiday=closed >= 3)


def calendar_sets(start: dt.date, end: dt.date) -> tuple[frozenset[str], frozenset[str]]:
    """(holidays on weekdays, weekend workdays) in [start, end]: CentreConfig's calendar."""
    hol, work = set(), set()
    d = start
    while d <= end:
        info = day_info(d)
        if d.weekday() < 5 and not info.open:
            hol.add(d.isoformat())
        if info.adjusted_workday:
            work.add(d.isoformat())
        d += dt.timedelta(days=1)
    return frozenset(hol), frozenset(work)


# ---- arrivals ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ArrivalModel:
    """Known, multiplicative effects on the expected arrivals (the truth forecasts recover)."""

    base_daily: float = 400.0  # expected visits on an ordinary dry 20 °C Wednesday
    shape: tuple[float, ...] = DEFAULT_SHAPE  # per half-hour from 08:30, normalised
    weekday: tuple[float, ...] = (1.25, 1.05, 1.0, 0.95, 0.9, 1.0, 1.0)  # Mon..Sun if open
    adjusted_workday: float = 1.10  # a weekend working day (调休) on top of its weekday
    post_holiday: float = 1.30  # first working day after 3+ closed days
    rain: float = 0.80
    heat_per_deg: float = 0.02  # per °C above heat_from
    heat_from: float = 30.0
    cold_per_deg: float = 0.015  # per °C below cold_from
    cold_from: float = 5.0
    day_sigma: float = 0.0  # lognormal day-level noise (0: counts are exactly Poisson)

    def slots(self) -> list[dt.time]:
        start = dt.datetime.combine(dt.date(2000, 1, 1), FIRST_SLOT)
        return [(start + dt.timedelta(minutes=SLOT_MINUTES * i)).time()
                for i in range(len(self.shape))]

    def end(self) -> dt.time:
        """When arrivals stop: the end of the last slot (the ticket machines stop issuing)."""
        start = dt.datetime.combine(dt.date(2000, 1, 1), FIRST_SLOT)
        return (start + dt.timedelta(minutes=SLOT_MINUTES * len(self.shape))).time()

    def effects(self, info: DayInfo, weather: Weather) -> dict[str, float]:
        """Each multiplier on the day's expected arrivals, by name (closed days: 0)."""
        if not info.open:
            return {"closed": 0.0}
        t = weather.temp_c
        heat = max(0.0, 1.0 - self.heat_per_deg * max(0.0, t - self.heat_from))
        cold = max(0.0, 1.0 - self.cold_per_deg * max(0.0, self.cold_from - t))
        return {
            "weekday": self.weekday[info.date.weekday()],
            "adjusted_workday": self.adjusted_workday if info.adjusted_workday else 1.0,
            "post_holiday": self.post_holiday if info.post_holiday else 1.0,
            "rain": self.rain if weather.rain else 1.0,
            "temperature": heat * cold,
        }

    def day_mean(self, info: DayInfo, weather: Weather) -> float:
        return self.base_daily * math.prod(self.effects(info, weather).values())

    def expected(self, info: DayInfo, weather: Weather, scale: float = 1.0) -> list[float]:
        """Expected arrivals per half-hour slot."""
        total = sum(self.shape)
        mean = self.day_mean(info, weather) * scale
        return [mean * s / total for s in self.shape]

    def arrival_times(self, info: DayInfo, weather: Weather, rng: random.Random,
                      scale: float = 1.0) -> list[float]:
        """Seconds after 00:00 local of each arrival, sorted (Poisson per slot)."""
        means = self.expected(info, weather, scale)
        if self.day_sigma > 0 and info.open:
            f = math.exp(rng.gauss(-self.day_sigma ** 2 / 2, self.day_sigma))
            means = [m * f for m in means]
        first = FIRST_SLOT.hour * 3600 + FIRST_SLOT.minute * 60
        out: list[float] = []
        for i, m in enumerate(means):
            t0 = first + i * SLOT_MINUTES * 60
            out.extend(t0 + rng.random() * SLOT_MINUTES * 60 for _ in range(poisson(rng, m)))
        out.sort()
        return out


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count: exact (a product of uniforms) up to a mean of 60, the normal
    approximation above. Exact that far because a half-hour's arrivals reach 30-60 at a busy
    centre and the normal curve draws too few of their busiest half-hours (P(X >= mean + 2 sd)
    0.024 instead of 0.028 at 40). The simulator's arrivals and the staffing plan's check
    (forecast/staffing.py) both draw here."""
    if mean <= 0:
        return 0
    if mean > 60:  # normal approximation with continuity correction: plenty for counts
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# ---- who comes -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ResidentModel:
    second_item: float = 0.15  # also needs a related item (often another line's)
    wrong_button: float = 0.05  # pressed a related item's button instead of the one needed
    appointment: float = 0.04  # booked a slot online (arrives within ±10 min of it)
    priority_default: float = 0.08
    no_show: float = 0.05  # not there when called (过号)
    no_show_returns: float = 0.5  # ... of whom half come back and are called again
    missing_per_material: float = 0.025  # chance per required material of not bringing it
    missing_cap: float = 0.25
    rating: float = 0.55
    ratings: tuple[tuple[int, float], ...] = ((1, 0.9), (2, 0.08), (3, 0.02))
    card_token: float = 0.15  # swiped an ID card at the kiosk (one ticket per item)
    kiosk: float = 0.35
    popularity_exponent: float = 0.7  # quick items are asked for more often than long ones
    line_popularity: dict[str, float] = field(default_factory=lambda: dict(LINE_POPULARITY))

    def popularity(self, item: Item) -> float:
        return self.line_popularity.get(item.line, 1.0) / item.minutes ** self.popularity_exponent

    def missing_chance(self, item: Item) -> float:
        n = sum(1 for m in item.materials if m.required)
        return min(self.missing_cap, self.missing_per_material * n)


@dataclass(slots=True)
class Visit:
    """One resident's trip, drawn before any policy sees it."""

    n: int
    at: float  # epoch seconds of arrival
    item: str  # what the resident needs
    pressed: str  # the button pressed (== item unless the wrong button)
    extra: str | None  # a second item needed on the same trip
    priority: str  # normal | priority | appointment
    appointment_at: float | None
    absent: int  # calls missed: 0, 1 (back after the requeue) or 99 (gone)
    missing: bool  # came without a required material: must come back
    z: tuple[float, float, float]  # standard normal service draws (item, extra, walk)
    u: float  # uniform draw for ratings and the like
    source: str
    resident: str | None
    # filled in by the engine
    ticket: str | None = None
    calls: int = 0  # times called (a missed call included)
    windows: list[int] = field(default_factory=list)  # windows it came to, in order
    served: dict[str, int] = field(default_factory=dict)  # item -> window that served it
    outcome: str = ""  # done | incomplete | no_show | expired | rejected
    # bookings and remote tickets (hub/sim/bookings.py): "booked" | "remote" | "" (walk-in);
    # a booked visit's arrival (on_time | early | late | no_show), booking and slot start;
    # a remote visit's take time (`at` is when they come to the centre)
    ahead: str = ""
    arrival: str = ""
    booking: str | None = None
    slot: float | None = None
    taken_at: float = 0.0
    # return visits (hub/sim/prereview.py): this resident's trip for the item (1: first),
    # and whether an earlier trip ended with the window returning them for materials
    trip: int = 1
    after_return: bool = False

    def fresh(self) -> Visit:
        """The same resident before any engine touched it (to replay under another policy)."""
        return replace(self, ticket=None, calls=0, windows=[], served={}, outcome="", ahead="",
                       arrival="", booking=None, slot=None, taken_at=0.0)


class Population:
    """Draws a day's visits from the catalog and the models (independent of the layout)."""

    def __init__(self, catalog: Catalog, residents: ResidentModel | None = None) -> None:
        self.catalog = catalog
        self.model = residents or ResidentModel()
        self.items = list(catalog.items.values())
        w = [self.model.popularity(i) for i in self.items]
        acc, self.cum = 0.0, []
        for x in w:
            acc += x
            self.cum.append(acc)
        self.total = acc

    def pick(self, rng: random.Random) -> Item:
        import bisect

        return self.items[bisect.bisect(self.cum, rng.random() * self.total)]

    def visits(self, times: list[float], rng: random.Random, midnight: float) -> list[Visit]:
        m, cat = self.model, self.catalog
        out = []
        for n, sod in enumerate(times, start=1):
            item = self.pick(rng)
            extra = None
            if rng.random() < m.second_item:
                rel = [r for r in item.related if r in cat.items]
                extra = rng.choice(rel) if rel else self.pick(rng).id
                if extra == item.id:
                    extra = None
            pressed = item.id
            if rng.random() < m.wrong_button and item.related:
                pressed = rng.choice(item.related)
            at = midnight + sod
            r = rng.random()
            appointment_at = None
            if r < m.appointment:
                priority = "appointment"
                appointment_at = at + rng.uniform(-10, 10) * 60
            elif r < m.appointment + PRIORITY_SHARE.get(item.line, m.priority_default):
                priority = "priority"
            else:
                priority = "normal"
            a = rng.random()
            gone = m.no_show * (1 - m.no_show_returns)
            absent = 99 if a < gone else 1 if a < m.no_show else 0
            missing = rng.random() < m.missing_chance(item)
            at_kiosk = rng.random() < m.kiosk
            source = "kiosk-1" if at_kiosk else ("box-1" if rng.random() < 0.5 else "box-2")
            token = (f"{rng.getrandbits(64):016x}"
                     if at_kiosk and rng.random() < m.card_token / m.kiosk else None)
            z = (rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1))
            out.append(Visit(n, at, item.id, pressed, extra, priority, appointment_at, absent,
                             missing, z, rng.random(), source, token))
        return out


def midnight(d: dt.date) -> float:
    return dt.datetime.combine(d, dt.time(0), CST).timestamp()


def at_local(d: dt.date, t: dt.time) -> float:
    return dt.datetime.combine(d, t, CST).timestamp()


def local_hm(ts: float | None) -> str:
    """HH:MM in China time of epoch seconds; "—" for a time that never came."""
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, CST).strftime("%H:%M")
