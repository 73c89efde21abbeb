"""Admission control ("honest capacity"): whether a ticket taken now is expected to be
served before the centre closes, and how many more residents the open windows can still
serve today. Pure: the caller passes the time, the wait estimate a new ticket would get now
(hub/app/waits.py `item_wait`: the same service-time model as the printed wait) and today's
opening hours (`centre.calendar.opening_at(now)`); the hub's adapter is hub/app/admission.py,
the simulator's hub/sim/admission.py.

The verdict:

* "closed": the centre has no hours today, or it is past closing time;
* "late": the slow end of the wait's 80% interval (`Estimate.hi`, the number printed as
  "(lo-hi)") puts the call at or after closing: the resident is not likely to be served
  today. The upper bound, not the median, so that "ok" means likely (about nine in ten),
  not a coin toss;
* "ok": otherwise, and also when no estimate exists (no open window can serve the item
  yet, e.g. before the windows open): nothing is known that says the day is full.

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


def decide(now: float, est: Estimate, opening: tuple[float, float] | None) -> str:
    """The verdict for a ticket taken at `now` whose wait would be `est` (minutes from
    `now`), the centre open [open, close) today (`opening`, None: closed all day)."""
    if opening is None:
        return CLOSED
    open_ts, close_ts = opening
    if not (math.isfinite(now) and open_ts <= close_ts):
        raise ValueError(f"admission: bad time {now!r} or hours {opening!r}")
    if now >= close_ts:
        return CLOSED
    if not est.reachable:
        return OK
    call_at = max(now + max(est.hi, 0.0) * 60.0, open_ts)
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
