"""Closed promised cases (承诺件) leave the hub's memory at the day's close after their
closing, for the history table `history_cases`; they can still be reopened (the app reads
the case back from SQL and journals it in the reopening's `restore`, so a replay needs no
SQL), nothing else can be done to them, and the readers (cases page, card look-up, clerk
console) find them by SQL.

The hub here is the real one (`build_app`: journal, history tables and snapshots on
SQLite or a real PostgreSQL), driven by device messages and staff operations.

Why one module of 428 lines: the tests follow an archived case through its life (leaving memory,
reopened, refused, found by the readers, kept bounded, purged, replayed), most from the same
`closed_yesterday` hub; split, that fixture and its helpers would move to a conftest and the
case's life would be read in pieces.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from onewindow.hub.app.case_archive import resident_view
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.model import Case
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.runner import build_app
from onewindow.hub.store import history as h
from onewindow.hub.store.journal import Journal

from .catalogs import centre as core_centre
from .test_backup import pg_server  # noqa: F401 - a fixture
from .test_history import centre, db_url, morning  # noqa: F401 - db_url: a fixture
from .test_retention import Driver

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _day(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")


def _archived_row(j: Journal, case_id: str) -> dict | None:
    with j.engine.connect() as conn:
        row = conn.execute(select(h.cases).where(h.cases.c.id == case_id)).first()
    return dict(row._mapping) if row is not None else None


def _state(app) -> str:
    return json.dumps(app.centre.to_dict(), sort_keys=True, default=repr)


@pytest.fixture
def closed_yesterday(tmp_path, small_catalog_file, db_url):  # noqa: F811 - the fixture
    """A hub whose case `closed` was closed on day 1 and `kept` is still open; day 2 has
    not begun. (cfg, journal, app, driver, closed id, kept id, day 2's morning)"""
    cfg = centre(tmp_path, small_catalog_file, db_url)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    day1 = morning(3)
    d.send("kp-1", "open", day1, clerk="wang")
    closed = d.serve(day1, "SOC-2", resident="r1")
    kept = d.serve(day1 + 600, "CIV-1", resident="r1")
    d.operate(c.CaseUpdate(closed, "closed"), day1 + 3600)
    yield cfg, j, app, d, closed, kept, morning(2)
    j.close()


def test_a_case_closed_yesterday_leaves_memory_with_todays_first_command(closed_yesterday):
    cfg, j, app, d, closed, kept, day2 = closed_yesterday
    # Closed today: still in memory, and not yet in SQL.
    assert app.centre.cases[closed].state == "closed"
    assert app.centre.cases[closed].closed_at == morning(3) + 3600
    assert _archived_row(j, closed) is None
    d.send("node-1", "take", day2, item="SOC-1")  # today's first command closes day 1
    assert closed not in app.centre.cases
    assert app.centre.cases[kept].state == "open"  # still open: stays
    row = _archived_row(j, closed)
    assert row == {"id": closed, "ticket": closed, "item": "SOC-2",
                   "opened_at": row["opened_at"], "due_day": row["due_day"],
                   "resident": "r1", "state": "closed", "closed_at": morning(3) + 3600,
                   "day": _day(morning(3)), "department": "soc", "ready_at": None,
                   "handed_by": None, "return_reason": "", "return_materials": ""}
    assert _archived_row(j, kept) is None
    # A restart (full replay of the journal) archives it the same way.
    again = build_app(cfg, j)
    assert _state(again) == _state(app)


def test_reopening_an_archived_case_brings_it_back_and_replays_without_sql(closed_yesterday):
    cfg, j, app, d, closed, _kept, day2 = closed_yesterday
    d.send("node-1", "take", day2, item="SOC-1")
    assert closed not in app.centre.cases
    d.operate(c.CaseUpdate(closed, "reopened", "缺少签字"), day2 + 60)
    case = app.centre.cases[closed]
    assert (case.state, case.closed_at, case.resident) == ("open", None, "r1")
    [rec] = [r for r in j.read() if r.op == "case" and r.body["action"] == "reopened"]
    assert rec.body["restore"]["id"] == closed and rec.body["restore"]["state"] == "closed"
    # Memory wins over the stale SQL row: the resident sees it once, open.
    assert [k["state"] for k in resident_view(app, "r1")["cases"]
            if k["id"] == closed] == ["open"]
    # A replay needs no SQL: the history tables emptied, a full replay rebuilds the state.
    with j.engine.begin() as conn:
        conn.execute(h.cases.delete())
    again = build_app(cfg, j)
    assert _state(again) == _state(app)
    # Closed again: archived again at the next day's close, with its new closing time.
    d.operate(c.CaseUpdate(closed, "closed"), day2 + 120)
    d.send("node-1", "take", morning(1), item="SOC-1")
    assert closed not in app.centre.cases
    assert _archived_row(j, closed)["closed_at"] == day2 + 120


def test_anything_but_reopening_an_archived_case_is_refused_and_changes_nothing(
        closed_yesterday):
    _cfg, j, app, d, closed, _kept, day2 = closed_yesterday
    d.send("node-1", "take", day2, item="SOC-1")
    before, pos, records = _state(app), app.pos, len(list(j.read()))
    for action in ("returned", "closed", "corrected", "resubmitted"):
        with pytest.raises(Rejected) as e:
            app.operate(c.CaseUpdate(closed, action), day2 + 60)
        assert e.value.code == "bad_case_state"
        assert e.value.message.startswith(f"承诺件{closed}已办结，已归档")
        assert "archived: it can only be reopened" in e.value.message
    assert (_state(app), app.pos, len(list(j.read()))) == (before, pos, records)
    with pytest.raises(Rejected) as e:
        app.operate(c.CaseUpdate("19990101-Z999", "reopened"), day2 + 60)
    assert e.value.code == "unknown_case"
    assert _state(app) == before


def test_a_reopening_that_is_the_first_command_of_the_day_finds_the_case(closed_yesterday):
    """The case is in memory when the app looks, and the same command's roll-over archives
    it: the reopening carries it all the same."""
    cfg, j, app, d, closed, _kept, day2 = closed_yesterday
    d.operate(c.CaseUpdate(closed, "reopened"), day2)
    assert app.centre.cases[closed].state == "open"
    assert _archived_row(j, closed)["state"] == "closed"  # archived, then back in memory
    assert _state(build_app(cfg, j)) == _state(app)


def test_restore_is_checked_by_the_core_and_used_only_to_reopen_a_case_not_in_memory():
    core = core_centre(windows=((1, "comprehensive"),), now=1_795_500_000.0)
    now = 1_795_500_000.0
    core.apply(c.TakeTicket("SOC-2"), now)
    core.apply(c.CallNext(1), now + 1)
    core.apply(c.Complete(1), now + 2)
    [case] = core.cases.values()
    data = case.to_dict()
    # In memory: restore is not used (a different item in it changes nothing).
    with pytest.raises(Rejected) as e:
        core.apply(c.CaseUpdate(case.id, "returned", restore=data), now + 3)
    assert e.value.code == "bad_field"
    core.apply(c.CaseUpdate(case.id, "closed"), now + 4)
    core.apply(c.CaseUpdate(case.id, "reopened", restore={**data, "item": "CIV-1",
                                                          "state": "closed"}), now + 5)
    assert core.cases[case.id].item == "SOC-2"
    # Archived (gone from memory): bad restores are refused, nothing changes.
    core.apply(c.CaseUpdate(case.id, "closed"), now + 6)
    core.apply(c.TakeTicket("SOC-1"), now + 86400)  # the next day: archived
    assert case.id not in core.cases
    before = core.to_dict()
    good = {**case.to_dict()}
    for bad in ({**good, "state": "open"}, {**good, "id": "20990101-A001"},
                {**good, "item": "NOPE"}, {k: v for k, v in good.items() if k != "item"},
                {**good, "extra": 1}, {**good, "opened_at": "noon"}):
        with pytest.raises(Rejected) as e:
            core.apply(c.CaseUpdate(case.id, "reopened", restore=bad), now + 86500)
        assert e.value.code == "bad_field", bad
        assert core.to_dict() == before
    with pytest.raises(Rejected) as e:
        core.apply(c.CaseUpdate(case.id, "reopened"), now + 86500)
    assert e.value.code == "unknown_case"
    core.apply(c.CaseUpdate(case.id, "reopened", restore=good), now + 86600)
    assert core.cases[case.id] == Case(**{**good, "state": "open", "closed_at": None})


def test_old_snapshot_closed_cases_stay_until_the_next_close(closed_yesterday):
    """A version-2 snapshot (no closed_at, closed cases kept forever) migrates: its closed
    cases stay in memory until the next day's close, then are archived like the others."""
    from onewindow.hub.store import snapshot as snap_mod

    _cfg, _j, app, _d, closed, kept, day2 = closed_yesterday
    state = app.snapshot()
    cases = state["centre"]["cases"]
    i = cases["fields"].index("closed_at")
    v2 = {**state, "centre": {**state["centre"], "cases": {
        "fields": [f for f in cases["fields"] if f != "closed_at"],
        "rows": [[x for k, x in enumerate(r) if k != i] for r in cases["rows"]]}}}
    migrated = snap_mod.MIGRATIONS[2](json.loads(json.dumps(v2)))
    restored = type(app)(Centre(app.centre.catalog, app.centre.config), app.registry, "b2")
    restored.restore(migrated)
    assert restored.centre.cases[closed].state == "closed"
    assert restored.centre.cases[closed].closed_at is None
    restored.centre.apply(c.TakeTicket("SOC-1"), day2)
    assert closed not in restored.centre.cases and kept in restored.centre.cases


class Web:
    """The hub's web side in-process (Starlette's TestClient) on the test's real app. No
    runner: each operation the site applies is journaled as the runner would commit it."""

    def __init__(self, app, j: Journal, cfg, tmp_path, now: float) -> None:
        from onewindow.hub.store.accounts import Accounts
        from onewindow.hub.store.files import FileStore
        from onewindow.hub.web.app import create_app
        from onewindow.hub.web.site import Site

        self.now = now
        operate = app.operate

        def journaled(cmd, at):
            step = operate(cmd, at)
            j.append(step.records)
            return step

        app.operate = journaled
        self.site = Site(app, None, lambda: self.now)
        self.site.accounts = Accounts(cfg.database_url,
                                      PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.site.accounts.add("back", "password-1", "backoffice", now=now)
        self.site.accounts.add("clerk1", "password-1", "clerk", window=1, now=now)
        self.app = create_app(app, FileStore(tmp_path / "files"), site=self.site,
                              clock=lambda: self.now)

    def client(self, user: str, window: int | None = None) -> TestClient:
        cl = TestClient(self.app)
        cl.get("/login")
        cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
        data = {"username": user, "password": "password-1", "csrf": cl.cookies["ow_csrf"],
                "next": ""}
        if window is not None:
            data["window"] = str(window)
        r = cl.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 303, r.text
        return cl


PAGE = {"accept": "text/html"}


def test_the_cases_page_lists_archived_cases_by_sql_and_reopens_one(closed_yesterday,
                                                                    tmp_path):
    cfg, j, app, d, closed, kept, day2 = closed_yesterday
    d.send("node-1", "take", day2, item="SOC-1")
    web = Web(app, j, cfg, tmp_path, day2 + 30)
    cl = web.client("back")
    page = cl.get("/cases", headers=PAGE)
    assert page.status_code == 200
    main, archived = page.text.split('id="archived-cases"')
    assert f'data-case="{closed}"' in archived and f'data-case="{closed}"' not in main
    assert f'data-case="{kept}"' in main and f'data-case="{kept}"' not in archived
    assert 'data-action="reopened"' in archived
    # A range of days without its closing day: not listed; a bad range: a clear 400.
    day1 = dt.datetime.fromtimestamp(morning(3), dt.timezone(dt.timedelta(hours=8))).date()
    later = (day1 + dt.timedelta(days=1)).isoformat()
    page = cl.get(f"/cases?closed_from={later}&closed_to={later}", headers=PAGE)
    assert closed not in page.text.split('id="archived-cases"')[1]
    page = cl.get(f"/cases?closed_from={day1}&closed_to={day1}", headers=PAGE)
    assert closed in page.text.split('id="archived-cases"')[1]
    for query in ("closed_from=yesterday", "page=0", f"closed_from={later}&closed_to={day1}"):
        bad = cl.get(f"/cases?{query}", headers=PAGE)
        assert bad.status_code == 400 and bad.json()["code"] == "bad_field", query
    # Returning it is refused with the reason, nothing changed; reopening brings it back.
    before, records = _state(app), len(list(j.read()))
    r = cl.post(f"/cases/{closed}/returned", json={"reason": "x"})
    assert r.status_code == 409 and r.json()["code"] == "bad_case_state"
    assert "已归档" in r.json()["msg"] and "archived" in r.json()["msg"]
    assert (_state(app), len(list(j.read()))) == (before, records)
    r = cl.post(f"/cases/{closed}/reopened", json={"reason": "补材料"})
    assert r.status_code == 200 and r.json()["state"] == "open", r.text
    main, archived = cl.get("/cases", headers=PAGE).text.split('id="archived-cases"')
    assert f'data-case="{closed}"' in main and f'data-case="{closed}"' not in archived
    assert _state(build_app(cfg, j)) == _state(app)  # the journal replays to it
    web.site.accounts.close()


def test_card_lookup_and_console_visits_include_archived_cases(closed_yesterday, tmp_path):
    cfg, j, app, d, closed, kept, day2 = closed_yesterday
    d.send("node-1", "take", day2, item="SOC-1")
    assert closed not in app.centre.cases
    reply = d.send("node-1", "card", day2 + 10, resident="r1")
    assert {(k["id"], k["state"]) for k in reply["cases"]} == {(closed, "closed"),
                                                               (kept, "open")}
    # The clerk serving r1 today sees the archived case among earlier visits.
    d.send("node-1", "take", day2 + 20, item="MED-1", resident="r1")
    d.send("kp-1", "call", day2 + 30)
    d.send("kp-1", "call", day2 + 40)
    web = Web(app, j, cfg, tmp_path, day2 + 50)
    state = web.client("clerk1", window=1).get("/console/state").json()
    visits = {(v["ticket"], v["state"]) for v in state["ticket"]["visits"]}
    assert {(closed, "closed"), (kept, "open")} <= visits
    web.site.accounts.close()


def test_case_count_stays_bounded_over_60_days_with_a_back_office(tmp_path):
    """The bench's year in small (its generator through the real app and journal): with the
    back office closing cases by their due day, the cases in memory stop growing once the
    first cases come due, however many days follow."""
    from onewindow.tools.bench.bench_startup import Year, centre_config, workdays

    cfg = centre_config(tmp_path, tmp_path / "hub.db", 4, None, 5000)
    year = Year(cfg, 4)
    year.app.quiet = True
    held: list[int] = []
    for d in workdays(60):
        year.day(d, 120)
        year.commit()
        held.append(len(year.app.centre.cases))
    assert max(held[30:]) <= 1.3 * max(held[15:30]), held  # flat once cases come due
    with year.journal.engine.connect() as conn:
        archived = conn.execute(select(h.cases.c.id)).scalars().all()
        opened = conn.execute(select(h.case_events.c.case).where(
            h.case_events.c.action == "accepted")).scalars().all()
    year.journal.close()
    assert year.office.refused == 0 and year.office.done > len(archived) > 0
    # Reopenings of archived cases happened, through SQL.
    assert any(r.op == "case" and "restore" in r.body for r in Journal(
        f"sqlite:///{tmp_path / 'hub.db'}").read())
    assert len(opened) > 2 * max(held)  # far more cases than memory ever held


def test_retention_plans_and_purges_archived_cases_like_those_in_memory(tmp_path,
                                                                       small_catalog_file):
    """Archived cases keep their token while closed within the resident period and their
    documents until `materials_days` after closing; a token past retention goes from the
    archive and from the reopening record that restored the case as well."""
    import time

    from onewindow.hub.store.files import FileStore
    from onewindow.hub.store.retention import Retention, plan, purge

    ta, tb, tc = "a1" * 16, "b2" * 16, "c3" * 16
    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    d.send("kp-1", "open", morning(300), clerk="wang")
    case_c = d.serve(morning(300), "CIV-1", resident=tc)
    d.operate(c.CaseUpdate(case_c, "closed"), morning(290))
    d.operate(c.CaseUpdate(case_c, "reopened"), morning(250))  # archived: restored
    d.operate(c.CaseUpdate(case_c, "closed"), morning(249))
    case_a = d.serve(morning(200), "SOC-2", resident=ta)
    d.operate(c.CaseUpdate(case_a, "closed"), morning(100))  # within 180 days
    case_b = d.serve(morning(60), "SOC-2", resident=tb)
    d.operate(c.CaseUpdate(case_b, "closed"), morning(10))  # within 30 days
    d.send("node-1", "take", morning(5), item="SOC-1")
    assert not {case_a, case_b, case_c} & set(app.centre.cases)  # all three archived
    files = FileStore(tmp_path / "files")
    for tid in (case_a, case_b, case_c):
        files.save(tid, b"scan", "jpg", "image/jpeg", "page", "node-1")

    p = plan(j, app.centre.cases.values(), tmp_path / "files", Retention(), time.time())
    assert p.token_set == {tc}
    assert sorted(x.name for x in p.doc_dirs) == sorted([case_a, case_c])
    purge(j, p, Retention(), time.time())
    assert files.list(case_b) and not files.list(case_a) and not files.list(case_c)
    assert _archived_row(j, case_c)["resident"] is None
    assert _archived_row(j, case_a)["resident"] == ta
    [reopen] = [r for r in j.read() if r.op == "case" and r.body["action"] == "reopened"]
    assert reopen.body["restore"]["resident"] is None and reopen.body["purged"] > reopen.pos
    assert tc not in json.dumps([r.body for r in j.read()])
    j.close()


def test_simulated_history_reopens_archived_cases_and_its_journal_replays(tmp_path,
                                                                          monkeypatch):
    """hub/sim/history.py: its back office reopens cases after they left memory, with the
    case's fields in the record, so the journal replays with nothing refused to the state
    the simulation ended in."""
    from onewindow.hub.catalog import load_catalog
    from onewindow.hub.sim.history import CaseFates, write_history

    monkeypatch.setattr(CaseFates, "reopened", 0.2)  # enough reopenings in 15 days
    url = f"sqlite:///{tmp_path / 'h.db'}"
    catalog = load_catalog()
    hist = write_history(catalog, url, dt.date(2026, 10, 12), dt.date(2026, 11, 2),
                         windows=4, seed=3)
    j = Journal(url)
    records = list(j.read())
    j.close()
    restored = [r for r in records if r.op == "case" and "restore" in r.body]
    assert restored, "no reopening of an archived case in the simulated weeks"
    core = Centre(catalog, hist.config)
    for r in records:
        if r.op in c.BY_OP:
            core.apply(c.from_record(r.body), r.ts)  # raises Rejected on any refusal
    assert core.to_dict() == hist.centre.to_dict()
    assert all(k.state != "closed" or k.closed_at is not None for k in core.cases.values())


def test_a_card_look_up_lists_only_the_newest_archived_cases(tmp_path, small_catalog_file):
    """Years of visits must not outgrow the card reply (protocol: res.cases is bounded)."""
    from onewindow.hub.app.case_archive import ARCHIVED_IN_CARD

    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    day1 = morning(3)
    d.send("kp-1", "open", day1, clerk="wang")
    ids = [d.serve(day1 + 500 * k, "SOC-2", resident="r9") for k in range(ARCHIVED_IN_CARD + 5)]
    for k, case in enumerate(ids):
        d.operate(c.CaseUpdate(case, "closed"), day1 + 20000 + k)
    d.send("node-1", "take", morning(2), item="SOC-1")  # the day's close archives them
    reply = d.send("node-1", "card", morning(2) + 10, resident="r9")
    assert not set(ids) & set(app.centre.cases)
    assert [k["id"] for k in reply["cases"]] == ids[-ARCHIVED_IN_CARD:]
    j.close()


def test_a_replay_fills_the_cases_table_for_days_written_before_it_existed(closed_yesterday):
    """An upgraded hub: its past days are in the history tables but the cases table is
    empty. A full replay archives the closed cases again and writes them."""
    cfg, j, _app, d, closed, _kept, day2 = closed_yesterday
    d.send("node-1", "take", day2, item="SOC-1")
    row = _archived_row(j, closed)
    with j.engine.begin() as conn:
        conn.execute(h.cases.delete())
    again = build_app(cfg, j)
    assert _archived_row(j, closed) == row
    assert again.archived_case(closed) == h.case_from_row(row)
    assert again.archived_case(closed)["return_materials"] == ()
