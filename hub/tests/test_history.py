"""Past days out of memory (hub/store/history.py): at a day's close its tickets, ratings and
answered help requests go to SQL tables; memory keeps the current day's and what is open.
Checked against the journal itself (the oracle: its take, rate and help records per day),
across a replay, and with a restart from a snapshot."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import time

import pytest
from sqlalchemy import func, select

from onewindow.hub import config as hub_config
from onewindow.hub.runner import build_app
from onewindow.hub.store import history as h
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.snapshot import SnapshotStore
from onewindow.tools.testkit.testbed import default_devices, write_config

from .test_backup import _pg_database, pg_server  # noqa: F401 - pg_server: a fixture
from .test_hub_mqtt import CENTRE
from .test_retention import DAY, Driver

DAYS = 4
_names = itertools.count(1)


def morning(days_ago: int, offset_min: int = 480) -> float:
    """09:00 local, `days_ago` days before today: a day's traffic never crosses midnight."""
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    today = dt.datetime.now(tz).date()
    return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(9), tz).timestamp()


def centre(tmp_path, catalog, database_url=None):
    devices = [*default_devices(2), {"id": "node-1", "role": "node", "window": 1}]
    path = write_config(tmp_path / "centre.toml", CENTRE, 1, tmp_path / "hub.db", windows=2,
                        devices=devices, catalog=catalog, database_url=database_url)
    return hub_config.load(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """None: SQLite beside the test; else a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        return None
    return _pg_database(request.getfixturevalue("pg_server"), f"history{next(_names)}")


SATISFIED_RECORDS = {(3, 1), (3, 2), (5, 5), (5, 4), (5, 3)}  # (scale, score)
FIVE = {(3, 1): 5, (3, 2): 3, (3, 3): 1, **{(5, k): k for k in range(1, 6)}}


def journal_facts(j: Journal, offset_min: int = 480) -> dict[str, collections.Counter]:
    """Per local day, from the journal records alone: takes, ratings, satisfied, answered
    help requests (an unanswered one is still open: in memory, not history)."""
    out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    records = list(j.read())
    answered = {r.body["request"] for r in records if r.op == "help_answer"}
    for r in records:
        day = time.strftime("%Y%m%d", time.gmtime(r.ts + offset_min * 60))
        if r.op == "take":
            out[day]["tickets"] += 1
        elif r.op == "rate":
            out[r.body["ticket"][:8]]["ratings"] += 1
            # the state's 满意率 counts 非常满意, 满意 and 基本满意: on the five levels a
            # score of 3 or more; a three-level record's (scale 3) 1 good and 2 ok
            lvl = (r.body.get("scale", 3), r.body["score"])
            out[r.body["ticket"][:8]]["satisfied"] += lvl in SATISFIED_RECORDS
            out[r.body["ticket"][:8]][f"level_{FIVE[lvl]}"] += 1
        elif r.op == "help" and r.pos in answered:
            out[day]["helps"] += 1
    return out


def test_closed_days_leave_memory_for_sql_and_a_replay_writes_the_same(tmp_path,
                                                                      small_catalog_file,
                                                                      db_url):
    cfg = centre(tmp_path, small_catalog_file, db_url)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    start = morning(DAYS)
    d.send("kp-1", "open", start)
    days = []
    for k in range(DAYS + 1):  # the last one is today: it stays in memory
        at = start + k * DAY
        days.append(app.centre.local_date(at).strftime("%Y%m%d"))
        for i in range(3 + k):
            tid = d.serve(at + 600 * i, "SOC-1" if i % 2 else "MED-1")
            d.send("node-1", "rate", at + 600 * i + 450, window=1, ticket=tid,
                   score=1 if i % 3 else 3)
        d.send("kp-1", "help", at + 50, window=1)
        if k < DAYS:
            req = list(app.centre.help_requests)[-1]
            d.operate(_answer(req), at + 120)
        if k == 1:
            d.send("kp-1", "help", at + 70, window=1)  # never answered: stays in memory
    today = days[-1]
    assert app.centre.day == today
    # Memory: today's ratings; today's help requests and the unanswered one.
    assert {r.ticket[:8] for r in app.centre.ratings.values()} == {today}
    assert len(app.centre.ratings) == 3 + DAYS
    assert sorted(app.centre.local_date(x.at).strftime("%Y%m%d")
                  for x in app.centre.help_requests.values()) == [days[1], today]
    assert app.closed_days == []  # all written

    # SQL: each past day as the journal says it.
    hist = h.History(j.engine)
    oracle = journal_facts(j)
    for day in days[:-1]:
        s = hist.summary(day, day)
        assert (s["tickets"], s["ratings"], s["help_requests"]) == (
            oracle[day]["tickets"], oracle[day]["ratings"], oracle[day]["helps"]), day
        assert s["satisfaction_rate"] == round(oracle[day]["satisfied"] / oracle[day]["ratings"],
                                               3)
        assert s["ratings_by_level"] == {str(k): oracle[day][f"level_{k}"]
                                         for k in (5, 4, 3, 2, 1)}
        assert s["served"] == s["tickets"] and s["avg_wait_min"] is not None
    whole = hist.summary(days[0], days[-2])
    assert whole["days"] == DAYS and whole["tickets"] == sum(3 + k for k in range(DAYS))
    assert whole["help_answered"] == whole["help_requests"] == DAYS  # the open one is not
    assert hist.summary(today, today)["tickets"] == 0  # today is not history yet

    rows_before = _all_rows(j)
    assert rows_before["history_followup_events"]  # the bad ratings' follow-ups (差评整改)
    # A full replay (no snapshot) closes the same days again: the same rows, the same memory.
    again = build_app(cfg, j)
    assert _all_rows(j) == rows_before
    assert again.centre.ratings == app.centre.ratings
    assert again.centre.help_requests == app.centre.help_requests
    # A start from a snapshot and the journal's tail: the same too.
    SnapshotStore(j.engine).save(app.snapshot())
    later = build_app(cfg, j)
    assert later.snapshot_pos == app.pos and later.centre.ratings == app.centre.ratings
    assert _all_rows(j) == rows_before
    j.close()


def test_a_failed_history_write_is_kept_and_written_at_the_next_close(tmp_path,
                                                                    small_catalog_file):
    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    hist = h.History(j.engine)
    broken = h.History.__new__(h.History)  # its tables were never created: writes fail
    broken.engine, broken._written = _no_tables_engine(tmp_path), None
    sinks = [broken.sink, hist.sink]
    calls = []

    def flaky(pending):
        calls.append([f.day for f in pending])
        sinks[len(calls) - 1](pending)

    app.history_sink = flaky
    d = Driver(app, j)
    start = morning(2)
    d.send("kp-1", "open", start)
    for k in range(3):
        d.serve(start + k * DAY, "SOC-1")
    first, second = calls
    assert len(first) == 1 and len(second) == 2 and second[0] == first[0]  # kept, then written
    assert app.closed_days == []
    assert h.History(j.engine).days_written() == set(second)
    j.close()


def _answer(pos: int):
    from onewindow.hub.core.help_requests import HelpAnswer

    return HelpAnswer(pos, "specialist-1")


def _no_tables_engine(tmp_path):
    from onewindow.hub.store import db

    return db.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # opened, never migrated


def _all_rows(j: Journal) -> dict[str, list]:
    out = {}
    with j.engine.connect() as conn:
        for t in (h.days, h.tickets, h.ratings, h.helps, h.followups, h.bookings):
            out[t.name] = sorted(tuple(r) for r in conn.execute(select(t)))
            assert conn.execute(select(func.count()).select_from(t)).scalar() == len(
                out[t.name])
    return out


def test_the_dashboard_shows_the_last_30_days_from_sql(tmp_path, small_catalog_file):
    """The supervisor dashboard's past days come from the history tables: equal to the SQL
    summary of the 30 days before today, in the page as zh-CN first."""
    from argon2 import PasswordHasher

    from onewindow.hub.config import BrokerURL
    from onewindow.hub.runner import HubRunner
    from onewindow.hub.store.accounts import Accounts
    from onewindow.hub.store.files import FileStore
    from onewindow.hub.web.app import create_app
    from onewindow.hub.web.site import Site

    from .test_staff_http import PAGE, TestClient, login

    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    now = morning(0) + 2 * 3600  # 11:00 today
    d.send("kp-1", "open", now - 3 * DAY)
    for k in (3, 2, 1):
        tid = d.serve(now - k * DAY, "SOC-1")
        d.send("node-1", "rate", now - k * DAY + 450, window=1, ticket=tid, score=1)
    d.serve(now - 600, "MED-1")  # today: not history
    runner = HubRunner(app, j, BrokerURL("127.0.0.1", 1))
    site = Site(app, runner, lambda: now)
    site.accounts = Accounts(j.engine, PasswordHasher(time_cost=1, memory_cost=8,
                                                      parallelism=1))
    site.accounts.add("sup", "password-1", "supervisor", now=now)
    web = create_app(app, FileStore(tmp_path / "files"), site=site, clock=lambda: now)
    cl = TestClient(web)
    cl.get("/login")
    cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
    assert login(cl, "sup", "password-1").status_code == 303
    state = cl.get("/dashboard/state").json()
    today = app.centre.local_date(now)
    first = (today - dt.timedelta(days=30)).strftime("%Y%m%d")
    last = (today - dt.timedelta(days=1)).strftime("%Y%m%d")
    assert state["history"] == h.History(j.engine).summary(first, last)
    assert (state["history"]["tickets"], state["history"]["ratings"]) == (3, 3)
    assert state["summary"]["tickets"] == 1  # today's, from memory
    page = cl.get("/dashboard", headers=PAGE).text
    assert "近30天（不含今天）" in page
    j.close()


def test_rebuild_history_from_the_journal(tmp_path, small_catalog_file):
    """`onewindow rebuild-history`: a journal whose days were never written (older than the
    tables, or a lost write) gets the same rows the day closes wrote."""
    import subprocess
    import sys

    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    d.send("kp-1", "open", morning(3))
    for k in (3, 2, 1, 0):
        tid = d.serve(morning(k), "SOC-1")
        d.send("node-1", "rate", morning(k) + 450, window=1, ticket=tid, score=2)
    written = _all_rows(j)
    assert len(written["history_days"]) == 3
    with j.engine.begin() as conn:
        for t in (h.days, h.tickets, h.ratings, h.helps):
            conn.execute(t.delete())
    out = subprocess.run([sys.executable, "-m", "onewindow.hub.cli", "rebuild-history",
                          "--config", str(tmp_path / "centre.toml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "rebuilt: 3 days" in out.stdout, out.stdout
    assert _all_rows(j) == written
    j.close()


def test_staff_report_from_the_tables_equals_the_replay(tmp_path, small_catalog_file):
    """A past month's staff report read by SQL from the past days' tables gives the very
    facts and report a replay of the whole journal gives: two clerks, extra items, ratings,
    a transfer, a case accepted the month before and returned in this one, one accepted and
    closed in it, a service across midnight."""
    from onewindow.hub.core import commands as c
    from onewindow.hub.report.cli import build, history_rows, load_source

    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    tz = dt.timezone(dt.timedelta(minutes=480))
    today = dt.datetime.now(tz).date()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # last month
    month = first.strftime("%Y-%m")

    def at(day: dt.date, hour: float) -> float:
        return dt.datetime.combine(day, dt.time(), tz).timestamp() + hour * 3600

    def service(kp: str, t0: float, **take) -> str:
        number = d.send("node-1", "take", t0, **take)["ticket"]
        d.send(kp, "call", t0 + 60)
        d.send(kp, "start", t0 + 120)
        d.send(kp, "complete", t0 + 120 + 300)
        return number

    before = first - dt.timedelta(days=1)
    d.send("kp-1", "open", at(before, 8), clerk="wang")
    d.send("kp-2", "open", at(before, 8), clerk="li")
    service("kp-1", at(before, 9), item="SOC-2")  # promised: accepted by wang last month
    old_case = f"{before:%Y%m%d}-A001"
    for k in range(4):
        day = first + dt.timedelta(days=k)
        n1 = service("kp-1", at(day, 9), item="SOC-1", items=["MED-1"])
        d.send("node-1", "rate", at(day, 9) + 500, window=1,
               ticket=f"{day:%Y%m%d}-{n1}", score=1 + k % 3)
        service("kp-2", at(day, 10), item="MED-1")
        if k == 1:
            d.operate(c.CaseUpdate(old_case, "returned", "缺材料"), at(day, 11))
            number = d.send("node-1", "take", at(day, 12), item="CIV-1")["ticket"]
            d.send("kp-1", "call", at(day, 12) + 60)
            d.send("kp-1", "transfer", at(day, 12) + 90, to_window=2)
            d.send("kp-2", "call", at(day, 12) + 120)
            d.send("kp-2", "complete", at(day, 12) + 600)  # accepted by li
            new_case = f"{day:%Y%m%d}-{number}"
        if k == 2:
            d.operate(c.CaseUpdate(new_case, "closed"), at(day, 11))
            d.send("node-1", "take", at(day, 23.9), item="SOC-1")
            d.send("kp-1", "call", at(day, 23.92))
            d.send("kp-1", "start", at(day, 23.95))
    # (day 3's first call at window 1 completes the ticket served over midnight)
    d.send("node-1", "take", time.time(), item="SOC-1")  # a record after the month: closed

    src = load_source(tmp_path / "centre.toml", None, None)
    start, end = (at(first, 0), at((first + dt.timedelta(days=32)).replace(day=1), 0))
    assert history_rows(Journal(cfg.database_url), start, end, 480) is not None
    sql, replayed = build(src, month), build(src, month, replay=True)
    for name in ("services", "ratings", "cases"):
        got = sorted(getattr(sql.facts, name), key=repr)
        assert got == sorted(getattr(replayed.facts, name), key=repr), name
        assert got, name
    assert sql.facts.taken == replayed.facts.taken and sql.facts.open_days == \
        replayed.facts.open_days
    assert sql.clerks == replayed.clerks and sql.items == replayed.items
    assert sql.centre == replayed.centre
    assert {r.clerk for r in sql.clerks} == {"wang", "li"}
    assert {(e.action, e.clerk) for e in sql.facts.cases} >= {("returned", "wang"),
                                                              ("accepted", "li"),
                                                              ("closed", "li")}
    j.close()
