"""The case loop in the past days' tables (migration 0007): an archived case keeps its
department, approval time, who handed it over and its last return; each step's row in
`history_case_events` says who did it and where the case was after it; a case archived
before 0007 (no department kept) is reopened at its item's department and listed in that
department's closed list. The hub is the real one (`build_app`, SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from onewindow.hub.core import commands as c
from onewindow.hub.runner import build_app
from onewindow.hub.store import history as h
from onewindow.hub.store.journal import Journal

from .test_backup import pg_server  # noqa: F401 - a fixture
from .test_case_archive import _archived_row, _state
from .test_history import centre, db_url, morning  # noqa: F401 - db_url: a fixture
from .test_retention import Driver


@pytest.fixture
def looped(tmp_path, small_catalog_file, db_url):  # noqa: F811 - the fixture
    """A hub whose SOC-2 case went the whole loop on day 1 (returned, reassigned,
    resubmitted, approved, handed over by card) and a CIV-1 case closed directly; day 2's
    first command archived both. (cfg, journal, app, driver, loop case, plain case)"""
    cfg = centre(tmp_path, small_catalog_file, db_url)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    day1 = morning(3)
    d.send("kp-1", "open", day1, clerk="wang")
    k = d.serve(day1, "SOC-2", resident="r1")
    plain = d.serve(day1 + 600, "CIV-1", resident="r2")
    for n, cmd in enumerate((
            c.CaseUpdate(k, "returned", "签字缺失", by="li"),
            c.CaseUpdate(k, "reassigned", "属民政", by="li", department="civ"),
            c.CaseUpdate(k, "resubmitted", by="wang"),
            c.CaseUpdate(k, "approved", by="zhao"),
            c.CaseUpdate(k, "handed_over", by="card"),
            c.CaseUpdate(plain, "closed", by="li"))):
        d.operate(cmd, day1 + 3600 + 60 * n)
    d.send("node-1", "take", morning(2), item="SOC-1")  # day 2: day 1's close archives
    yield cfg, j, app, d, k, plain
    j.close()


def test_an_archived_case_keeps_its_loop_and_each_step_who_did_it(looped):
    cfg, j, app, _d, k, _plain = looped
    day1 = morning(3)
    row = _archived_row(j, k)
    assert k not in app.centre.cases and row is not None
    assert (row["department"], row["ready_at"], row["handed_by"], row["return_reason"],
            row["return_materials"], row["closed_at"]) == (
        "civ", day1 + 3600 + 180, "card", "签字缺失", "", day1 + 3600 + 240)
    with j.engine.connect() as conn:
        events = conn.execute(select(h.case_events.c.action, h.case_events.c.by,
                                     h.case_events.c.department, h.case_events.c.at)
                              .where(h.case_events.c.case == k)
                              .order_by(h.case_events.c.at)).all()
    assert [tuple(e[:3]) for e in events] == [
        ("accepted", "wang", "soc"), ("returned", "li", "soc"), ("reassigned", "li", "civ"),
        ("resubmitted", "wang", "civ"), ("approved", "zhao", "civ"),
        ("handed_over", "card", "civ")]
    # A restart replays the journal to the same state and rows.
    again = build_app(cfg, j)
    assert _state(again) == _state(app)
    assert _archived_row(j, k) == row


def test_reopening_from_the_archive_restores_the_loop_fields(looped):
    _cfg, _j, app, d, k, _plain = looped
    d.operate(c.CaseUpdate(k, "reopened", by="li"), morning(2) + 60)
    case = app.centre.cases[k]
    assert (case.state, case.department, case.return_reason, case.ready_at,
            case.handed_by) == ("open", "civ", "签字缺失", None, None)


def test_a_case_archived_before_0007_is_its_items_departments(looped):
    """Rows written before the migration have no department: the department's closed
    list finds them by the items it approves, and a reopening puts the case there."""
    _cfg, j, app, d, k, plain = looped
    with j.engine.begin() as conn:
        conn.execute(update(h.cases).where(h.cases.c.id == plain).values(
            department=None, ready_at=None, handed_by=None, return_reason=None,
            return_materials=None))
    store = h.History(j.engine)
    day = _archived_row(j, k)["day"]
    assert [r["id"] for r in store.closed_cases(day, day)[1]] == [plain, k]  # newest first
    n, civ = store.closed_cases(day, day, department="civ", items=["CIV-1", "CASH-1"])
    assert n == 2 and {r["id"] for r in civ} == {k, plain}
    n, soc = store.closed_cases(day, day, department="soc", items=["SOC-1", "SOC-2"])
    assert n == 0 and soc == []  # the loop case moved to civ; the plain one is CIV-1's
    old = store.case(plain)
    assert old is not None and old["department"] is None and old["return_materials"] == ()
    d.operate(c.CaseUpdate(plain, "reopened", by="li"), morning(2) + 60)
    assert app.centre.cases[plain].department == "civ"  # CIV-1's line


def test_the_daily_overdue_list_per_department_on_the_command_line(tmp_path,
                                                                    small_catalog_file):
    """`onewindow cases overdue`: each department's cases past their promised day, from
    the journal; --all adds the ready ones not collected; a department filter."""
    from typer.testing import CliRunner

    from onewindow.hub.cli import app as cli

    cfg = centre(tmp_path, small_catalog_file)
    j = Journal(cfg.database_url)
    app = build_app(cfg, j)
    d = Driver(app, j)
    start = morning(40)
    d.send("kp-1", "open", start, clerk="wang")
    late_soc = d.serve(start, "SOC-2")  # 5 working days: long past
    late_civ = d.serve(start + 600, "CIV-1")  # 10 working days: long past
    ready = d.serve(start + 1200, "SOC-2")
    d.operate(c.CaseUpdate(ready, "approved", by="li"), start + 3600)
    j.close()
    run = CliRunner().invoke
    r = run(cli, ["cases", "overdue", "--config", str(tmp_path / "centre.toml")])
    assert r.exit_code == 0, r.output
    soc, civ = r.output.index("(soc)"), r.output.index("(civ)")
    assert civ < r.output.index(late_civ) < soc < r.output.index(late_soc)  # by id
    assert "working days late" in r.output and ready not in r.output
    r = run(cli, ["cases", "overdue", "--config", str(tmp_path / "centre.toml"), "--all",
                  "--department", "soc"])
    assert r.exit_code == 0 and ready in r.output and "not collected" in r.output
    assert late_civ not in r.output
    r = run(cli, ["cases", "overdue", "--config", str(tmp_path / "centre.toml"),
                  "--department", "nowhere"])
    assert r.exit_code == 2 and "no department" in r.output
