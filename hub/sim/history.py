"""Synthetic history: months of simulated days in a hub journal, and arrival counts as CSV.

The journal gets exactly the records real operation writes (hub/store/journal.py, schema
1): each core command as `Command.to_record()` with the device that would have sent it
(`box-1`, `box-2`, `kiosk-1` for tickets, `kp-N` for window N) and that device's running
`seq`, plus the app-level `rate` records; so `HubApp.replay` (what `runner.build_app` does
on start) rebuilds the same state, and forecasts and the staff report can be developed on
it. A `meta` row `sim` states how the history was made (layout, windows, seed, models).

Arrival counts (the format the forecaster reads; any source may write it):

* daily CSV — one row per calendar day, closed days included with count 0:
  ``date,count,open,weekday,holiday,adjusted_workday,post_holiday,rain,temp_c``
* half-hourly CSV — one row per half-hour slot of every open day:
  ``date,slot,count,open,weekday,holiday,adjusted_workday,post_holiday,rain,temp_c``

``date`` is ISO (2026-11-23), ``slot`` the local start time HH:MM (08:30 ... 16:00),
``count`` residents who took a ticket, ``open``/``adjusted_workday``/``post_holiday``/
``rain`` are 0 or 1, ``weekday`` 0 = Monday, ``holiday`` the holiday's name or empty,
``temp_c`` the day's temperature. Rows are in time order; UTF-8, a header line.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from ..core.catalog import Catalog
from ..core.centre import Centre
from ..core.centre_config import CentreConfig
from ..store.journal import Journal, Record, meta
from .engine import DayOptions, Engine
from .model import (
    FIRST_SLOT,
    SLOT_MINUTES,
    ArrivalModel,
    DayInfo,
    ResidentModel,
    Weather,
    calendar_sets,
    day_info,
    midnight,
)
from .policies import layout as make_layout
from .prereview import PreReviewModel

DAILY_FIELDS = ("date", "count", "open", "weekday", "holiday", "adjusted_workday",
                "post_holiday", "rain", "temp_c")
SLOT_FIELDS = ("date", "slot", "count", "open", "weekday", "holiday", "adjusted_workday",
               "post_holiday", "rain", "temp_c")


def synthetic_weather(d: dt.date, seed: int = 0) -> Weather:
    """A Shanghai-like year: 5 °C in January, 30 °C in July, rain on a third of days
    (more in the plum-rain season of June)."""
    rng = random.Random(f"weather:{seed}:{d.isoformat()}")
    doy = d.timetuple().tm_yday
    temp = 17.5 + 12.5 * math.sin(2 * math.pi * (doy - 115) / 365) + rng.gauss(0, 2.5)
    p_rain = 0.30 + 0.12 * math.sin(2 * math.pi * (doy - 80) / 365)
    return Weather(rain=rng.random() < p_rain, temp_c=round(temp, 1))


@dataclass(slots=True)
class DayCounts:
    info: DayInfo
    weather: Weather
    slots: list[int]  # residents per half-hour slot from 08:30

    @property
    def count(self) -> int:
        return sum(self.slots)

    def flags(self) -> dict[str, Any]:
        i, w = self.info, self.weather
        return {"open": int(i.open), "weekday": i.date.weekday(), "holiday": i.holiday,
                "adjusted_workday": int(i.adjusted_workday),
                "post_holiday": int(i.post_holiday), "rain": int(w.rain), "temp_c": w.temp_c}


@dataclass(slots=True)
class History:
    days: list[DayCounts]
    centre: Centre  # the simulated centre after the last day (what a replay must rebuild)
    config: CentreConfig
    records: int


class JournalRecorder:
    """Turns the engine's operations into journal records, as HubApp would."""

    def __init__(self, start_pos: int = 0) -> None:
        self.pos = start_pos
        self.seq: dict[str, int] = {}
        self.pending: list[Record] = []

    def __call__(self, now: float, dev: str | None, body: dict[str, Any]) -> None:
        seq = None
        if dev is not None:
            seq = self.seq.get(dev, 0) + 1
            self.seq[dev] = seq
        self.pos += 1
        self.pending.append(Record(self.pos, now, dev, seq, body))

    def flush(self, journal: Journal) -> int:
        n = len(self.pending)
        journal.append(self.pending)
        self.pending = []
        return n


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    return dt.date(d.year + y, m + 1, 1) if d.day == 1 else dt.date(d.year + y, m + 1,
                                                                    min(d.day, 28))


