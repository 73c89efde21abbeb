"""Issue 16 on the simulator: bookings and remote tickets (hub/sim/bookings.py), decided by
the real core. The day's counts are the core's (the journal the engine writes, replayed into
a fresh Centre through the hub's own replay, says the same); booked residents checked in on
time wait less than walk-ins on a busy day; no slot is booked over its capacity."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import BookingRules
from onewindow.hub.devices import Registry
from onewindow.hub.sim.bookings import AheadModel, SimAhead
from onewindow.hub.sim.engine import Engine
from onewindow.hub.sim.history import JournalRecorder
from onewindow.hub.sim.metrics import DayResult, Waits
from onewindow.hub.sim.model import Weather
from onewindow.hub.sim.policies import Layout, layout

DAY = dt.date(2026, 11, 25)  # a Wednesday, 09:00-17:00
DAY_ID = "20261125"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _run(catalog, lay: Layout, scale: float, seed: int, model: AheadModel | None = None
         ) -> tuple[Engine, DayResult, JournalRecorder]:
    rec = JournalRecorder()
    eng = Engine(catalog, lay, recorder=rec, clerk_seed=seed,
                 ahead=SimAhead(model, seed=seed))
    return eng, eng.run_day(DAY, Weather(), seed, scale=scale), rec


def test_the_days_counts_are_what_the_journal_replays_to(catalog):
    lay = layout("mixed", catalog, 6)
    eng, r, rec = _run(catalog, lay, 0.6, seed=2)
    m = r.metrics()
    assert m.booked > 20 and m.remote > 5  # the day has both
    assert m.checked_in > 0 and m.late_checkins + m.booking_no_show > 0

    app = HubApp(Centre(catalog, lay.config), Registry([]), "test")
    assert app.replay(rec.pending) == len(rec.pending)  # every record applies
    replayed = app.centre
    assert replayed.to_dict() == eng.centre.to_dict()

    ops = Counter(x.body["op"] for x in rec.pending)
    assert ops["book"] == m.booked
    assert ops["checkin"] == m.checked_in + m.late_checkins
    assert ops["remote_take"] == m.remote
    # one ticket per visit that got one: a take, a check-in or a remote take
    assert ops["take"] + ops["checkin"] + ops["remote_take"] == len(r.tickets) == sum(
        1 for v in r.visits if v.ticket is not None)
    assert booking.counts_of(replayed, DAY_ID) == {
        "booked": m.booked, "cancelled": 0, "checked_in": m.checked_in,
        "late": m.late_checkins, "no_show": m.booking_no_show}
    remote = [t for t in replayed.tickets.values() if t.source == "remote"]
    assert len(remote) == m.remote
    kinds = Counter(n.kind for n in replayed.notices.values())
    assert (kinds["near"], kinds["called"]) == (m.notices_near, m.notices_called) != (0, 0)
    assert all(n.channels == {"page": "sent"} for n in replayed.notices.values())
    # every remote ticket called was told so, once; nobody was told "near" after a call
    called = {t.id for t in remote if any(h[1] == "called" for h in t.history)}
    assert {n.ticket for n in replayed.notices.values() if n.kind == "called"} == called
    # the booked who checked in in time hold appointment tickets for their slot's start
    for v in r.visits:
        if v.ahead == "booked" and v.ticket is not None:
            t = replayed.tickets[v.ticket]
            b = replayed.bookings[v.booking]
            assert b.ticket == t.id
            if v.arrival == "late":
                assert t.priority.value == "normal" and b.state == booking.LATE
            else:
                assert t.priority.value == "appointment" and t.appointment_at == v.slot
                assert b.state == booking.CHECKED_IN
    assert sum(1 for b in replayed.bookings.values()
               if b.state == booking.NO_SHOW) == m.booking_no_show


def test_booked_residents_checked_in_on_time_wait_less_than_walk_ins_on_a_busy_day(catalog):
    lay = layout("mixed", catalog, 6)
    _, r, _ = _run(catalog, lay, 1.0, seed=1)
    m = r.metrics()
    walk = Waits.of(r.tickets[v.ticket] for v in r.visits if not v.ahead and v.ticket)
    assert walk.mean > 45 and m.walkin_wait == walk.mean  # busy: walk-ins wait long
    on_time = Waits.of(r.tickets[v.ticket] for v in r.visits
                       if v.ahead == "booked" and v.arrival == "on_time" and v.ticket)
    assert len(on_time) > 20
    assert on_time.percentile(90) < walk.percentile(10)
    assert m.appointment_wait < walk.mean / 4
    # late ones lose their place: a normal ticket waits as a walk-in's does
    late = Waits.of(r.tickets[v.ticket] for v in r.visits
                    if v.ahead == "booked" and v.arrival == "late" and v.ticket)
    assert late.mean > on_time.mean


def test_no_slot_is_booked_over_its_capacity_and_full_slots_move_residents_on(catalog):
    base = layout("mixed", catalog, 6)
    lines = sorted({i.line for i in catalog.items.values()})
    config = dataclasses.replace(base.config, booking=BookingRules(
        capacity=tuple((line, 1) for line in lines)))
    lay = dataclasses.replace(base, config=config)
    model = AheadModel(share=0.4)  # many more bookings than 1 a line a slot holds
    eng, r, _ = _run(catalog, lay, 1.0, seed=3, model=model)
    m = r.metrics()
    per_slot = Counter((b.line, b.slot) for b in eng.centre.bookings.values()
                       if b.state != booking.CANCELLED)
    assert per_slot and max(per_slot.values()) == 1
    assert m.booked == len(per_slot)
    assert all(b.day == DAY_ID for b in eng.centre.bookings.values())
    assert r.extra["ahead"]["moved"] > 0  # a full slot: the next free one of the day
    assert m.booking_full > 0  # ... or none left: they came as walk-ins
    booked = [v for v in r.visits if v.ahead == "booked"]
    assert len(booked) == m.booked and all(v.booking and v.slot for v in booked)


def test_remote_residents_called_before_they_come_miss_their_call(catalog):
    # A quiet day: the windows reach a remote ticket before its resident is there unless
    # the "near" notice brought them; those who never come end as no-shows.
    lay = layout("mixed", catalog, 6)
    model = AheadModel(share=0.0, remote=0.5, remote_miss=0.2)
    _, r, _ = _run(catalog, lay, 0.3, seed=4, model=model)
    m = r.metrics()
    remote = [v for v in r.visits if v.ahead == "remote"]
    assert m.remote == len(remote) > 10 and m.booked == 0
    missed = [v for v in remote if v.absent >= 99]
    assert len(missed) == m.remote_missed > 0
    assert all(v.outcome == "no_show" for v in missed)
    assert m.notices_near > 0


def test_onewindow_sim_prints_the_days_bookings(catalog, capsys):
    from onewindow.hub.sim import cli

    r = cli.run_one(catalog, DAY, Weather(), "mixed", 6, 2, 0.6, bookings=AheadModel())
    out = capsys.readouterr().out
    m = r.metrics()
    assert f"bookings: {m.booked:.0f} booked, {m.checked_in:.0f} checked in" in out
    assert f"remote tickets: {m.remote:.0f} ({m.remote_missed:.0f} never came)" in out
    assert f"booked (from check-in) {m.appointment_wait:.1f} min" in out


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        AheadModel(share=1.5)
    with pytest.raises(ValueError):
        AheadModel(early=0.5, late=0.4, no_show=0.2)
    with pytest.raises(ValueError):
        AheadModel(remote_lead=(30.0, 10.0))
