"""Stage 5 staffing plan: arrival forecast (known effects recovered, WAPE near the Poisson
floor), Erlang C, the simulation check, the counts CSV, `onewindow plan`."""

import datetime as dt
import math
import xml.dom.minidom

import pytest
from typer.testing import CliRunner

from onewindow.hub.catalog import load_catalog
from onewindow.hub.cli import app
from onewindow.hub.forecast.arrivals import (
    ArrivalForecaster,
    counts_from_days,
    evaluate,
    load_counts,
    load_weather,
    poisson_mad,
    synthetic_days,
)
from onewindow.hub.forecast.staffing import (
    erlang_c,
    erlang_windows,
    mean_queue,
    plan_day,
    service_level,
    sqrt_beta,
)
from onewindow.hub.sim.engine import DayOptions, Engine
from onewindow.hub.sim.history import write_csv
from onewindow.hub.sim.model import DEFAULT_SHAPE, ArrivalModel, Weather
from onewindow.hub.sim.policies import layout

TRUTH = ArrivalModel()


@pytest.fixture(scope="module")
def history():
    return synthetic_days(dt.date(2024, 1, 1), dt.date(2026, 11, 23), seed=3)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_fitted_effects_recover_the_known_ones(history):
    fc = ArrivalForecaster.fit(counts_from_days(history))
    e = fc.effects()
    wed = TRUTH.weekday[2]
    assert e["base_daily"] == pytest.approx(TRUTH.base_daily, rel=0.03)
    for k, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri")):
        assert e[f"weekday_{name}"] == pytest.approx(TRUTH.weekday[k] / wed, abs=0.03), name
    assert e["rain"] == pytest.approx(TRUTH.rain, abs=0.02)
    assert e["post_holiday"] == pytest.approx(TRUTH.post_holiday, abs=0.06)
    assert e["adjusted_workday"] == pytest.approx(TRUTH.adjusted_workday * 1.0 / wed, abs=0.07)
    assert e["heat_per_deg"] == pytest.approx(1 - TRUTH.heat_per_deg, abs=0.012)
    assert e["cold_per_deg"] == pytest.approx(1 - TRUTH.cold_per_deg, abs=0.012)
    total = sum(DEFAULT_SHAPE)
    for p, s in zip(fc.profile, DEFAULT_SHAPE, strict=True):
        assert p == pytest.approx(s / total, rel=0.06)


def test_daily_wape_within_one_and_a_half_poisson_floors(history):
    ev = evaluate(counts_from_days(history), weeks=20)
    assert ev.truth
    day = ev.model["all", "day"]
    floor = ev.floor["all", "day"]
    assert day.n >= 80
    assert day.wape <= 1.5 * floor.wape
    assert day.wape < ev.baseline["all", "day"].wape  # better than the same-weekday mean
    assert ev.model["holiday-affected", "day"].n > 0  # reported apart
    half = ev.model["all", "half-hour"]
    assert half.wape <= 1.5 * ev.floor["all", "half-hour"].wape


def test_poisson_mean_absolute_deviation():
    # E|X - 1| for Poisson(1) = 2/e; large lambda: sqrt(2 lambda / pi)
    assert poisson_mad(1.0) == pytest.approx(2 / math.e)
    assert poisson_mad(400.0) == pytest.approx(math.sqrt(2 * 400 / math.pi), rel=0.01)


def test_arrivals_are_drawn_poisson_in_busy_half_hours_too():
    """The plan's check and the simulator draw arrival counts with sim.model.poisson; at
    40 a half-hour (a busy centre) the counts follow Poisson's law, right tail included."""
    import random
    from collections import Counter

    from onewindow.hub.sim.model import poisson

    lam, n = 40.0, 50_000
    rng = random.Random(7)
    seen = Counter(poisson(rng, lam) for _ in range(n))
    law = {k: math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) for k in range(200)}
    assert 0.5 * sum(abs(seen[k] / n - p) for k, p in law.items()) < 0.014  # normal: ~0.02
    busy = sum(p for k, p in law.items() if k >= 53)  # P(X >= mean + 2 sd) = 0.028
    assert sum(v for k, v in seen.items() if k >= 53) / n == pytest.approx(busy, abs=0.002)


def test_erlang_c_textbook_values():
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)  # M/M/3, a = 2
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    # The call-centre example: 100 calls per 30 minutes, 3 minutes each (a = 10 erlangs),
    # answer 80% within 20 seconds: 11 agents wait 68.21%, service level 39%; 14 needed.
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-5)
    assert service_level(11, 10.0, 3.0, 20 / 60) == pytest.approx(0.3896, abs=5e-4)
    assert erlang_windows(100 / 30, 3.0, 20 / 60, level=0.8) == 14
    assert mean_queue(3, 2.0) == pytest.approx(8 / 9)
    assert sqrt_beta(14, 10.0) == pytest.approx(4 / math.sqrt(10))
    assert erlang_c(10, 10.0) == 1.0


def test_engine_follows_a_schedule(catalog):
    lay = layout("comprehensive", catalog, 6)
    eng = Engine(catalog, lay)
    sched = (2, 2, 4) + (6,) * 13
    r = eng.run_day(dt.date(2026, 11, 25), Weather(), seed=1, scale=0.3,
                    options=DayOptions(schedule=sched))
    open_at = r.opened
    for ts, _waiting, wins in r.monitor.series:
        if open_at + 120 < ts < open_at + 3600:
            assert wins <= 2
    assert max(w for ts, _, w in r.monitor.series if ts > open_at + 3600 + 60) == 6
    assert {v.outcome for v in r.visits} <= {"done", "incomplete", "no_show"}


