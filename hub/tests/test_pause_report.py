"""Issue 18: the staff monthly report counts pauses and paused minutes per reason per clerk,
from a replay of the journal and, equally, from the past days' table (`history_pauses`,
migration 0010) a hub's day close writes. A pause journaled without a reason (a keypad's
key, an older journal) counts as unspecified; one left running overnight counts up to the
midnight of the day it began; one still running at the end counts nothing yet."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core import desk
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.report.render import write_all
from onewindow.hub.report.staff import collect, compute, facts_from_history, month_span
from onewindow.hub.store.history import History
from onewindow.hub.store.journal import Journal
from onewindow.tools.testkit.testbed import Postgres

from .catalogs import small_catalog

CST = dt.timezone(dt.timedelta(hours=8))


def at(day: int, h: int, m: int = 0) -> float:
    return dt.datetime(2026, 11, day, h, m, tzinfo=CST).timestamp()


def _config() -> CentreConfig:
    return CentreConfig("t", (WindowSpec(1), WindowSpec(2)))


@pytest.fixture(scope="module")
def postgres():
    with Postgres() as pg:
        yield pg


def _journal(tmp_path, url: str | None = None) -> Journal:
    journal = Journal(url or f"sqlite:///{tmp_path}/hub.db")
    app = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
    app.history_sink = History(journal.engine).sink

    def do(cmd: c.Command, ts: float) -> None:
        journal.append(app.operate(cmd, ts).records)

    # Oct 31: a lunch in October, not this month's
    do(c.OpenWindow(1, "li"), at(1, 9) - 86400)
    do(c.Pause(1, reason="lunch"), at(1, 12) - 86400)
    do(c.Resume(1), at(1, 13) - 86400)
    do(c.CloseWindow(1), at(1, 17) - 86400)
    for day in (23, 24):
        do(c.OpenWindow(1, "li"), at(day, 9))
        do(c.OpenWindow(2, "wang"), at(day, 9))
        do(c.Pause(1, reason="lunch"), at(day, 12))
        do(c.Resume(1), at(day, 12, 45))
        do(c.Pause(1, reason="meeting"), at(day, 15))
        do(c.CloseWindow(1), at(day, 15, 30))  # closed while paused: the pause ends
        do(c.Pause(2), at(day, 10))  # a keypad's pause: no reason
        do(c.Resume(2), at(day, 10, 10))
        do(c.Pause(2, reason="system"), at(day, 16))
        if day == 23:
            do(c.CloseWindow(2), at(day, 16, 20))
    # window 2 left paused on the 24th, closed on the 25th: counted to the 24th's midnight
    do(c.CloseWindow(2), at(25, 9))
    do(c.OpenWindow(1, "li"), at(25, 9))
    do(c.Pause(1, reason="training"), at(25, 14))  # still running: not counted
    do(c.OpenWindow(2, "wang"), at(26, 9))  # closes the 25th: the tables hold it
    return journal


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_pauses_per_reason_per_clerk_from_the_journal_and_the_tables(tmp_path, request, db):
    url = request.getfixturevalue("postgres").url if db == "postgresql" else None
    journal = _journal(tmp_path, url)
    start, end = month_span("2026-11")
    try:
        replayed = collect(journal.read(), small_catalog(), _config(), start, end)
        rows = History(journal.engine).report_rows("20261031", "20261201")
    finally:
        journal.close()
    tabled = facts_from_history(rows, start, end, 480)
    assert sorted(replayed.pauses, key=lambda p: (p.window, p.start)) == sorted(
        tabled.pauses, key=lambda p: (p.window, p.start))
    report = compute(replayed, small_catalog(), month="2026-11")
    assert report.pauses == {
        "li": {"lunch": (2, 90.0), "meeting": (2, 60.0)},
        "wang": {"system": (2, 20.0 + 480.0), "unspecified": (2, 20.0)},
    }
    assert compute(tabled, small_catalog(), month="2026-11").pauses == report.pauses
    assert report.centre["pauses"] == 8 and report.centre["paused_minutes"] == 670.0
    # October's report has October's lunch only
    journal = Journal(url or f"sqlite:///{tmp_path}/hub.db")
    try:
        october = collect(journal.read(), small_catalog(), _config(), *month_span("2026-10"))
    finally:
        journal.close()
    assert compute(october, small_catalog()).pauses == {"li": {"lunch": (1, 60.0)}}


def test_the_report_files_carry_them(tmp_path):
    journal = _journal(tmp_path)
    start, end = month_span("2026-11")
    try:
        facts = collect(journal.read(), small_catalog(), _config(), start, end)
    finally:
        journal.close()
    report = compute(facts, small_catalog(), month="2026-11")
    paths = write_all(report, small_catalog(), tmp_path / "out", charts=False)
    with open(tmp_path / "out" / "pauses.csv", encoding="utf-8-sig") as f:
        got = [(r["clerk"], r["reason"], r["pauses"], r["minutes"]) for r in csv.DictReader(f)]
    assert got == [("li", "lunch", "2", "90.0"), ("li", "meeting", "2", "60.0"),
                   ("wang", "system", "2", "500.0"), ("wang", "unspecified", "2", "20.0")]
    page = next(p for p in paths if p.name == "index.html").read_text(encoding="utf-8")
    assert "窗口暂停" in page and "午休用餐" in page and "未注明" in page
    assert "<tr data-clerk='li'><td>li</td><td>2 / 90</td><td>2 / 60</td>" in page


def test_a_snapshot_mid_day_plus_the_tail_equals_a_full_replay(tmp_path):
    """The hub's own replay and snapshot (HubApp): pauses noted for the day's close and the
    out-of-turn calls come back the same from a snapshot and the journal after it."""
    journal = Journal(f"sqlite:///{tmp_path}/hub.db")
    app = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
    for cmd, ts in [
        (c.OpenWindow(1, "li"), at(23, 9)), (c.TakeTicket("SOC-1"), at(23, 9, 1)),
        (c.TakeTicket("SOC-1"), at(23, 9, 2)), (c.Pause(1, reason="meeting"), at(23, 9, 5)),
        (c.Resume(1), at(23, 9, 35)),
        (desk.CallTicket(1, ticket="A002", reason="elderly_disabled", by="li"), at(23, 9, 40)),
        (c.Complete(1), at(23, 9, 50)), (c.Pause(1, reason="lunch"), at(23, 12)),
        (c.Resume(1), at(23, 13)), (c.Pause(1), at(23, 16)),
    ]:
        journal.append(app.operate(cmd, ts).records)
    try:
        records = list(journal.read())
    finally:
        journal.close()
    assert [r.body.get("reason") for r in records if r.body["op"] == "call_ticket"] == [
        "elderly_disabled"]
    full = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
    full.replay(records)
    assert [(p["reason"], p["clerk"]) for p in full.pauses] == [
        ("meeting", "li"), ("lunch", "li")]
    assert full.centre.windows[1].pause_reason == ""
    for cut in range(len(records) + 1):
        upto = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
        upto.replay(records[:cut])
        restored = HubApp(Centre(small_catalog(), _config()), Registry([]), "b")
        restored.restore(json.loads(json.dumps(upto.snapshot())))
        restored.replay(records[cut:])
        assert restored.pauses == full.pauses
        assert restored.centre.to_dict() == full.centre.to_dict()
