"""Pre-review and return visits in the simulator (hub/sim/prereview.py): residents missing a
material are caught at the kiosk (most leave, a few queue anyway) or returned at the window,
and come back on a later working day; the one-trip rate is what the model makes of that,
and the journal the engine writes replays into the same core."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.sim.engine import Engine
from onewindow.hub.sim.metrics import DayMetrics
from onewindow.hub.sim.model import ResidentModel, Weather
from onewindow.hub.sim.policies import layout
from onewindow.hub.sim.prereview import PreReviewModel

MONDAY = dt.date(2026, 11, 23)
# more residents at the kiosk and more missing materials than the defaults: a few days
# show every path
RESIDENTS = ResidentModel(kiosk=0.7, card_token=0.5, missing_per_material=0.05,
                          missing_cap=0.4)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def run(catalog, model: PreReviewModel, days: int = 4, recorder=None
        ) -> tuple[Engine, list[DayMetrics], list]:
    eng = Engine(catalog, layout("mixed", catalog, 10), residents=RESIDENTS,
                 prereview=model, recorder=recorder)
    out, results, d = [], [], MONDAY
    for _ in range(days):
        r = eng.run_day(d, Weather(), seed=7, scale=0.5)
        out.append(r.metrics())
        results.append(r)
        d = eng.centre.add_workdays(d, 1)
    return eng, out, results


def test_every_path_happens_and_residents_come_back(catalog):
    _, ms, results = run(catalog, PreReviewModel())
    total = {k: sum(getattr(m, k) for m in ms)
             for k in ("kiosk_left", "queued_anyway", "returned", "comebacks")}
    assert all(n > 0 for n in total.values()), total
    assert ms[0].comebacks == 0 and sum(m.comebacks for m in ms[1:]) > 0
    for r in results:
        for v in r.visits:
            if v.outcome == "kiosk_left":
                assert v.ticket is None  # sent away before a ticket: no wait
            if v.trip > 1:
                assert v.pressed == v.item and v.extra is None
    back = [v for r in results for v in r.visits if v.trip > 1]
    assert any(v.resident for v in back)  # carded residents keep their token
    assert all(0.8 < m.one_trip < 1 for m in ms)


def test_the_one_trip_rate_follows_what_the_kiosk_catches(catalog):
    never = run(catalog, PreReviewModel(catch=0.0))[1]
    always = run(catalog, PreReviewModel(catch=1.0, queue_anyway=0.0))[1]
    assert sum(m.kiosk_left for m in never) == 0
    assert sum(m.kiosk_left for m in always) > 0
    assert sum(m.returned for m in always) < sum(m.returned for m in never)
    rate = [sum(m.one_trip for m in ms) / len(ms) for ms in (never, always)]
    assert rate[0] < rate[1]


def test_the_engines_journal_replays_into_the_same_core(catalog):
    records = []
    eng, _, _ = run(catalog, PreReviewModel(), days=2,
                    recorder=lambda now, dev, body: records.append((now, body)))
    ops = {body["op"] for _, body in records}
    assert {"prereview", "return_materials", "take"} <= ops
    replayed = Centre(catalog, eng.layout.config)
    for now, body in records:
        try:
            replayed.apply(c.from_record(body), now)
        except Rejected:  # ratings the core refuses are journaled only when accepted
            raise
    assert replayed.to_dict() == eng.centre.to_dict()