def write_history(catalog: Catalog, url: str, start: dt.date, end: dt.date, *,
                  layout: str = "mixed", windows: int = 12, seed: int = 0,
                  arrivals: ArrivalModel | None = None, centre_id: str = "sim",
                  weather: Callable[[dt.date], Weather] | None = None,
                  progress: Callable[[dt.date, int], None] | None = None,
                  cases: bool = True, prereview: PreReviewModel | None = None,
                  residents: ResidentModel | None = None) -> History:
    """Simulate every day in [start, end) into the (empty) journal at `url`.

    `cases`: the back office's word on promised items too (CaseFates: closed when due, a
    few returned, corrected or reopened), journaled at 07:30 of the next open days.
    `prereview`: the kiosk's pre-review and returns for materials, with return visits
    (hub/sim/prereview.py); None: residents missing a material are served as before."""
    journal = Journal(url)
    try:
        if journal.last_pos():
            raise ValueError(f"{url} already holds a journal; history goes into an empty one")
        hol, work = calendar_sets(start - dt.timedelta(days=7), end + dt.timedelta(days=400))
        lay = make_layout(layout, catalog, windows, centre_id=centre_id, holidays=hol,
                          workdays=work)
        rec = JournalRecorder()
        eng = Engine(catalog, lay, arrivals=arrivals, recorder=rec, clerk_seed=seed,
                     prereview=prereview, residents=residents)
        weather = weather or (lambda d: synthetic_weather(d, seed))
        with journal.engine.begin() as conn:
            conn.execute(insert(meta).values(key="sim", value=json.dumps({
                "layout": layout, "windows": windows, "seed": seed, "centre": centre_id,
                "start": start.isoformat(), "end": end.isoformat(),
                "arrivals": asdict(eng.arrivals)}, ensure_ascii=False)))
        out = []
        fates = CaseFates(seed) if cases else None
        d = start
        while d < end:
            info, w = day_info(d), weather(d)
            slots = [0] * len(eng.arrivals.shape)
            if info.open:
                if fates is not None:
                    fates.apply_due(eng, d)
                r = eng.run_day(d, w, seed, options=DayOptions())
                if fates is not None:
                    fates.schedule(eng, r.tickets, d)
                slots = slot_counts(r.visits, d, len(slots))
                n = rec.flush(journal)
                if progress:
                    progress(d, n)
            out.append(DayCounts(info, w, slots))
            d += dt.timedelta(days=1)
        return History(out, eng.centre, lay.config, rec.pos)
    finally:
        journal.close()


