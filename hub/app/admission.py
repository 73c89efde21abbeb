"""Admission control at the hub (issue 16, "honest capacity"): the decision itself is pure
(hub/forecast/admission.py); this module gives it the hub's inputs and keeps its answer.

A take's verdict is computed once, live, before the take is journaled, from the wait a new
ticket for the item would get now (waits.item_wait: the model behind the printed wait, its
interval with the table's factor alone, not the online offset: hub/forecast/admission.py)
and today's hours (centre.calendar). In mode "stop" a take that would not be served today is
refused (`Rejected` "day_full": nothing changes, nothing is journaled); in mode "warn" it is
issued and its record keeps the verdict (`adm`, only when not "ok"), so the ticket printed
again in a replay says the same. A replay never decides again: the hours, the mode and the
forecast may all have changed since.

"stop" judges on a central quantile of the wait ([admission] stop_quantile, 0.6 by
default), "warn" on the slow end of its interval: hub/forecast/admission.py says why.

The mode in force is centre.toml's until a supervisor switches it from the dashboard
(hub/web/dashboard.py): the switch is a journal record of its own, `{op: "admission_mode",
mode, by}`, applied here (`switch`) live and in a replay alike, kept in the snapshot's app
part, so a restarted hub judges in the mode last switched to, and the dashboard shows who
switched it and when. It stays in force until switched again (a changed centre.toml does
not override a later switch; switching back to the configured mode does).

Judged the same: a resident's remote take from the phone (hub/web/remote.py). Not judged:
offline tickets joining the queue (the box printed them already), appointment
tickets (a booking's check-in: its capacity was granted when it was booked), and takes of
staff software without a source device.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...protocol import ow_protocol as proto
from ...protocol.ow_device import CMD
from ..core import commands as c
from ..core.rejected import Rejected
from ..devices import Publish
from ..forecast import admission as adm
from ..forecast.paths import INF
from ..render.escpos import render_day_full
from ..store.journal import Record
from . import waits
from .outbound import dev_topic
from .state import AppState

PRINTERS = ("box", "kiosk")  # the devices a refused press gets the day-full slip from
SLIP_TTL = 30  # s: printed now or not at all

KEY = "adm"  # the take record's field: the verdict, when not "ok"


OP = "admission_mode"  # the journal record of a supervisor's switch
MAX_BY = 64


@dataclass(frozen=True, slots=True)
class SetAdmission(c.Command):
    """A supervisor (`by`, the dashboard's user) switches admission control to `mode`.
    Not a core command (the core knows no admission): hub/app/records.py applies it here,
    and the staff report, which replays core commands only, passes over it."""

    op: ClassVar[str] = OP
    mode: str
    by: str


def mode(app: AppState) -> str:
    """The mode in force: the last switch from the dashboard, else centre.toml's
    [admission] mode (AppState.admission)."""
    sw = app.admission_switch
    return str(sw["mode"]) if sw is not None else app.admission


def quantile(app: AppState) -> float:
    """The quantile of the wait the mode in force judges on."""
    return adm.quantile_for(mode(app), app.admission_stop_quantile)


def switch(app: AppState, body: dict[str, Any], at: float) -> None:
    """Apply a switch record (live or replayed). Raises Rejected, nothing changed."""
    m, by = body.get("mode"), body.get("by")
    if m not in adm.MODES:
        raise Rejected("bad_mode", f"模式无效 / 模式無效 / mode {m!r}: one of "
                                   f'"off", "warn", "stop"')
    if not isinstance(by, str) or not by.strip() or len(by) > MAX_BY:
        raise Rejected("bad_field", "缺少操作人 / 缺少操作人 / who switched it is required")
    app.admission_switch = {"mode": m, "by": by, "at": at}


def switched(app: AppState) -> dict[str, Any] | None:
    """The switch in force (mode, by, at), for the dashboard; None: as configured."""
    return dict(app.admission_switch) if app.admission_switch is not None else None


def verdict(app: AppState, item: str, now: float, hot: bool = False) -> str:
    """The verdict for a ticket for `item` taken now (what the kiosk shows before issuing).
    Read from the standing forecast takes are placed into (refreshed between messages,
    hub/forecast/refresh.py): no simulation. `hot` (a take being decided): never simulate,
    so a take costs the same with 0 or 1,000 waiting (issue 14); without a standing
    forecast (the first moments after start) the take is not judged ("ok"). A page may
    simulate (`waits.item_wait`, one per state and 5 s)."""
    opening = app.centre.calendar.opening_at(now)
    w = app.waits
    ch = w.chain.usable(app.centre.day, app.pos, now) if w.extend else None
    if ch is not None:
        est = w.probe_in(ch.fc, app.centre, item, now)
    elif hot:
        return adm.OK if opening is not None and now < opening[1] else adm.CLOSED
    else:
        est = waits.item_wait(app, item, now)
    return adm.decide(now, est, opening, quantile(app))


def judged(body: dict[str, Any]) -> bool:
    """A device's or the kiosk's take (not an offline ticket joining, not a booking's
    check-in, not staff software's), or a resident's remote take from the phone."""
    if body.get("op") == "remote_take":
        return True
    return (body.get("op") == "take" and body.get("number") is None
            and body.get("priority") != "appointment" and body.get("source") is not None)


def gate(app: AppState, rec: Record) -> None:
    """Before a live take is applied: refuse it (mode "stop") or note the verdict in its
    record (mode "warn"). Raises Rejected with nothing changed."""
    body = rec.body
    if app.replaying or KEY in body or not judged(body):
        return
    m = mode(app)
    if m == adm.OFF:
        return
    v = verdict(app, body["item"], rec.ts, hot=True)
    if adm.refused(m, v):
        raise Rejected("day_full", adm.message(v))
    if adm.warned(m, v):
        body[KEY] = v


def late(rec: Record) -> bool:
    """Whether the take `rec` was issued with the warning (its record says so)."""
    return rec.body.get(KEY) in (adm.LATE, adm.CLOSED)


def can_serve(app: AppState, now: float) -> int:
    """How many more residents the open windows can still call before closing today, from
    the standing forecast (when each open window is free after the queue, median over the
    paths) and the learned mean occupancy."""
    opening = app.centre.calendar.opening_at(now)
    if opening is None or now >= opening[1]:
        return 0
    step = now - now % waits.LIVE_WAIT_STEP
    w = app.waits
    fc = w.known(app.pos, step) or w.forecast(app.centre, step, app.pos)
    free = [max(float(np.median(fc.free[:, col])), opening[0]) for col in fc.cols.values()]
    free = [f for f in free if f < INF]
    items = app.centre.catalog.items.values()
    weight = sum(i.weight for i in items) or 1.0
    standard = sum(i.minutes * 60.0 * i.weight for i in items) / weight or 300.0
    occupancy = w.learner.mean_seconds(standard * w.learner.ratio()) + w.wrap
    return adm.can_serve(now, opening[1], free, occupancy)


def full_slip(app: AppState, dev: str, item: str, seq: int, message: str,
              now: float) -> Publish | None:
    """The `print` command of the day-full slip for a refused press at a box or kiosk (its
    id names the device's event, so a repeat of that event gets it again and the device's
    command ids print it once). None for a device without a printer or an unknown item."""
    spec = app.registry.get(dev)
    it = app.centre.catalog.items.get(item)
    if spec is None or spec.spec.role not in PRINTERS or it is None:
        return None
    name = app.centre.catalog.name
    chinese = app.slip_chinese
    tw = chinese == "zh_TW"
    base = app.status_url
    book = (base[:-len("/t/")] + f"/book?item={item}"
            if app.booking_key is not None and base.endswith("/t/") else None)
    closed = message.startswith(adm.CLOSED_TEXT[0])
    escpos = render_day_full({
        "centre_zh": name.traditional if tw else name.zh, "centre_en": name.en,
        "item_zh": it.name.traditional if tw else it.name.zh, "item_en": it.name.en,
        "closed": closed, "book": book, "chinese": chinese,
        "at": app.centre.local_time(now).strftime("%Y-%m-%d %H:%M")})
    words = adm.CLOSED_TEXT if closed else adm.FULL_TEXT
    cmd = {"id": f"{app.boot}.full.{dev}.{seq}", "ttl": SLIP_TTL, "type": "print",
           "ticket": "-", "lines": [words[1] if tw else words[0], words[2]],
           "escpos": base64.b64encode(escpos).decode("ascii")}
    if book:
        cmd["qr"] = book
    return Publish(dev_topic(app, dev, CMD), proto.encode(CMD, cmd))
