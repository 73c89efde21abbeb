"""Admission control ("honest capacity"): whether a ticket taken now is expected to be
served before the centre closes, and how many more residents the open windows can still
serve today. Pure: the caller passes the time, the wait estimate a new ticket would get now
(hub/app/waits.py `item_wait`: the same service-time model as the printed wait) and today's
opening hours (`centre.calendar.opening_at(now)`); the hub's adapter is hub/app/admission.py,
the simulator's hub/sim/admission.py.

The verdict:

* "closed": the centre has no hours today, or it is past closing time;
* "late": the wait at the judging quantile puts the call at or after closing. Which
  quantile depends on what the verdict does (`quantile_for`):
  - "warn" judges on the slow end of the wait's 80% interval (the 90th percentile, the
    table's `Estimate.hi`: below): a warning is cheap, and "ok" then means likely (about
    nine in ten), not a coin toss;
  - "stop" judges near the central estimate: the 60th percentile by default ([admission]
    stop_quantile sets another between 0.1 and 0.9), between the median and the 90th.
    A refusal sends a resident away, and judged on the slow end it refused every
    resident whose call was merely uncertain, turning away more than the real overload.
    On the simulator's 120 % days (eight seeds, hub/tests/test_sim_admission.py) the
    median turned away the fewest (-3 to +19 % of the residents the windows could
    not reach) but left 1-7 residents waiting at closing on half the days; the 60th left
    nobody on every day and turned away 3-22 % more than that excess; the 90th 3-41 %;
* "ok": otherwise, and also when no estimate exists (no open window can serve the item
  yet, e.g. before the windows open): nothing is known that says the day is full.

The interval judged is the one of the offline table's factor alone (`Estimate.table_alone`:
hub/forecast/wait.py's wait_factors.json, per layout, band and load), not the printed one,
which the hub's online calibration (wait.py `ETA`, a step each morning) widens or narrows as
this hub's past days' waits fell outside it. A verdict then depends on the day in front of
the hub only, not on how its past weeks went; and when the calibration stepped per ticket,
on a cold hub's overloaded day (hub/tests/test_sim_admission.py) it widened the slow end
fast, and "stop" judged on that end turned away 1.35-1.38x the residents the windows could
not reach, against 1.04-1.15x on the table's interval (docs/forecast.md). So a verdict does
not move when only the offset moves. Under "warn" the
printed upper end may then lie past closing with no warning (or short of it with one): the
warning and the printed interval come from the same simulated paths, not the same factor.

What a verdict leads to is the centre's [admission] mode (hub/config.py): "warn" issues the
ticket and says so plainly, "stop" refuses it and offers a booking, "off" asks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .wait import Estimate

OK, LATE, CLOSED = "ok", "late", "closed"
VERDICTS = (OK, LATE, CLOSED)
WARN, STOP, OFF = "warn", "stop", "off"
MODES = (WARN, STOP, OFF)

# What a refused take's err reply says (zh-CN, zh-TW, English); the printed warning is
# hub/render/escpos.py LATE_*, the kiosk's hub/web/locale/*/admission.po.
FULL_TEXT = ("今日号源已满，请预约其他时间", "今日號源已滿，請預約其他時間",
             "Today is fully booked: please book another time")
CLOSED_TEXT = ("今日已停止办理，请预约其他时间", "今日已停止辦理，請預約其他時間",
               "Closed for today: please book another time")


HIGH = 0.9  # the slow end of the calibrated 80 % interval (Estimate.hi)
MEDIAN = 0.5
LOW = 0.1  # ... its fast end (Estimate.lo)
STOP_QUANTILE = 0.6  # "stop"'s default: see above


def check_quantile(q: object) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not LOW <= q <= HIGH:
        raise ValueError(f"admission quantile {q!r}: a number from {LOW} to {HIGH}")
    return float(q)


def quantile_for(mode: str, stop_quantile: float = STOP_QUANTILE) -> float:
    """The quantile of the wait a verdict under `mode` is judged on: "stop" the given
    one (STOP_QUANTILE by default), "warn" (and "off", for a page that still asks) the
    slow end."""
    return check_quantile(stop_quantile) if check_mode(mode) == STOP else HIGH


def wait_at(est: Estimate, q: float) -> float:
    """Minutes of `est` at quantile `q` in [0.1, 0.9]: the estimate knows three, the
    calibrated 10th (lo), the median and the 90th (hi); between them, linear."""
    check_quantile(q)
    if q <= MEDIAN:
        return est.lo + (est.median - est.lo) * (q - LOW) / (MEDIAN - LOW)
    return est.median + (est.hi - est.median) * (q - MEDIAN) / (HIGH - MEDIAN)


def decide(now: float, est: Estimate, opening: tuple[float, float] | None,
           quantile: float = HIGH) -> str:
    """The verdict for a ticket taken at `now` whose wait would be `est` (minutes from
    `now`), the centre open [open, close) today (`opening`, None: closed all day), judged
    on the wait at `quantile` (`quantile_for` the mode: the slow end by default) of `est`'s
    interval with the table's factor alone (`Estimate.table_alone`)."""
    if opening is None:
        return CLOSED
    open_ts, close_ts = opening
    if not (math.isfinite(now) and open_ts <= close_ts):
        raise ValueError(f"admission: bad time {now!r} or hours {opening!r}")
    if now >= close_ts:
        return CLOSED
    if not est.reachable:
        return OK
    est = est.table_alone()  # not the online offsets: see the module's docstring
    wait = est.hi if quantile == HIGH else wait_at(est, quantile)
    call_at = max(now + max(wait, 0.0) * 60.0, open_ts)
    return LATE if call_at >= close_ts else OK


def refused(mode: str, verdict: str) -> bool:
    """Whether a take with `verdict` is refused under `mode` (only "stop" refuses)."""
    check_mode(mode)
    return mode == STOP and verdict != OK


def warned(mode: str, verdict: str) -> bool:
    """Whether a take with `verdict` is issued with the warning (mode "warn")."""
    check_mode(mode)
    return mode == WARN and verdict != OK


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f'admission mode {mode!r}: one of "warn", "stop", "off"')
    return mode


def can_serve(now: float, close_ts: float | None, free_at: Iterable[float],
              occupancy_s: float) -> int:
    """How many more residents the open windows can still call before closing: each window
    is free again at `free_at` (epoch seconds, after the queue already waiting), then serves
    one resident per `occupancy_s` (the mean window occupancy) until `close_ts`. 0 when
    closed (`close_ts` None or past)."""
    if not occupancy_s > 0:
        raise ValueError(f"admission: occupancy {occupancy_s!r} s must be positive")
    if close_ts is None or now >= close_ts:
        return 0
    n = 0
    for free in free_at:
        left = close_ts - max(now, free)
        if left > 0 and math.isfinite(left):
            n += math.ceil(left / occupancy_s)  # a call before closing counts
    return n


def message(verdict: str) -> str:
    """The three-language text of a refusal ("stop") for `verdict`."""
    zh, tw, en = CLOSED_TEXT if verdict == CLOSED else FULL_TEXT
    return f"{zh} / {tw} / {en}"