def test_the_simulation_check_corrects_an_understaffed_half_hour(catalog, history):
    fc = ArrivalForecaster.fit(counts_from_days(history))
    d = dt.date(2026, 11, 25)
    expected = [x * 0.4 for x in fc.forecast(d, Weather())]
    first = plan_day(catalog, d, fc.slots, expected, seeds=1, max_rounds=0)
    cut = list(first.erlang)
    k = 2  # 10:00: leave the peak short of windows
    cut[k] = max(3, cut[k] - 3)
    cut[k + 1] = max(3, cut[k + 1] - 3)
    p = plan_day(catalog, d, fc.slots, expected, seeds=2, first_cut=cut)
    assert p.met and p.rounds >= 1
    assert p.windows[k] > cut[k]
    assert all(c.met(20.0) for c in p.checks)
    assert all(w >= c for w, c in zip(p.windows, cut, strict=True))


def test_counts_csv_round_trip(tmp_path, history):
    write_csv(history[-120:], tmp_path / "d.csv", tmp_path / "h.csv")
    got = load_counts(tmp_path / "h.csv")
    want = counts_from_days(history[-120:])
    assert got.slots == want.slots
    assert [(x.date, x.counts, x.adjusted_workday, x.post_holiday, x.rain, x.temp_c)
            for x in got.days] == [(x.date, x.counts, x.adjusted_workday, x.post_holiday,
                                    x.rain, x.temp_c) for x in want.days]
    # Any source: only date,slot,count; the calendar flags come from chinese-calendar.
    lines = (tmp_path / "h.csv").read_text().splitlines()
    bare = ["date,slot,count"] + [",".join(x.split(",")[:3]) for x in lines[1:]]
    (tmp_path / "bare.csv").write_text("\n".join(bare) + "\n")
    b = load_counts(tmp_path / "bare.csv")
    assert [(x.date, x.counts, x.adjusted_workday, x.post_holiday) for x in b.days] == \
        [(x.date, x.counts, x.adjusted_workday, x.post_holiday) for x in want.days]
    (tmp_path / "w.csv").write_text("date,rain,temp_c\n2026-11-30,1,9.5\n2026-12-01,0,\n")
    assert load_weather(tmp_path / "w.csv") == {dt.date(2026, 11, 30): Weather(True, 9.5),
                                                 dt.date(2026, 12, 1): Weather(False, 20.0)}
    with pytest.raises(ValueError, match="half-hourly"):
        load_counts(tmp_path / "d.csv")


def test_cli_plan_and_evaluate(tmp_path):
    days = synthetic_days(dt.date(2025, 9, 1), dt.date(2026, 11, 23), seed=5)
    write_csv(days, tmp_path / "d.csv", tmp_path / "h.csv")
    (tmp_path / "w.csv").write_text("date,rain,temp_c\n2026-11-30,1,9\n2026-12-02,0,12\n")
    r = CliRunner().invoke(app, ["plan", "--history", str(tmp_path / "h.csv"), "--weather",
                                 str(tmp_path / "w.csv"), "--week", "2026-12-01", "--seeds",
                                 "1", "--out", str(tmp_path / "plan")])
    assert r.exit_code == 0, r.output
    assert "Windows per half-hour" in r.output and "Assumptions" in r.output
    assert "09:00" in r.output and "window-hours" in r.output
    xml.dom.minidom.parse(str(tmp_path / "plan" / "plan.svg"))
    rows = (tmp_path / "plan" / "plan.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 * 16  # Mon-Fri open, 16 half-hours each
    r = CliRunner().invoke(app, ["plan", "--evaluate", str(tmp_path / "h.csv"), "--weeks", "4"])
    assert r.exit_code == 0, r.output
    assert "WAPE" in r.output and "same-weekday" in r.output


def test_a_weekday_with_its_own_day_shape_is_forecast_with_it(tmp_path):
    """Real counts (a bank's calls, see tools/bench/real_counts.py) have a Monday-morning rush:
    each weekday keeps its own shape when its history shows one."""
    import random

    from onewindow.hub.forecast.arrivals import Counts, Day
    from onewindow.tools.bench.real_counts import half_hourly, write

    rng = random.Random(5)
    stamps, calls = [], []
    d = dt.date(2026, 3, 2)  # a Monday
    while d < dt.date(2026, 7, 3):
        if d.weekday() < 5:
            for hour in (9, 10, 11, 12):
                lam = 120 if (d.weekday() == 0 and hour == 9) else 60
                for minute in (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55):
                    stamps.append(f"{d.isoformat()}T{hour:02d}:{minute:02d}:00Z")
                    calls.append(sum(1 for _ in range(lam // 12 * 2) if rng.random() < 0.5))
        d += dt.timedelta(days=1)
    path = tmp_path / "calls.csv"
    write(half_hourly(stamps, calls), path)
    counts = load_counts(path)
    assert counts.slots[0] == "09:00" and len(counts.slots) == 8
    fc = ArrivalForecaster.fit(Counts(counts.slots, counts.days))
    monday = fc.expected(Day(dt.date(2026, 7, 6), [0.0] * 8))
    tuesday = fc.expected(Day(dt.date(2026, 7, 7), [0.0] * 8))
    # Monday 09:00-10:00 carries twice the load of any other hour; other days are flat
    assert sum(monday[:2]) / sum(monday[2:4]) == pytest.approx(2.0, rel=0.1)
    assert sum(tuesday[:2]) / sum(tuesday[2:4]) == pytest.approx(1.0, rel=0.1)
