"""The city monthly report's due days on the centre's holiday calendar (issue 20): a
promised case accepted just before China's National Day 2025 (1-8 October off, Sunday 28
September and Saturday 11 October worked instead, 调休) is due on the working days of the
centre's calendar, not on plain Monday-to-Friday days; a real PostgreSQL holds the records
as the ingester writes them, and the report reads them through its own queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from onewindow.hub.catalog import load_catalog
from onewindow.hub.city import citydb, dashboard, monthly
from onewindow.hub.cli import app as city_cli
from onewindow.tools.testkit.testbed import Postgres

TZ = dt.timezone(dt.timedelta(hours=8))
CITY = {"u": "ops", "role": "city", "district": None}


def at(d: dt.date, h: int = 10) -> float:
    return dt.datetime.combine(d, dt.time(h), TZ).timestamp()


def test_due_days_count_the_centre_s_holidays_and_make_up_days() -> None:
    cn = monthly.DueDays("CN")
    # Tuesday 30 September + 5 working days: 9, 10, 11 (Saturday worked), 13, 14 October.
    assert cn.add_workdays(dt.date(2025, 9, 30), 5) == dt.date(2025, 10, 14)
    # Friday 10 October + 1: Saturday the 11th is a working day (调休).
    assert cn.add_workdays(dt.date(2025, 10, 10), 1) == dt.date(2025, 10, 11)
    # Friday 26 September + 1: Sunday the 28th is worked, before Monday the 29th.
    assert cn.add_workdays(dt.date(2025, 9, 26), 1) == dt.date(2025, 9, 28)
    assert cn.add_workdays(dt.date(2025, 9, 30), 0) == dt.date(2025, 9, 30)
    # Hong Kong's calendar: 1 October and 7 October (the day after Mid-Autumn) off, its
    # weekend Sunday only: 2, 3, 4, 6, 8 October.
    assert monthly.DueDays("HK").add_workdays(dt.date(2025, 9, 30), 5) == dt.date(2025, 10, 8)
    assert monthly.DueDays(None).calendar.code == "CN"  # the default


def _case(centre: str, case: str, item: str, accepted: dt.date, decided: dt.date | None,
          pos: int) -> list[dict[str, Any]]:
    out = [{"v": 1, "centre": centre, "day": accepted.isoformat(), "pos": pos, "part": 0,
            "kind": "case", "at": at(accepted), "case": case, "action": "accepted",
            "item": item, "by": "alice"}]
    if decided is not None:
        out.append({"v": 1, "centre": centre, "day": decided.isoformat(), "pos": pos + 1,
                    "part": 0, "kind": "case", "at": at(decided, 15), "case": case,
                    "action": "approved", "by": "dept"})
    return out


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


def test_the_report_counts_a_case_across_national_day_on_the_centre_s_calendar(
        pg: Postgres, small_catalog_file: Path) -> None:
    catalog = load_catalog(small_catalog_file)
    assert catalog.item("SOC-2").promised_days == 5  # type: ignore[union-attr]
    sep30, oct13, oct15 = dt.date(2025, 9, 30), dt.date(2025, 10, 13), dt.date(2025, 10, 15)
    with citydb.connect(pg.url) as conn:
        citydb.create(conn)
        for c, code in (("m1", None), ("m2", "HK")):
            conn.execute("INSERT INTO city_centres (centre, name, district, holidays) VALUES "
                         "(%s, %s, 'east', %s)", (c, f"中心 {c}", code))
        recs = [
            # m1 (mainland calendar): due 14 October. Decided on the 13th: in time (on
            # plain weekdays it was due the 7th: overdue). Decided on the 15th: overdue.
            *_case("m1", "20250930-A001", "SOC-2", sep30, oct13, 0),
            *_case("m1", "20250930-A002", "SOC-2", sep30, oct15, 2),
            # Undecided, accepted Friday 10 October: due the 16th (the Saturday worked
            # counts): overdue at the month's end.
            *_case("m1", "20251010-A003", "SOC-2", dt.date(2025, 10, 10), None, 4),
            # m2 (Hong Kong): the same case decided on the 13th is late there (due the 8th).
            *_case("m2", "20250930-A001", "SOC-2", sep30, oct13, 0),
        ]
        assert citydb.write(conn, recs, set(), set()) == len(recs)
        today = dt.date(2025, 12, 1)
        got = monthly.case_counts(conn, CITY, dt.date(2025, 10, 1), catalog, today)
        assert got["m1"] == {"cases_accepted": 1, "cases_in_time": 1, "cases_overdue": 2}
        assert got["m2"] == {"cases_accepted": 0, "cases_in_time": 0, "cases_overdue": 1}
        # September: accepted there, nothing decided, nothing due yet by its end.
        sep = monthly.case_counts(conn, CITY, dt.date(2025, 9, 1), catalog, today)
        assert sep["m1"] == {"cases_accepted": 2, "cases_in_time": 0, "cases_overdue": 0}
        # The whole report carries the same figures.
        rows = {r["centre"]: r for r in dashboard.month_report(
            conn, CITY, dt.date(2025, 10, 1), catalog, today)}
        assert (rows["m1"]["cases_in_time"], rows["m1"]["cases_overdue"]) == (1, 2)
        # Asked on 14 October: the undecided case (due the 16th) is not late yet; the one
        # decided on the 15th is counted as it was decided in the month.
        early = monthly.case_counts(conn, CITY, dt.date(2025, 10, 1), catalog,
                                    dt.date(2025, 10, 14))
        assert early["m1"]["cases_overdue"] == 1  # the one decided on the 15th only


def test_city_centre_sets_the_calendar_and_refuses_an_unknown_one(pg: Postgres) -> None:
    runner = CliRunner()
    r = runner.invoke(city_cli, ["city-centre", "--db", pg.url, "--centre", "m3",
                                 "--name", "中心 m3", "--district", "west",
                                 "--holidays", "tw"])
    assert r.exit_code == 0, r.output
    bad = runner.invoke(city_cli, ["city-centre", "--db", pg.url, "--centre", "m4",
                                   "--holidays", "XX"])
    assert bad.exit_code == 2 and "XX" in bad.output
    with citydb.connect(pg.url) as conn:
        rows = dict(conn.execute("SELECT centre, holidays FROM city_centres "
                                 "WHERE centre IN ('m3', 'm4')").fetchall())
    assert rows == {"m3": "TW"}
