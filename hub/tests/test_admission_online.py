"""Admission control judges on the wait interval of the offline table's factor alone, not on
the one the online calibration prints (hub/forecast/admission.py, hub/forecast/wait.py
`Estimate.table_alone`): with the online offset forced far from 0, either way, a verdict
is the one the table alone gives, while the interval printed and shown moves. Without the
split, a cold hub's overloaded day turned away a third more residents than the real excess
under "stop" (docs/forecast.md, hub/tests/test_sim_admission.py)."""

from __future__ import annotations

import pytest

from onewindow.hub.app import admission as gate
from onewindow.hub.app import waits
from onewindow.hub.core import commands as c
from onewindow.hub.forecast import admission as adm
from onewindow.hub.forecast.wait import OFFSET_CAP, Estimate

from .test_admission import CLOSE, OPEN, app, evt

ITEM = "SOC-1"
WIDE = OFFSET_CAP  # the online offset at its cap: the factor x20
NARROW = -OFFSET_CAP  # ... /20


def queue(mode: str, waiting: int, at: float):  # type: ignore[no-untyped-def]
    """One window open since 09:00, `waiting` residents of 5-minute items taken at `at`."""
    a = app(mode)
    evt(a, "kp-1", 1, "open", OPEN)
    for k in range(waiting):
        a.operate(c.TakeTicket(ITEM, source=None), at + k)
    return a


def printed_only(e: Estimate) -> Estimate:
    """`e` as a verdict on the printed interval would read it (what it judged before)."""
    return Estimate(e.median, e.mean, e.lo, e.hi, e.raw_lo, e.raw_hi)


@pytest.mark.parametrize("offset", [WIDE, NARROW], ids=["wide", "narrow"])
def test_the_verdict_stays_the_tables_when_only_the_online_offset_moves(offset):
    moved = {"stop": 0, "warn": 0}  # times the printed interval alone would judge otherwise
    for mode in ("stop", "warn"):
        q = adm.quantile_for(mode)
        for waiting in (2, 6, 12):
            for before in (30, 90, 180):  # minutes before closing
                now = CLOSE - before * 60
                a = queue(mode, waiting, now - 30)
                table = waits.item_wait(a, ITEM, now)
                v0 = gate.verdict(a, ITEM, now)
                assert table.table_lo == table.lo and table.table_hi == table.hi
                a.waits.offset = offset
                e = waits.item_wait(a, ITEM, now)
                # the interval printed and shown moved; the table's did not
                assert (e.median, e.raw_lo, e.raw_hi) == (table.median, table.raw_lo,
                                                          table.raw_hi)
                assert (e.table_lo, e.table_hi) == (table.lo, table.hi)
                if offset > 0:
                    assert e.hi > table.hi and e.lo <= table.lo
                else:
                    assert e.hi < table.hi and e.lo >= table.lo
                assert waits.wait_fields(e)["wait_hi"] != waits.wait_fields(table)["wait_hi"]
                # the hub's verdict: the table alone's
                assert gate.verdict(a, ITEM, now) == v0
                # ... and so at any closing time, minute by minute
                for minutes in range(1, 300):
                    hours = (OPEN, now + minutes * 60)
                    v = adm.decide(now, table, hours, q)
                    assert adm.decide(now, e, hours, q) == v
                    moved[mode] += adm.decide(now, printed_only(e), hours, q) != v
    # not vacuous: on the printed interval some of those verdicts would have differed
    assert moved["stop"] > 0 and moved["warn"] > 0, moved


@pytest.mark.parametrize("mode", ["stop", "warn"])
def test_a_take_is_judged_on_the_table_and_prints_the_online_interval(mode):
    """At the hub, a take decided (`gate`, hot: read from the standing forecast) near
    closing: the same verdict with the offset at 0 and forced wide; the record's printed
    interval is the widened one."""
    now = CLOSE - 45 * 60
    out = {}
    for name, offset in (("table", None), ("wide", WIDE)):
        a = queue(mode, 5, now - 30)
        if offset is not None:
            a.waits.offset = offset
        step = evt(a, "box-1", 1, "take", now, item=ITEM)
        out[name] = step.records[0].body if step.records else None
    table, wide = out["table"], out["wide"]
    assert table is not None and wide is not None  # issued under either
    assert table.get("adm") == wide.get("adm")
    med, lo, hi, raw_lo, raw_hi = table["est"]
    assert wide["est"][0] == med and wide["est"][3:] == [raw_lo, raw_hi]
    assert wide["est"][2] > hi and wide["est"][1] <= lo
    # judged on the printed (widened) interval this take would have been late
    w_med, w_lo, w_hi = wide["est"][:3]
    e = Estimate(w_med, w_med, w_lo, w_hi)
    assert adm.decide(now, e, (OPEN, CLOSE), adm.quantile_for(mode)) == adm.LATE
