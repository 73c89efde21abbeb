"""Admission control in the simulator: the hub's decision (hub/forecast/admission.py
`decide`) on the hub's wait estimate, both the same code, driven as the hub drives them.

The predictor (hub/forecast/wait.py) learns from every operation the engine applies and is
refreshed in the background as the hub's loop refreshes it (evaluate_wait.Background); a
take is placed into the standing forecast and its printed interval recorded for the online
calibration, as hub/app/waits.py does. Before a resident takes a ticket the engine asks
`judge`: the estimate a new ticket for the item would get now (`probe`, the hall's forecast,
what hub/app/waits.py item_wait reads) against the day's closing time.

What residents do with the answer (the simulator's assumptions, not the hub's):

* mode "stop": a refused resident goes away, counted as "turned_away" (offered a booking);
* mode "warn": a resident told "not likely to be served today" leaves with probability
  `leave_share` (default 0.5: no field data yet; half believe the ticket and go, half stay
  and try their luck), counted as "left_warned"; the others queue as usual;
* mode "off": nobody is asked.

Like the hub, appointment tickets (a booking's check-in) are not judged.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

from ..core import commands as c
from ..core.catalog import Catalog
from ..core.centre import Centre
from ..core.effects import TicketIssued
from ..forecast import admission as adm
from ..forecast.evaluate_wait import Background
from ..forecast.wait import WaitPredictor
from .engine import Engine
from .metrics import DayMetrics, first_call
from .model import Visit, Weather, day_info
from .policies import layout

LEAVE_SHARE = 0.5  # "warn": the share of warned residents who go away (an assumption)
TURNED_AWAY = "turned_away"  # a Visit's outcome: refused ("stop"), offered a booking
LEFT_WARNED = "left_warned"  # ... warned ("warn") and went away


class SimAdmission:
    def __init__(self, mode: str, leave_share: float = LEAVE_SHARE, seed: int = 0,
                 predictor: WaitPredictor | None = None,
                 stop_quantile: float = adm.STOP_QUANTILE) -> None:
        self.mode = adm.check_mode(mode)
        # the quantile of the wait the verdict is judged on, as the hub's [admission]
        # stop_quantile gives it (hub/app/admission.py)
        self.quantile = adm.quantile_for(mode, stop_quantile)
        if not 0.0 <= leave_share <= 1.0:
            raise ValueError(f"leave_share {leave_share!r}: a share in [0, 1]")
        self.leave_share = leave_share
        self.rng = random.Random(f"admission:{seed}")
        self.waits = predictor or WaitPredictor(seed=seed)
        self.background: Background | None = None
        self.verdicts: dict[str, int] = {}  # verdict -> residents judged so

    # ---- the engine's hooks: the predictor driven as the hub drives it -------------------
    def before(self, centre: Centre, cmd: c.Command, now: float, pos: int) -> None:
        if self.background is None or self.background.centre is not centre:
            self.background = Background(self.waits, centre)
        self.background.before(now, pos, cmd.op == "take")

    def after(self, centre: Centre, cmd: c.Command, effects: list[Any], now: float,
              pos: int) -> None:
        self.waits.update(centre, now, cmd.op)
        for e in effects:
            if isinstance(e, TicketIssued) and not e.reprint:
                est = self.waits.predict(centre, centre.tickets[e.ticket], now, pos)
                if est.reachable:
                    self.waits.issued(centre.tickets[e.ticket], est)

    # ---- a resident at the machine ---------------------------------------------------------
    def judge(self, centre: Centre, v: Visit, now: float, pos: int,
              opening: tuple[float, float]) -> str | None:
        """None: the resident takes a ticket; else the outcome of one who goes away."""
        if self.mode == adm.OFF or v.priority == "appointment":
            return None
        if self.background is not None:
            self.background.before(now, pos, True)
        est = self.waits.probe(centre, v.pressed, now, pos)
        verdict = adm.decide(now, est, opening, self.quantile)
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        if adm.refused(self.mode, verdict):
            return TURNED_AWAY
        if adm.warned(self.mode, verdict) and self.rng.random() < self.leave_share:
            return LEFT_WARNED
        return None


# ---- the figure: a day at 120 % of the centre's capacity --------------------------------
def capacity(catalog: Catalog, windows: int, d: dt.date, seed: int = 0) -> int:
    """Residents the centre's windows call before closing when the queue never empties:
    a day of three times the usual arrivals, counted (the same layout, clerks and
    service model as the day it is the capacity of)."""
    eng = Engine(catalog, layout("mixed", catalog, windows), clerk_seed=seed)
    r = eng.run_day(d, Weather(), seed, scale=3.0)
    close = float(r.extra["close_at"])
    return sum(1 for t in r.tickets.values() if (first_call(t) or math.inf) < close)


def overloaded_day(catalog: Catalog, windows: int, d: dt.date, mode: str, load: float = 1.2,
                   seed: int = 0, cap: int | None = None,
                   stop_quantile: float = adm.STOP_QUANTILE) -> DayMetrics:
    """One day with `load` times the centre's `capacity` arriving, admission control in
    `mode` ("off": none; "stop" judged at `stop_quantile` of the wait)."""
    cap = capacity(catalog, windows, d, seed) if cap is None else cap
    eng = Engine(catalog, layout("mixed", catalog, windows), clerk_seed=seed,
                 admission=SimAdmission(mode, seed=seed, stop_quantile=stop_quantile))
    scale = load * cap / eng.arrivals.day_mean(day_info(d), Weather())
    return eng.run_day(d, Weather(), seed, scale=scale).metrics()
