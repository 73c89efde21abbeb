"""Issue 16's figure on the simulator: a day at 120 % of the centre's capacity. Without
admission control residents are still waiting at closing and are served after it; with
"stop" (the hub's own decision on the hub's own wait estimate, hub/sim/admission.py) nobody
is: the refused go away offered a booking. "warn" lies between, with the documented share
of the warned leaving. The same residents in each mode."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.sim.admission import SimAdmission, capacity, overloaded_day
from onewindow.hub.sim.engine import Engine
from onewindow.hub.sim.model import Weather
from onewindow.hub.sim.policies import layout

DAY = dt.date(2026, 11, 25)  # a Wednesday, 09:00-17:00
WINDOWS = 6


@pytest.fixture(scope="module")
def days():
    catalog = load_catalog()
    cap = capacity(catalog, WINDOWS, DAY, seed=1)
    return cap, {mode: overloaded_day(catalog, WINDOWS, DAY, mode, 1.2, seed=1, cap=cap)
                 for mode in ("off", "warn", "stop")}


def test_a_day_at_120_percent_with_stop_leaves_nobody_waiting_past_closing(days):
    cap, m = days
    off, stop = m["off"], m["stop"]
    assert off.visits == stop.visits and off.visits >= 1.1 * cap  # the same overloaded day
    # without admission control: residents waiting at closing, served after it
    assert off.waiting_at_close > 0 and off.served_after_close > 0
    assert off.turned_away == 0
    # with "stop": nobody
    assert stop.waiting_at_close == 0 and stop.served_after_close == 0
    assert stop.expired == 0
    # those turned away were at least the overload beyond what the windows served
    assert stop.turned_away >= stop.visits - cap
    assert stop.served + stop.turned_away + stop.no_show <= stop.visits


def test_warn_lets_the_warned_choose_and_stops_nobody(days):
    _, m = days
    warn, off = m["warn"], m["off"]
    assert warn.turned_away == 0 and warn.left_warned > 0
    assert warn.waiting_at_close < off.waiting_at_close


def test_off_asks_nobody_and_bad_settings_are_refused():
    catalog = load_catalog()
    a = SimAdmission("off")
    eng = Engine(catalog, layout("mixed", catalog, 2), admission=a)
    eng.run_day(DAY, Weather(), 0, scale=0.2)
    assert a.verdicts == {}
    with pytest.raises(ValueError):
        SimAdmission("maybe")
    with pytest.raises(ValueError):
        SimAdmission("warn", leave_share=1.5)
