"""The wait evaluation (python -m onewindow.hub.forecast.evaluate_wait): the seeds the
interval's levels are tuned on and the held-out ones it reports on never meet, the report's
format, and the split conformal arithmetic it tunes the interval's factors with. The full
grid's table is in docs/forecast.md."""

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.forecast import evaluate_wait as ev
from onewindow.hub.forecast.wait import (
    BANDS,
    FACTORS,
    LOAD_EDGES,
    SIZE_EDGES,
    SLACK,
    WaitPredictor,
    layout_kind,
    size_class,
)
from onewindow.hub.sim.policies import layout

ROW = re.compile(r"^\| (comprehensive|mixed|dedicated) \| (\d+) \| ([\d.]+) \| (\d+) \| "
                 r"([\d.]+) \| (\d+)% \| ([\d.]+)% \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| "
                 r"([\d.]+|-) \| ([\d.]+|-) \| ([\d.]+|-) \|$")


def _range(text: str) -> set[int]:
    a, _, b = text.partition("-")
    return set(range(int(a), int(b or a) + 1))


def test_the_quick_evaluation_reports_held_out_seeds_only_in_its_format():
    out = subprocess.run(
        [sys.executable, "-m", "onewindow.hub.forecast.evaluate_wait", "--quick"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    head = re.search(r"^Wait prediction on held-out seeds (\S+) .*; tuning seeds (\S+), "
                     r"held-out seeds (\S+): disjoint$", out, re.M)
    assert head, out
    used, tuning, held_out = (_range(g) for g in head.groups())
    assert used <= held_out and not used & tuning
    # the warm-up day before each set's first seed is in neither of the other's
    assert not ({min(tuning) - 1} | tuning) & ({min(held_out) - 1} | held_out)
    rows = [m for m in map(ROW.match, out.splitlines()) if m]
    assert len(rows) == 1, out
    (layout, windows, load, n, wait, at_once, cov, mae, naive, ratio, se, early,
     spread) = rows[0].groups()
    assert se == "-"  # one day: no spread over days to judge it by
    # the first days' coverage is the whole coverage (one day), that day's distance from 80
    assert early == cov and float(spread) == pytest.approx(abs(float(cov) - 80), abs=0.06)
    assert (layout, windows, load) == ("mixed", "4", "0.9") and int(n) > 50
    assert float(wait) >= 0 and 0 <= int(at_once) <= 100
    assert 0 <= float(cov) <= 100 and float(mae) >= 0 and float(naive) > 0
    assert abs(float(ratio) - float(mae) / float(naive)) < 0.01
    for group in ("mixed", "4 windows", "load 0.9", "all"):
        assert re.search(rf"^\| {group} \| 1 \| {n} \| {cov}% \| {ratio} \|$", out, re.M), group
    assert re.search(r"^cells with coverage within 78-82%: [01] of 1 ", out, re.M)


def test_the_split_is_fixed_and_disjoint():
    tuning, held_out = ev.split()
    assert tuning == ev.TUNING_SEEDS and held_out == ev.HELD_OUT_SEEDS
    assert not ev.with_warmup(tuning) & ev.with_warmup(held_out)
    assert len(tuning) >= 4
    # A cell's coverage varies ~6 points from day to day (its waits miss together), so the
    # report needs many days per cell for its standard error to sit well inside 78-82%;
    # whole weeks, so that every weekday counts alike.
    assert len(held_out) >= 30 and len(held_out) % 5 == 0 and len(tuning) % 5 == 0


def test_a_cells_standard_error_takes_the_day_as_the_unit():
    # four days of 100 tickets at 70, 90, 70, 90% inside: 80% with the days' spread,
    # however many tickets (a binomial SE over tickets would be 2 points)
    cell = ev.Cell("mixed", 4, 0.9, n=400, inside=320,
                   daily=[(100, 70), (100, 90), (100, 70), (100, 90)])
    assert cell.coverage == 0.8
    assert abs(cell.se - 0.10 / 4 ** 0.5 * (4 / 3) ** 0.5) < 1e-12
    more = ev.Cell("mixed", 4, 0.9, n=4000, inside=3200,
                   daily=[(1000, 700), (1000, 900), (1000, 700), (1000, 900)])
    assert abs(more.se - cell.se) < 1e-12
    # days of unequal size: the ratio estimator's, the big days weighing more
    uneven = ev.Cell("mixed", 4, 0.9, n=300, inside=230, daily=[(200, 170), (100, 60)])
    c, nbar = 230 / 300, 150.0
    want = (((170 - c * 200) ** 2 + (60 - c * 100) ** 2) / (2 * 1 * nbar ** 2)) ** 0.5
    assert abs(uneven.se - want) < 1e-12
    assert np.isnan(ev.Cell("mixed", 4, 0.9, n=100, inside=80, daily=[(100, 80)]).se)


def test_a_cells_first_days_and_a_days_distance_from_80_are_its_days_own():
    daily = [(100, 70)] * ev.EARLY + [(300, 249)] * 5
    cell = ev.Cell("mixed", 4, 0.9, n=sum(n for n, _ in daily),
                   inside=sum(i for _, i in daily), daily=daily)
    assert cell.part(slice(ev.EARLY)) == pytest.approx(0.7)
    assert cell.part(slice(ev.EARLY, None)) == pytest.approx(0.83)
    # the mean over days, each day weighing the same whatever its tickets
    want = (ev.EARLY * 0.10 + 5 * 0.03) / (ev.EARLY + 5)
    assert cell.day_spread == pytest.approx(want)
    assert np.isnan(ev.Cell("mixed", 4, 0.9).part(slice(ev.EARLY)))


def test_the_report_prints_each_cells_days_and_their_standard_error():
    out = subprocess.run(
        [sys.executable, "-m", "onewindow.hub.forecast.evaluate_wait", "--layouts", "mixed",
         "--sizes", "4", "--loads", "0.8", "--days", "3", "--jobs", "1"],
        capture_output=True, text=True, timeout=240, check=True).stdout
    assert re.search(r"^Wait prediction on held-out seeds 9000-9002 \(days per cell: 3,", out,
                     re.M), out
    (row,) = [m for m in map(ROW.match, out.splitlines()) if m]
    se = float(row.group(11))
    assert 0 < se < 20
    assert row.group(12) == row.group(7)  # three days: the first ten are all of them
    m = re.search(r"^day-to-day standard error of a cell's coverage over its 3 days: median "
                  r"([\d.]+), max ([\d.]+) points; a predictor at exactly 80% in every cell "
                  r"would have ([\d.]+) of 1 within 78-82%", out, re.M)
    assert m and float(m[1]) == float(m[2]) and abs(float(m[1]) - se) < 0.06, out
    assert 0 < float(m[3]) <= 1
    # the M/M/s comparison stays on a few seeds whatever the grid's days
    assert re.search(r"^M/M/s .*seeds 9000-9002\)", out, re.M), out


def _q80(needed: list[float], factor: float) -> bool:
    """`factor` is the 80% quantile of `needed` (to 4 decimals)."""
    u = np.array(needed)
    return bool(np.mean(u <= factor + 1e-4) >= 0.8 >= np.mean(u < factor - 1e-4))


def test_tuning_on_a_tiny_grid_learns_one_factor_per_band_and_load_class():
    cells = ev.grid(("comprehensive",), (4,), (0.9,), ev.TUNING_SEEDS[:1], jobs=1, tune=True)
    (cell,) = cells
    assert len(cell.needed) == len(BANDS) + 1
    assert all(len(r) == len(LOAD_EDGES) + 1 for r in cell.needed)
    assert sum(len(x) for r in cell.needed for x in r) > 50
    few = 20  # one small day: fewer waits per class than the grid's MIN_WAITS
    factors = ev.tune_factors(cells, min_waits=few)
    assert len(factors) == len(BANDS) + 1
    assert all(len(r) == len(LOAD_EDGES) + 1 and min(r) >= 0.0 for r in factors)
    # each (band, load class) with enough tuning waits gets the 80% quantile of what they
    # needed; one with fewer, the band's over every load class
    classes = sparse = 0
    for b, row in enumerate(cell.needed):
        band = [u for x in row for u in x]
        for k, needed in enumerate(row):
            if len(needed) >= few:
                assert _q80(needed, factors[b][k]), (b, k)
                classes += 1
            elif band:
                assert _q80(band, factors[b][k]), (b, k)
                sparse += 1
    assert classes >= 2 and sparse >= 1  # both kinds are checked on this day
    # and the predictor's own table has one factor per size, band and load class for
    # every kind of layout
    assert set(FACTORS) == set(ev.LAYOUT_GRID)
    assert all(len(v) == len(SIZE_EDGES) + 1 and all(
        len(t) == len(BANDS) + 1 and all(len(r) == len(LOAD_EDGES) + 1 for r in t) for t in v)
        for v in FACTORS.values())


def _cell(windows: int, needed: dict[tuple[int, int], list[float]]) -> ev.Cell:
    cell = ev.Cell("mixed", windows, 0.9)
    cell.needed = [[list(needed.get((b, k), [])) for k in range(len(LOAD_EDGES) + 1)]
                   for b in range(len(BANDS) + 1)]
    return cell


def test_each_size_class_gets_its_own_factors_where_it_has_the_waits():
    rng = np.random.default_rng(7)
    small = _cell(4, {(1, 0): list(rng.uniform(0, 1, 300)), (2, 1): list(rng.uniform(0, 2, 50))})
    big = _cell(16, {(1, 0): list(rng.uniform(0, 3, 300)), (2, 1): list(rng.uniform(0, 4, 300))})
    tables = ev.tune_sized([small, big], target=0.8, min_waits=100)
    assert len(tables) == len(SIZE_EDGES) + 1
    every = ev.tune_factors([small, big], target=0.8, min_waits=100)
    s, b = size_class_of(4), size_class_of(16)
    assert _q80(small.needed[1][0], tables[s][1][0])  # its own waits
    assert _q80(big.needed[1][0], tables[b][1][0]) and tables[b][1][0] > tables[s][1][0]
    assert _q80(big.needed[2][1], tables[b][2][1])
    # too few of its own (50 < 100): the layout's factor over every size
    assert tables[s][2][1] == every[2][1]
    # a size class with no cell at all: the layout's whole table
    for k in set(range(len(SIZE_EDGES) + 1)) - {s, b}:
        assert tables[k] == every
    # and the tuning target is the one --tune writes with
    assert 0.8 <= ev.TUNE_TARGET <= 0.82


def size_class_of(windows: int) -> int:
    return size_class(CentreConfig("c", tuple(WindowSpec(n + 1) for n in range(windows))))


def test_each_simulated_layout_reads_its_own_factors():
    catalog = load_catalog()
    for name in ev.LAYOUT_GRID:
        for k, n in enumerate(ev.SIZE_GRID):  # one size class each
            centre = Centre(catalog, layout(name, catalog, n).config)
            assert layout_kind(centre.config) == name and size_class(centre.config) == k
            p = WaitPredictor()
            p.update(centre, 0.0)
            assert p._factors == FACTORS[name][k]
    assert [size_class_of(n) for n in (1, 5, 6, 9, 10, 13, 14, 40)] == [0, 0, 1, 1, 2, 2, 3, 3]
    # a centre configured with plain windows (every item at every window) is comprehensive
    assert layout_kind(CentreConfig("c", (WindowSpec(1), WindowSpec(2)))) == "comprehensive"


def interval(med: float, lo: float, hi: float, s: float) -> tuple[float, float]:
    """The predictor's interval with factor `s` (wait.WaitPredictor._summary)."""
    return max(0.0, med - s * (med - lo + SLACK)), med + s * (hi - med + SLACK)


@given(st.floats(0, 90), st.floats(0, 30), st.floats(0, 30), st.floats(0, 150))
def test_the_factor_needed_is_the_smallest_that_puts_the_wait_inside(med, dlo, dhi, wait):
    lo, hi = max(0.0, med - dlo), med + dhi
    s = ev.needed(med, lo, hi, wait)
    a, b = interval(med, lo, hi, s * (1 + 1e-9) + 1e-12)
    assert a <= wait <= b
    if s > 1e-6:
        a, b = interval(med, lo, hi, s * (1 - 1e-6))
        assert not a <= wait <= b


def test_the_online_step_is_checked_and_on_as_the_hub_runs():
    out = subprocess.run(
        [sys.executable, "-m", "onewindow.hub.forecast.evaluate_wait", "--quick", "--eta", "6"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--eta must be within 0..5" in out.stderr
    # the evaluation's default is the hub's: the calibration by day, on
    from onewindow.hub.forecast import wait

    assert ev.ETA == wait.ETA == 1.0
