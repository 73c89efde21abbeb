"""The wait interval's online calibration (hub/forecast/wait.py `_settle`, `_passed`): each
printed end is settled as soon as its outcome is known (a call, or its time passing while the
ticket still waits), each settled end steps its band's log-offset by eta x (miss - 0.1), the
state survives a snapshot, and a table far off is brought back toward 80 % on a simulated
day. The grid's held-out figures are in docs/forecast.md."""

import bisect
import math

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.forecast import evaluate_wait as ev
from onewindow.hub.forecast import wait
from onewindow.hub.forecast.wait import (
    BANDS,
    END_MISS,
    Estimate,
    WaitPredictor,
    predictor_to_dict,
    restore_predictor,
)

from .catalogs import centre
from .test_wait_predictor import T0

MIN = 60.0


def _ticket(core, now):  # type: ignore[no-untyped-def]
    core.apply(c.TakeTicket("SOC-1"), now)
    return list(core.queue)[-1]


def test_each_end_is_settled_once_as_soon_as_it_is_known():
    core = centre(windows=((1, "comprehensive"),), now=T0)
    p = WaitPredictor(eta=0.1)
    p.update(core, T0, "take")
    a = _ticket(core, T0)
    b = _ticket(core, T0)
    band = bisect.bisect(BANDS, 10.0)
    p.issued(a, Estimate(10.0, 10.0, 5.0, 15.0, 8.0, 12.0))
    p.issued(b, Estimate(10.0, 10.0, 20.0, 40.0, 8.0, 12.0))
    before = p._scale(10.0)
    step_miss, step_hit = 0.1 * (1 - END_MISS), -0.1 * END_MISS
    # a is called after 2 minutes, before its lower end (5): a lower miss, an upper hit
    core.apply(c.CallNext(1), T0 + 2 * MIN)
    p.update(core, T0 + 2 * MIN, "call")
    assert p.offset[band] == pytest.approx([step_miss, step_hit])
    # b still waits when its lower end (20 min) passes: not a lower miss, known now
    p.update(core, T0 + 25 * MIN, "pause")
    assert p.offset[band] == pytest.approx([step_miss + step_hit, step_hit])
    # ... and when its upper end (40 min) passes: a miss, known now, not at its call
    p.update(core, T0 + 41 * MIN, "pause")
    assert p.offset[band] == pytest.approx([step_miss + step_hit, step_hit + step_miss])
    core.apply(c.Complete(1), T0 + 44 * MIN)
    p.update(core, T0 + 44 * MIN, "complete")
    core.apply(c.CallNext(1), T0 + 45 * MIN)
    p.update(core, T0 + 45 * MIN, "call")  # b's call settles nothing more
    assert p.offset[band] == pytest.approx([step_miss + step_hit, step_hit + step_miss])
    # the band's factors moved by those offsets; the other bands' did not
    table, lo, hi = p._scale(10.0)
    assert lo == pytest.approx(before[1] * math.exp(step_miss + step_hit))
    assert hi == pytest.approx(before[2] * math.exp(step_hit + step_miss))
    assert table == before[0] == before[1] == before[2]  # the table's factor: unmoved
    assert all(o == [0.0, 0.0] for k, o in enumerate(p.offset) if k != band)


def test_a_ticket_gone_with_its_day_before_its_ends_passed_settles_nothing():
    core = centre(windows=((1, "comprehensive"),), now=T0)
    p = WaitPredictor(eta=0.1)
    p.update(core, T0, "take")
    a = _ticket(core, T0)
    p.issued(a, Estimate(10.0, 10.0, 5.0, 15.0, 8.0, 12.0))
    later = T0 + 86400.0  # the next day's first take closes the day: a leaves uncalled
    _ticket(core, later)
    assert a.id not in core.tickets
    p.update(core, later, "take")
    assert all(o == [0.0, 0.0] for o in p.offset)
    assert a.id not in p.pending and not any(x[1] == a.id for x in p.deadlines)


def test_the_online_state_survives_a_snapshot_and_an_older_one_restores():
    core = centre(windows=((1, "comprehensive"),), now=T0)
    p = WaitPredictor(eta=0.1)
    p.update(core, T0, "take")
    for k in range(3):
        p.issued(_ticket(core, T0), Estimate(10.0, 10.0, 5.0, 15.0 + k, 8.0, 12.0))
    p.update(core, T0 + 15.5 * MIN, "pause")  # one upper end passed, two to come
    doc = predictor_to_dict(p)
    q = WaitPredictor(eta=0.1)
    restore_predictor(q, doc)
    assert predictor_to_dict(q) == doc
    for x in (p, q):
        x.update(core, T0 + 30 * MIN, "pause")
    assert q.offset == p.offset and predictor_to_dict(q) == predictor_to_dict(p)
    # a snapshot from before the online calibration: its predictions are never settled
    old = dict(doc)
    del old["deadlines"], old["offset"]
    old["pending"] = {k: v[:4] for k, v in doc["pending"].items()}
    r = WaitPredictor(eta=0.1)
    restore_predictor(r, old)
    r.update(core, T0 + 30 * MIN, "pause")
    assert all(o == [0.0, 0.0] for o in r.offset)


def test_a_table_far_off_is_brought_toward_80_percent_on_a_simulated_day(monkeypatch):
    from onewindow.hub.catalog import load_catalog

    # the table's factors halved: alone it covers far less than 80 %
    monkeypatch.setitem(wait.FACTORS, "mixed",
                        tuple(tuple(tuple(0.4 * x for x in r) for r in t)
                              for t in wait.FACTORS["mixed"]))
    catalog, seeds = load_catalog(), [ev.TUNING_SEEDS[0]]
    cov = {}
    for eta in (0.0, wait.TUNED_ETA):
        rows = ev.centre_days(catalog, seeds, 4, "mixed", load=0.9, rain=False, eta=eta)
        cov[eta] = ev.scores(rows)["coverage"]
    assert cov[0.0] < 0.7
    assert abs(cov[wait.TUNED_ETA] - 0.8) < abs(cov[0.0] - 0.8) - 0.05, cov
