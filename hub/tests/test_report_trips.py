"""The monthly report's pre-review section (预审 / 一次办成) over a multi-day journal: the
simulator writes six weeks of a centre whose kiosk pre-review sends residents away, whose
clerks return tickets for materials and whose residents come back; the hub's replay of it
writes the past days' tables. Read by SQL from the tables or by replaying the journal, the
month's figures are the same, and they agree with the journal's own records."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.devices import Registry
from onewindow.hub.report.cli import build, history_rows, load_source
from onewindow.hub.report.render import render_html
from onewindow.hub.report.staff import month_span
from onewindow.hub.sim.history import write_history
from onewindow.hub.sim.model import ArrivalModel, ResidentModel
from onewindow.hub.sim.prereview import PreReviewModel
from onewindow.hub.store.history import History
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.trips import trip_stats

CATALOG = load_catalog()
MONTH = "2026-10"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("trips") / "h.db"
    url = f"sqlite:///{path}"
    h = write_history(CATALOG, url, dt.date(2026, 9, 21), dt.date(2026, 11, 4), windows=5,
                      seed=11, arrivals=ArrivalModel(base_daily=90), cases=False,
                      prereview=PreReviewModel(),
                      residents=ResidentModel(kiosk=0.6, card_token=0.5,
                                              missing_per_material=0.05, missing_cap=0.4))
    journal = Journal(url)
    app = HubApp(Centre(CATALOG, h.config), Registry([]), "test")
    app.history_sink = History(journal.engine).sink  # the tables, as the hub writes them
    app.replay(journal.read())
    assert app.centre.to_dict() == h.centre.to_dict()
    journal.close()
    return url, path


def test_the_tables_and_the_replay_agree_and_count_what_happened(history):
    url, path = history
    src = load_source(None, url, None)
    start, end = month_span(MONTH, 480)
    assert history_rows(Journal(url), start, end, 480) is not None  # the SQL path is taken
    sql, replayed = build(src, MONTH), build(src, MONTH, replay=True)
    assert sql.facts.trips == replayed.facts.trips
    got = sql.facts.trips
    with sqlite3.connect(path) as con:
        bodies = [(ts, op, json.loads(b)) for ts, op, b in con.execute(
            "SELECT ts, op, body FROM journal ORDER BY pos") if start <= ts < end]
    assert got["kiosk_left"] == sum(op == "prereview" for _, op, _ in bodies) > 0
    assert got["kiosk_left_tips"] == 0  # the simulated residents print no tips
    assert got["returned"] == sum(op == "return_materials" for _, op, _ in bodies) > 0
    takes = [b for _, op, b in bodies if op == "take"]
    assert got["tickets"] == len(takes)
    assert got["reviewed"] == sum("review" in b for b in takes) > 0
    assert got["queued_anyway"] == sum(bool(b.get("review", {}).get("missing"))
                                       for b in takes) > 0
    assert got["repeat_visits"] > 0 and got["served_with_token"] > 0
    assert 0.5 < got["one_trip_rate"] < 1


def test_one_trip_and_repeat_visits_by_resident_token():
    row = {"state": "done", "review": None, "returned": ""}
    rows = [
        # r1: returned on the 1st, back on the 5th and served: a second trip
        {**row, "day": "20261001", "issued_at": 1, "item": "A", "resident": "r1",
         "returned": "A.0"},
        {**row, "day": "20261005", "issued_at": 5, "item": "A", "resident": "r1"},
        # r2: served first time; its visit for B two days later is a repeat, not a return
        {**row, "day": "20261002", "issued_at": 2, "item": "A", "resident": "r2"},
        {**row, "day": "20261004", "issued_at": 4, "item": "A", "resident": "r2"},
        # r3: returned long ago (outside 30 days): served this time on a first trip
        {**row, "day": "20260801", "issued_at": 0, "item": "A", "resident": "r3",
         "returned": "A.1"},
        {**row, "day": "20261003", "issued_at": 3, "item": "A", "resident": "r3"},
        # no token: in the totals only
        {**row, "day": "20261003", "issued_at": 3.5, "item": "A", "resident": None},
    ]
    s = trip_stats(rows, "20261001", 30)
    assert s["tickets"] == 6 and s["with_token"] == 5 and s["returned"] == 1
    assert s["served_with_token"] == 4
    assert s["one_trip"] == 3 and s["one_trip_rate"] == 0.75  # r1's second visit is not
    assert s["repeat_visits"] == 2  # r1 on the 5th, r2 on the 4th


def test_the_html_report_shows_the_section(history):
    url, _ = history
    html = render_html(build(load_source(None, url, None), MONTH), CATALOG, charts=False)
    assert "预审与一次办成" in html and "一次办成率 One-trip rate" in html
    assert "Sent away at the kiosk before a ticket" in html


def test_the_centre_csv_carries_the_figures(history, tmp_path):
    import csv

    from onewindow.hub.report.render import write_csv

    url, _ = history
    report = build(load_source(None, url, None), MONTH)
    write_csv(report, tmp_path)
    with open(tmp_path / "centre.csv", encoding="utf-8-sig") as f:
        rows = dict(csv.reader(f))
    assert rows["prereview_kiosk_left"] == str(report.facts.trips["kiosk_left"])
    assert rows["prereview_one_trip_rate"] == str(report.facts.trips["one_trip_rate"])
    assert rows["prereview_within_days"] == "30"