class CaseFates:
    """What the back office does with the promised items (承诺件) a day accepted.

    Every case is closed (办结) on its due day. A few go wrong first, more often for the
    quicker clerks (speed < 1: haste costs care): returned to the window the next workday
    (退件) and resubmitted the day after, or corrected (补正) the next workday; and a few
    closed cases are reopened two workdays later and closed again the day after. By then
    the case has left the core's memory (archived at the day's close after its closing):
    the reopening carries the case's fields (`CaseUpdate.restore`), as the hub's app reads
    them back from its history tables. Each is a `CaseUpdate` journaled as the hub's own
    operation (device None, as `HubApp.operate` writes staff actions) at 07:30 of the first
    open day on or after its date, in order, so the journal replays to the same case states.
    """

    returned = 0.03  # share of cases returned, for a clerk of speed 1.0
    corrected = 0.02
    reopened = 0.008
    haste = 4.0  # the shares scale with speed ** -haste

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pending: list[tuple[str, int, int, str, str]] = []  # date, case no, step, id, act
        self.reopening: dict[str, Any] = {}  # case id -> the Case, for its restore
        self.n = 0

    def schedule(self, eng: Engine, tickets: dict[str, Any], d: dt.date) -> None:
        centre = eng.centre
        for case in list(centre.cases.values()):
            if centre.local_date(case.opened_at) != d or case.state != "open":
                continue  # not accepted today: decided already
            self.n += 1
            rng = random.Random(f"case:{self.seed}:{case.id}")
            speed = 1.0
            t = tickets.get(case.ticket)
            window = next((h[2] for h in reversed(t.history) if h[1] == "done"), None) \
                if t is not None else None
            if window in eng.clerks:
                speed = eng.clerks[window].speed
            f = speed ** -self.haste
            acc = centre.local_date(case.opened_at)
            due = dt.date.fromisoformat(case.due_day)
            steps: list[tuple[dt.date, str]] = []
            u = rng.random()
            if u < self.returned * f:
                back = centre.add_workdays(acc, 1)
                again = centre.add_workdays(back, 1)
                steps += [(back, "returned"), (again, "resubmitted")]
                due = max(due, centre.add_workdays(again, 1))
            elif u < (self.returned + self.corrected) * f:
                fix = centre.add_workdays(acc, 1)
                steps.append((fix, "corrected"))
                due = max(due, fix)
            steps.append((due, "closed"))
            if rng.random() < self.reopened * f:
                re = centre.add_workdays(due, 2)
                steps += [(re, "reopened"), (centre.add_workdays(re, 1), "closed")]
                self.reopening[case.id] = case
            for k, (day, action) in enumerate(steps):
                self.pending.append((day.isoformat(), self.n, k, case.id, action))
        self.pending.sort()

    def apply_due(self, eng: Engine, d: dt.date) -> int:
        from ..core.commands import CaseUpdate
        from ..core.rejected import Rejected

        iso = d.isoformat()
        k = 0
        while k < len(self.pending) and self.pending[k][0] <= iso:
            k += 1
        due, self.pending = self.pending[:k], self.pending[k:]
        due.sort(key=lambda e: (e[1], e[2]))  # one case's steps in order
        now = midnight(d) + 7.5 * 3600
        n = 0
        for _day, _no, _step, case, action in due:
            restore = None
            kept = self.reopening.pop(case, None) if action == "reopened" else None
            if kept is not None and case not in eng.centre.cases:
                restore = kept.to_dict()  # archived: the state it left memory in
            reason = ""
            materials: tuple[int, ...] = ()
            if action == "returned":  # a return says why and which material (补正)
                held = eng.centre.cases.get(case)
                item = eng.centre.catalog.items[held.item] if held is not None else None
                reason = "材料不全 / incomplete materials"
                materials = (0,) if item is not None and item.materials else materials
            try:
                eng.apply(CaseUpdate(case, action, reason, restore=restore, by="sim",
                                     materials=materials), now + 0.01 * n, None)
            except Rejected:
                continue
            n += 1
        return n


def slot_counts(visits: Iterable[Any], d: dt.date, n: int) -> list[int]:
    first = midnight(d) + FIRST_SLOT.hour * 3600 + FIRST_SLOT.minute * 60
    out = [0] * n
    for v in visits:
        if v.outcome == "rejected":
            continue
        k = int((v.at - first) // (SLOT_MINUTES * 60))
        out[min(n - 1, max(0, k))] += 1
    return out


def slot_label(k: int) -> str:
    t = dt.datetime.combine(dt.date(2000, 1, 1), FIRST_SLOT) + dt.timedelta(
        minutes=SLOT_MINUTES * k)
    return t.strftime("%H:%M")


def write_csv(days: list[DayCounts], daily: Path, slots: Path) -> None:
    with open(daily, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, DAILY_FIELDS)
        w.writeheader()
        for day in days:
            w.writerow({"date": day.info.date.isoformat(), "count": day.count, **day.flags()})
    with open(slots, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, SLOT_FIELDS)
        w.writeheader()
        for day in days:
            if not day.info.open:
                continue
            for k, n in enumerate(day.slots):
                w.writerow({"date": day.info.date.isoformat(), "slot": slot_label(k),
                            "count": n, **day.flags()})


def read_counts(path: Path) -> list[dict[str, Any]]:
    """Rows of either CSV, typed: ints for counts and flags, float temp_c, str the rest."""
    ints = {"count", "open", "weekday", "adjusted_workday", "post_holiday", "rain"}
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append({k: int(v) if k in ints else float(v) if k == "temp_c" else v
                        for k, v in row.items()})
    return out
