"""Issue 16's figure on the simulator: a day at 120 % of the centre's capacity. Without
admission control residents are still waiting at closing and are served after it; with
"stop" (the hub's own decision on the hub's own wait estimate, hub/sim/admission.py) nobody
is: the refused go away offered a booking. "warn" lies between, with the documented share
of the warned leaving. The same residents in each mode.

"stop" judges near the central estimate (the 60th percentile of the wait, [admission]
stop_quantile), not on the slow end of the interval as "warn" does: on the slow end it
turned away well more residents than the real excess (those the windows do not reach before
closing without admission control). Measured here on three days: nobody waits past closing,
and the number turned away is within a quarter above that excess and below what judging on
the slow end turns away. The figures are printed (pytest -s) for the report."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.catalog import load_catalog
from onewindow.hub.forecast import admission as adm
from onewindow.hub.forecast.wait import Estimate
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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stop_turns_away_about_the_real_excess_and_leaves_nobody_past_closing(seed):
    catalog = load_catalog()
    cap = capacity(catalog, WINDOWS, DAY, seed=seed)
    off = overloaded_day(catalog, WINDOWS, DAY, "off", 1.2, seed=seed, cap=cap)
    stop = overloaded_day(catalog, WINDOWS, DAY, "stop", 1.2, seed=seed, cap=cap)
    high = overloaded_day(catalog, WINDOWS, DAY, "stop", 1.2, seed=seed, cap=cap,
                          stop_quantile=adm.HIGH)
    excess = off.waiting_at_close  # the residents the windows did not reach by closing
    print(f"seed {seed}: capacity {cap}, arrivals {off.visits}, real excess {excess}; "
          f"stop (q={adm.STOP_QUANTILE}) turned away {stop.turned_away}, waiting at "
          f"closing {stop.waiting_at_close}, served after {stop.served_after_close}; "
          f"judged on the slow end (q={adm.HIGH}) turned away {high.turned_away}")
    assert off.visits == stop.visits == high.visits and excess > 0
    assert stop.waiting_at_close == 0 and stop.served_after_close == 0
    assert excess <= stop.turned_away <= 1.25 * excess
    assert stop.turned_away < high.turned_away  # the slow end refused more than needed


def test_the_judging_quantile_of_each_mode_and_bad_ones():
    e = Estimate(20.0, 21.0, 10.0, 40.0, 10.0, 40.0)  # median 20, 80 % interval 10-40
    assert adm.wait_at(e, 0.5) == 20.0 and adm.wait_at(e, 0.1) == 10.0
    assert adm.wait_at(e, 0.9) == 40.0 and adm.wait_at(e, 0.6) == pytest.approx(25.0)
    assert adm.quantile_for("warn") == adm.HIGH and adm.quantile_for("stop") == 0.6
    assert adm.quantile_for("stop", 0.5) == 0.5
    opening = (0.0, 30 * 60.0)  # closing in 30 minutes
    assert adm.decide(0.0, e, opening) == adm.LATE  # the slow end: 40 min
    assert adm.decide(0.0, e, opening, adm.quantile_for("stop")) == adm.OK  # 25 min
    for bad in (0.0, 0.95, True, "0.5"):
        with pytest.raises(ValueError):
            adm.quantile_for("stop", bad)  # type: ignore[arg-type]


def test_onewindow_sim_admission_prints_the_figure_and_refuses_bad_settings():
    from typer.testing import CliRunner

    from onewindow.hub.cli import app

    run = CliRunner().invoke
    r = run(app, ["sim", "--admission", "--day", "2026-11-25", "--windows", "2",
                  "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "real excess (left waiting at closing without admission control)" in r.output
    modes = [line.split("│")[1].strip() for line in r.output.splitlines()
             if line.count("│") == 8]
    assert modes == ["off", "warn", "stop", "stop q=0.9"], r.output
    bad = run(app, ["sim", "--admission", "--stop-quantile", "0.95"])
    assert bad.exit_code != 0 and "--stop-quantile" in bad.output
