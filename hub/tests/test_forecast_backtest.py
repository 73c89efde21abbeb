"""The forecast's evaluation computes what it says (WAPE, baselines, windows, coverage) on series
with a known answer, and holiday calendars plug in (issue 19). Small and fast: no downloads."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from onewindow.hub.cli import app
from onewindow.hub.forecast import backtest
from onewindow.hub.forecast.arrivals import (
    ArrivalForecaster,
    Counts,
    Day,
    evaluate,
    load_counts,
    load_weather,
)
from onewindow.hub.forecast.calendars import CalendarError, HolidayCalendar, from_config

MONDAY = dt.date(2025, 3, 3)
LEVEL = {0: 120.0, 1: 100.0, 2: 90.0, 3: 80.0, 4: 110.0}  # per weekday, split over 2 slots


def weekday_series(weeks: int, spike: dt.date | None = None) -> Counts:
    """Weeks of Monday-Friday days, each weekday always the same counts; `spike` doubled."""
    days = []
    for k in range(weeks * 7):
        d = MONDAY + dt.timedelta(days=k)
        if d.weekday() < 5:
            v = LEVEL[d.weekday()] * (2 if d == spike else 1)
            days.append(Day(d, [v * 0.25, v * 0.75]))
    return Counts(["09:00", "09:30"], days)


def test_baselines_and_wape_have_the_known_answer():
    # 10 weeks; the Wednesday before the held-out (last) week is doubled.
    last_monday = MONDAY + dt.timedelta(weeks=9)
    counts = weekday_series(10, spike=last_monday - dt.timedelta(days=5))
    res = backtest.run(counts, HolidayCalendar.parse("US"), weeks=1)
    assert [r.date for r in res] == [last_monday + dt.timedelta(days=k) for k in range(5)]
    wed = res[2]
    # The same-weekday mean of the 8 weeks before: seven 90s and one 180; the seasonal naive
    # is last week's Wednesday: 180.
    assert sum(wed.forecast["same-weekday mean"]) == pytest.approx(90 * 9 / 8)
    assert wed.forecast["seasonal naive"] == [45.0, 135.0]
    total = sum(LEVEL.values())
    assert backtest.wape(res, "same-weekday mean") == pytest.approx(90 / 8 / total)
    assert backtest.wape(res, "seasonal naive") == pytest.approx(90 / total)
    # Per slot the errors split 1:3 and add up to the same.
    assert backtest.wape(res, "seasonal naive", "slot") == pytest.approx(90 / total)
    # Every other day both baselines are exact.
    for r in res[:2] + res[3:]:
        assert r.forecast["seasonal naive"] == r.actual == r.forecast["same-weekday mean"]


def test_windows_and_coverage_are_counted_by_hand():
    def result(monday: dt.date, actual: float, model: float, base: float) -> backtest.DayResult:
        return backtest.DayResult(monday, monday, [actual], {
            "model": [model], "same-weekday mean": [base], "seasonal naive": [base]},
            (actual - 1, actual + 1) if model == actual else (0.0, 1.0),
            [(actual - 1, actual + 1)])

    mondays = [MONDAY + dt.timedelta(weeks=k) for k in range(10)]
    # The model is exact except in week 9 (error 50 on 100); the baseline is always off by 10.
    res = [result(m, 100, 150 if k == 9 else 100, 110) for k, m in enumerate(mondays)]
    ws = backtest.windows(res)
    assert [w[0] for w in ws] == mondays[:3]  # 3 runs of 8 weeks in 10
    assert ws[0][1:] == (0.0, pytest.approx(0.1))
    assert ws[2][1:] == (pytest.approx(50 / 800), pytest.approx(0.1))
    assert backtest.worst_window(res) == ws[2]
    assert backtest.interval_coverage(res) == (pytest.approx(0.9), 1.0)


def test_the_model_beats_the_baseline_on_a_level_shift_and_its_intervals_cover():
    # 20 weeks at one level, then 4 weeks 30 % higher: the recent level follows, the
    # 8-week mean lags.
    counts = weekday_series(24)
    for d in counts.days:
        if d.date >= MONDAY + dt.timedelta(weeks=20):
            d.counts = [c * 1.3 for c in d.counts]
    res = backtest.run(counts, HolidayCalendar.parse("US"), weeks=2)
    s = backtest.summarize(res)
    assert s.wape["model", "day"] < 0.6 * s.wape["same-weekday mean", "day"]


def test_days_past_the_end_of_the_data_are_not_closed_days():
    counts = weekday_series(30)  # ends on a Friday: that weekend is unknown, not closed
    ev = evaluate(counts, weeks=4)
    assert ev.closed_days == 2 * 3


def test_a_hong_kong_holiday_is_closed_for_an_hk_centre():
    d = dt.date(2024, 7, 1)  # 香港特別行政區成立紀念日, a Monday
    hk, cn = HolidayCalendar.parse("HK"), HolidayCalendar.parse("CN")
    assert not hk.workday(d) and hk.flags(d).holiday
    assert cn.workday(d)
    assert hk.flags(d + dt.timedelta(days=1)).post_holiday
    history = Counts(["09:00"], [Day(MONDAY + dt.timedelta(days=k), [10.0]) for k in range(40)])
    from onewindow.hub.sim.model import Weather

    assert ArrivalForecaster.fit(history, hk).forecast(d, Weather()) == [0.0]
    assert ArrivalForecaster.fit(history, cn).forecast(d, Weather())[0] > 0


def test_a_series_counted_on_holidays_learns_they_are_low(tmp_path):
    # Every day counted (a pedestrian counter): US holidays at 40 % of the usual 10,000. The
    # file has no calendar columns: the flags come from the calendar given.
    # Christmas, seen twice, at 20 %: it gets a multiplier of its own.
    us = HolidayCalendar.parse("US")
    rows = ["date,slot,count"]
    for k in range(730):
        d = dt.date(2023, 1, 2) + dt.timedelta(days=k)
        name = us.flags(d).holiday
        rows.append(f"{d},09:00,{(2000 if name == 'Christmas Day' else 4000) if name else 10000}")
    p = tmp_path / "c.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    counts = load_counts(p, us)
    fc = ArrivalForecaster.fit(counts, us, level_weeks=0)
    assert fc.effects()["holiday"] == pytest.approx(0.4, rel=0.1)  # Christmas shrunk to it
    assert fc.effects()["weekday_Sat"] == pytest.approx(1.0, rel=0.05)
    by_date = {d.date: d for d in counts.days}
    assert fc.predict(by_date[dt.date(2024, 12, 25)])[0] == pytest.approx(2000, rel=0.1)
    assert fc.predict(by_date[dt.date(2024, 7, 4)])[0] == pytest.approx(4000, rel=0.05)


def test_a_mainland_adjusted_saturday_is_a_workday():
    sat = dt.date(2024, 5, 11)  # 劳动节调休: a working Saturday
    cn = HolidayCalendar.parse("CN")
    f = cn.flags(sat)
    assert sat.weekday() == 5 and f.workday and f.adjusted_workday
    assert not cn.workday(dt.date(2024, 5, 1))
    assert not HolidayCalendar.parse("HK").flags(sat).adjusted_workday


def test_calendar_codes_and_config(tmp_path):
    assert HolidayCalendar.parse("nz-auk").code == "NZ-AUK"
    with pytest.raises(CalendarError, match="XX"):
        HolidayCalendar.parse("XX")
    cfg = tmp_path / "centre.toml"
    cfg.write_text('[forecast]\nholidays = "TW"\n', encoding="utf-8")
    assert from_config(cfg).code == "TW"
    assert from_config(None).code == "CN"
    cfg.write_text('[forecast]\nholiday = "TW"\n', encoding="utf-8")
    with pytest.raises(CalendarError, match="holiday"):
        from_config(cfg)


def test_snow_in_a_weather_file_is_an_error_not_dry(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("date,rain,temp_c\n2026-12-07,snow,-2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="snow"):
        load_weather(p)
    p.write_text("date,rain,temp_c\n2026-12-07,rain,3\n2026-12-08,0,3\n", encoding="utf-8")
    w = load_weather(p)
    assert w[dt.date(2026, 12, 7)].rain and not w[dt.date(2026, 12, 8)].rain


def test_plan_holidays_option_is_checked(tmp_path):
    counts = tmp_path / "c.csv"
    counts.write_text("date,slot,count\n2026-11-23,09:00,3\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["plan", "--evaluate", str(counts), "--holidays", "XX"])
    assert r.exit_code == 2 and "--holidays" in r.output and "XX" in r.output


def test_plan_with_snow_in_the_weather_file_is_one_line_and_plans_nothing(tmp_path):
    from onewindow.hub.forecast.arrivals import synthetic_days
    from onewindow.hub.sim.history import write_csv

    write_csv(synthetic_days(dt.date(2026, 9, 1), dt.date(2026, 11, 23), seed=2),
              tmp_path / "d.csv", tmp_path / "h.csv")
    (tmp_path / "w.csv").write_text("date,rain,temp_c\n2026-12-01,snow,-3\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["plan", "--history", str(tmp_path / "h.csv"), "--weather",
                                 str(tmp_path / "w.csv"), "--week", "2026-12-01", "--out",
                                 str(tmp_path / "plan")])
    assert r.exit_code == 2 and "snow" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "plan").exists()
