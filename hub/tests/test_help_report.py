"""The staff report counts help calls' response times per department (窗口吹哨 科室报到,
issue 17): time to answer, to arrive and to resolve, p50 and p90, from a replay of the
journal and, equally, from the past days' table (`history_help`, migration 0008), which a
hub's day close writes; the report's files carry them (helps.csv, the HTML section)."""

from __future__ import annotations

import datetime as dt

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core import help_requests as hr
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.report.render import write_all
from onewindow.hub.report.staff import collect, compute, facts_from_history, month_span
from onewindow.hub.store.history import History
from onewindow.hub.store.journal import Journal

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))


def at(day: int, h: int, m: int, s: int = 0) -> float:
    return dt.datetime(2026, 11, day, h, m, tzinfo=CST).timestamp() + s


def _config() -> CentreConfig:
    return CentreConfig("t", (WindowSpec(1), WindowSpec(2)))


def _journal(tmp_path) -> tuple[Journal, HubApp]:
    """Three days of help calls through a hub app (as the runner journals them), with each
    day closed by the next day's first record, so the history table has them all."""
    journal = Journal(f"sqlite:///{tmp_path}/hub.db")
    app = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
    history = History(journal.engine)
    app.history_sink = history.sink

    def do(cmd: c.Command, ts: float) -> int:
        step = app.operate(cmd, ts)
        journal.append(step.records)
        return step.records[0].pos

    for day in (23, 24, 25):
        do(c.OpenWindow(1, "clerk1"), at(day, 9, 0))
        do(c.OpenWindow(2, "clerk2"), at(day, 9, 0))
        # soc: answered after 30 s (day 23), 60 s, 90 s; came 2, 3, 4 min after; resolved
        k = day - 22
        p = do(hr.Help(1, "clerk1", department="soc"), at(day, 10, 0))
        do(hr.HelpAnswer(p, "soc1"), at(day, 10, 0, 30 * k))
        do(hr.HelpArrive(p, "soc1"), at(day, 10, 1 + k))
        do(hr.HelpResolve(p, "soc1"), at(day, 10, 10))
        # med: escalated after 120 s, then someone came without answering first
        q = do(hr.Help(2, "clerk2", department="med"), at(day, 11, 0))
        do(hr.HelpEscalate(q), at(day, 11, 2))
        do(hr.HelpArrive(q, "sup"), at(day, 11, 5))
        # never answered: no response time, in neither path
        do(hr.Help(2, "clerk2", department="med"), at(day, 15, 0))
        do(c.CloseWindow(1), at(day, 17, 0))
        do(c.CloseWindow(2), at(day, 17, 0))
    do(c.OpenWindow(1, "clerk1"), at(26, 9, 0))  # closes day 25
    return journal, app


def test_response_times_per_department_from_the_journal_and_the_tables(tmp_path):
    journal, _ = _journal(tmp_path)
    start, end = month_span("2026-11")
    try:
        replayed = collect(journal.read(), small_catalog(), _config(), start, end)
        rows = History(journal.engine).report_rows("20261031", "20261201")
    finally:
        journal.close()
    tabled = facts_from_history(rows, start, end, 480)
    assert sorted(replayed.helps, key=lambda f: f.request) == sorted(
        tabled.helps, key=lambda f: f.request)
    report = compute(replayed, small_catalog(), month="2026-11")
    med, soc = report.helps  # by department id
    assert (soc.department, soc.calls, soc.escalated) == ("soc", 3, 0)
    assert (soc.answer_p50, soc.answer_p90) == (60.0, 90.0)
    assert (soc.arrive_p50, soc.arrive_p90) == (180.0, 240.0)
    assert soc.resolve_p50 == soc.resolve_p90 == 600.0
    assert (med.department, med.calls, med.escalated) == ("med", 3, 3)
    assert med.answer_p50 == med.arrive_p50 == 300.0 and med.resolve_p50 is None
    assert compute(tabled, small_catalog(), month="2026-11").helps == report.helps


def test_the_report_files_carry_them(tmp_path):
    journal, _ = _journal(tmp_path)
    start, end = month_span("2026-11")
    try:
        facts = collect(journal.read(), small_catalog(), _config(), start, end)
    finally:
        journal.close()
    report = compute(facts, small_catalog(), month="2026-11")
    paths = write_all(report, small_catalog(), tmp_path / "out", charts=False)
    csv = (tmp_path / "out" / "helps.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv[0].startswith("department,name_zh,name_en,calls,escalated,answer_p50")
    assert csv[1].startswith("med,") and csv[2].startswith("soc,") and len(csv) == 3
    page = next(p for p in paths if p.name == "index.html").read_text(encoding="utf-8")
    assert "窗口吹哨 科室报到" in page and "60 s / 90 s" in page
