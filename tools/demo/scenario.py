"""The demo's day: which day, its clock, the window layout and volume, the hub's
configuration (a keypad and an LED board at every window) and the clerks' names."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...hub.catalog import load_catalog
from ...hub.mqtt.broker import LOOPBACK
from ...hub.sim.engine import DayOptions
from ...hub.sim.model import CST, ArrivalModel, Weather, at_local, day_info
from ...hub.sim.policies import Layout, layout
from ...protocol import ow_protocol as proto

CENTRE_ID = "demo"
START = dt.time(8, 50)  # the simulation starts ten minutes before the windows open
DRILLS = ("", "reopen")
REOPEN_AT = dt.time(10, 30)
# Residents per window on an ordinary Wednesday (the arrival model adds the weekday, so a
# Monday is busier): windows about 85 % busy, queues that come and go.
VISITS_PER_WINDOW = 37.0
MAX_AHEAD = 60.0  # simulated s the clock may run ahead of the engine's next event

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ("丽芳", "建国", "晓燕", "志强", "美玲", "秀英", "文静", "海波", "慧敏", "晓东",
         "春梅", "立新", "玉兰", "振华", "雪梅", "志明", "桂英", "伟", "敏", "静")


# ---- time -------------------------------------------------------------------------------

def demo_day(today: dt.date | None = None) -> dt.date:
    """Today in China if the centre opens today, else the working day before."""
    d = today or dt.datetime.now(CST).date()
    while not day_info(d).open:
        d -= dt.timedelta(days=1)
    return d


class SimClock:
    """Simulated epoch seconds: `start` until `go()`, then `speed` seconds per real second,
    but never more than MAX_AHEAD past `engine` (the engine's next event, set by `drive`):
    at speeds the hub's answers cannot keep up with, time waits for the people rather than
    running on without them (and past midnight, where the hub would close the day). Both
    bounds only grow, so the clock never goes back."""

    def __init__(self, day: dt.date, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.day = day
        self.speed = speed
        self.start = self.at(START)
        self.engine = math.inf
        self._t0: float | None = None

    def at(self, t: dt.time) -> float:
        return at_local(self.day, t)

    def go(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        if self._t0 is None:
            return self.start
        return min(self.start + (time.monotonic() - self._t0) * self.speed,
                   self.engine + MAX_AHEAD)

    def local(self, ts: float | None = None) -> dt.datetime:
        return dt.datetime.fromtimestamp(self() if ts is None else ts, CST)

    def real_until(self, ts: float) -> float:
        """Real seconds until the clock shows `ts` (<= 0: it has)."""
        return (ts - self()) / self.speed


# ---- the centre ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """The simulated day: its date, the window layout, the engine's options and volume."""

    day: dt.date
    layout: Layout
    options: DayOptions
    scale: float
    weather: Weather
    last_ticket: dt.time  # when arrivals stop (the ticket machines stop issuing)

    def at(self, t: dt.time) -> float:
        return at_local(self.day, t)

    @property
    def open_at(self) -> float:
        return self.at(self.options.reopen_at or self.options.open_at)

    @property
    def drill(self) -> bool:
        return self.options.reopen_at is not None


def plan(day: dt.date, windows: int, layout_name: str = "mixed", drill: str = "",
         reopen_at: dt.time = REOPEN_AT) -> Plan:
    """`drill="reopen"`: the windows stay closed until `reopen_at` while residents keep
    taking tickets (the engine's reopening drill), then work off the backlog."""
    if drill not in DRILLS:
        raise ValueError(f"unknown drill {drill!r}; one of: reopen")
    opts = DayOptions(start_at=START, reopen_at=reopen_at if drill == "reopen" else None)
    if drill and not opts.open_at < reopen_at < opts.close_at:
        raise ValueError(f"the drill reopens between {opts.open_at:%H:%M} and "
                         f"{opts.close_at:%H:%M}")
    lay = layout(layout_name, load_catalog(), windows, centre_id=CENTRE_ID)
    arrivals = ArrivalModel()  # the engine's default
    return Plan(day, lay, opts, windows * VISITS_PER_WINDOW / arrivals.base_daily, Weather(),
                arrivals.end())


def demo_config(lay: Layout, port: int, db: Path, web_port: int | None = None,
                admission: str = "") -> dict[str, Any]:
    """The hub's configuration: the layout's windows, and a keypad and an LED board at each;
    `admission`: the [admission] mode ("": none set, the hub's default)."""
    devices: list[dict[str, Any]] = [
        {"id": "box-1", "role": "box"}, {"id": "box-2", "role": "box"},
        {"id": "kiosk-1", "role": "kiosk"}, {"id": "hall-1", "role": "hall"},
    ]
    windows = []
    for w in lay.config.windows:
        devices.append({"id": f"kp-{w.number}", "role": "keypad", "window": w.number})
        devices.append({"id": f"led-{w.number}", "role": "led", "window": w.number})
        skills = {} if w.skills is None else {"skills": list(w.skills)}
        windows.append({"number": w.number, "kind": w.kind, **skills})
    web = {} if web_port is None else {
        "web": {"host": LOOPBACK, "port": web_port}}
    status = {} if web_port is None else {"status_url": f"http://{LOOPBACK}:{web_port}/t/"}
    return {
        **web,
        "centre": {"id": CENTRE_ID, **status},
        "store": {"url": f"sqlite:///{db}"},
        "broker": {"embedded_port": port},
        "windows": windows,
        "devices": devices,
        **({"admission": {"mode": admission}} if admission else {}),
    }


def clerk_names(n: int, rng: random.Random) -> list[str]:
    pool = [s + g for s in SURNAMES for g in GIVEN]
    rng.shuffle(pool)
    return [proto.mask_name(name) for name in pool[:n]]


