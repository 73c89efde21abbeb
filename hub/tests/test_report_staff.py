"""The five-dimension staff report: numbers from a small synthetic history and from
hand-made journals, the new case command, HTML/CSV output and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections import Counter

import pytest
from typer.testing import CliRunner

from onewindow.hub.catalog import load_catalog
from onewindow.hub.cli import app
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.ratings import level
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.report.cli import build, load_source
from onewindow.hub.report.render import write_all
from onewindow.hub.report.staff import (
    Facts,
    ReportSettings,
    Service,
    collect,
    compute,
    month_span,
)
from onewindow.hub.sim.history import write_history
from onewindow.hub.sim.model import at_local
from onewindow.hub.store.journal import Record

CATALOG = load_catalog()
HARD, EASY = "CIV-001", "SOC-008"  # promised 30 min weight 2.9; instant 2 min weight 0.5


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Four working days of a six-window centre (about a second to write)."""
    path = tmp_path_factory.mktemp("hist") / "h.db"
    url = f"sqlite:///{path}"
    write_history(CATALOG, url, dt.date(2026, 10, 12), dt.date(2026, 10, 16), windows=6,
                  seed=3)
    # a month report over a journal that reaches into the month: 2026-10 holds it all
    return url, path


@pytest.fixture(scope="module")
def report(history):
    url, _ = history
    return build(load_source(None, url, None), "2026-10")


def _journal_rows(path):
    con = sqlite3.connect(path)
    try:
        return [(ts, dev, op, body) for ts, dev, op, body in
                con.execute("select ts, dev, op, body from journal order by pos")]
    finally:
        con.close()


def test_replay_is_clean_and_quantity_matches_completions(report, history):
    import json

    _, path = history
    rows = _journal_rows(path)
    assert report.facts.rejected == 0
    # each window's clerk (sim windows open every day with the same clerk)
    clerk_of = {json.loads(b)["window"]: json.loads(b)["clerk"] for _, _, op, b in rows
                if op == "open"}
    completes = Counter(clerk_of[int(dev.split("-")[1])] for _, dev, op, _ in rows
                        if op == "complete")
    by_clerk = {r.clerk: r for r in report.clerks}
    assert {k: r.services for k, r in by_clerk.items()} == dict(completes)
    assert report.centre["services"] == sum(completes.values())
    # quantity = items of the completed services (item + extra items)
    assert sum(r.quantity for r in report.clerks) == sum(len(s.items)
                                                         for s in report.facts.services)
    assert report.centre["quantity"] >= report.centre["services"]
    # the item table adds up to the same items, and annualises by open days
    assert sum(i.handled for i in report.items) == report.centre["quantity"]
    top = report.items[0]
    assert top.annual == pytest.approx(top.handled / 4 * 250)


def test_rating_share_from_the_journal(report, history):
    import json

    _, path = history
    rates = [json.loads(b) for _, _, op, b in _journal_rows(path) if op == "rate"]
    assert rates
    for r in report.clerks:
        mine = [x for x in rates if x["clerk"] == r.clerk]
        assert r.ratings == len(mine)
        # The simulated residents rate on the three-level keys (journaled with scale 3: 1
        # good, 2 ok, 3 bad); the share is the state's 满意率 on the five levels they map
        # onto, (非常满意 + 满意 + 基本满意) / all: good and ok both count.
        assert {x.get("scale") for x in mine} == {3}
        assert r.rating_share == pytest.approx(
            sum(level(x["score"], x["scale"]) in (5, 4, 3) for x in mine) / len(mine))
        assert r.rating_share == pytest.approx(
            sum(x["score"] in (1, 2) for x in mine) / len(mine))
        assert r.scores["rating"] == pytest.approx(100 * r.rating_share)


def test_history_emits_case_updates_that_replay(history, report):
    _, path = history
    ops = Counter(op for _, _, op, _ in _journal_rows(path))
    assert ops["case"] > 0  # closed when due, and a few returned / corrected
    accepted = sum(1 for e in report.facts.cases if e.action == "accepted")
    assert accepted == report.centre["cases"] > 0
    assert all(e.clerk != "unknown" for e in report.facts.cases)


def test_composite_is_the_weighted_mean(report):
    w = report.settings.weights
    for r in report.clerks:
        assert r.composite == pytest.approx(
            sum(w[k] * r.scores[k] for k in w) / sum(w.values()))
        assert all(0 <= v <= 100 for v in r.scores.values())
    assert sorted(r.rank for r in report.clerks) == list(range(1, len(report.clerks) + 1))


def _facts(services):
    f = Facts(0.0, 1e12, services=services)
    f.open_days = {s.day for s in services}
    return f


def test_hard_items_pay_in_value_weighted_workload():
    hard = [Service(f"h{k}", "2026-10-12", 1, "hard", (HARD,), 0, 1800) for k in range(10)]
    easy = [Service(f"e{k}", "2026-10-12", 2, "easy", (EASY,), 0, 120) for k in range(10)]
    rep = compute(_facts(hard + easy), CATALOG)
    by = {r.clerk: r for r in rep.clerks}
    assert by["hard"].quantity == by["easy"].quantity == 10
    assert by["hard"].value == pytest.approx(29.0)
    assert by["easy"].value == pytest.approx(5.0)
    assert by["hard"].scores["value"] == 100 > by["easy"].scores["value"]
    assert by["hard"].composite > by["easy"].composite
    # configurable difficulty weights
    rep = compute(_facts(hard + easy), CATALOG,
                  ReportSettings.from_dict({"item_weights": {EASY: 5.0}}))
    assert {r.clerk: r.value for r in rep.clerks}["easy"] == pytest.approx(50.0)


def test_efficiency_is_standard_over_actual_and_skips_short_services():
    svs = [Service("a", "2026-10-12", 1, "x", (HARD,), 0, 60 * 60),  # 30 std / 60 actual
           Service("b", "2026-10-12", 1, "x", (HARD,), 0, 60)]  # 1 min: told what is missing
    r = compute(_facts(svs), CATALOG).clerks[0]
    assert r.efficiency == pytest.approx(0.5)
    assert r.short_services == 1 and r.quantity == 2


def test_weights_validated():
    with pytest.raises(ValueError):
        ReportSettings.from_dict({"weights": {"speed": 1}})
    s = ReportSettings.from_dict({"weights": {"quality": 3}, "satisfied": [1, 2]})
    assert s.weights["quality"] == 3 and s.weights["quantity"] == 1 and s.satisfied == (1, 2)


# ---- a hand-made journal: two clerks, one returned case ------------------------------------
def _hand_journal():
    config = CentreConfig("t", (WindowSpec(1), WindowSpec(2)))
    centre = Centre(CATALOG, config)
    recs: list[Record] = []
    t = at_local(dt.date(2026, 10, 12), dt.time(9, 0))

    def op(cmd, dt_s=30.0):
        nonlocal t
        t += dt_s
        centre.apply(cmd, t)
        recs.append(Record(len(recs) + 1, t, None, None, cmd.to_record()))

    op(c.OpenWindow(1, "alice"))
    op(c.OpenWindow(2, "bob"))
    op(c.TakeTicket(HARD))
    op(c.TakeTicket(HARD))
    op(c.CallNext(1))
    op(c.CallNext(2))
    op(c.Start(1))
    op(c.Start(2))
    op(c.Complete(1), 1800)
    op(c.Complete(2), 60 * 40)
    cases = sorted(centre.cases.values(), key=lambda k: k.opened_at)
    alice_case, bob_case = cases[0].id, cases[1].id
    # bob's resident rates the service a minute after it (a rating must be tied to a
    # service, in time); written in the older record form, with `clerk`
    t += 60
    recs.append(Record(len(recs) + 1, t, "kp-2", 1,
                       {"op": "rate", "ticket": bob_case, "score": 3, "window": 2,
                        "clerk": "bob"}))
    t += 86400
    op(c.CaseUpdate(alice_case, "returned", "缺少申请表", by="li",
                     materials=(0,) if centre.catalog.items[cases[0].item].materials else ()))
    op(c.CaseUpdate(alice_case, "resubmitted"))
    op(c.CaseUpdate(bob_case, "closed"))
    return config, centre, recs, alice_case


def test_a_returned_case_counts_against_its_clerk():
    config, _, recs, _ = _hand_journal()
    start, end = month_span("2026-10")
    rep = compute(collect(recs, CATALOG, config, start, end), CATALOG)
    by = {r.clerk: r for r in rep.clerks}
    assert by["alice"].cases == by["bob"].cases == 1
    assert by["alice"].returned == 1 and by["alice"].quality == 0.0
    assert by["bob"].defects == 0 and by["bob"].quality == 1.0
    assert by["alice"].scores["quality"] < by["bob"].scores["quality"]
    assert by["bob"].rating_share == 0.0 and by["alice"].rating_share is None
    # 30 standard minutes; start -> complete took 30.5 and 70 minutes
    assert by["alice"].efficiency == pytest.approx(1800 / 1830)
    assert by["bob"].efficiency == pytest.approx(1800 / 4200)
    assert rep.centre["closed"] == 1
    # the next month sees none of it
    nov = compute(collect(recs, CATALOG, config, *month_span("2026-11")), CATALOG)
    assert nov.clerks == []


def test_case_update_command_rules():
    _, centre, _, alice_case = _hand_journal()
    assert centre.cases[alice_case].state == "open"
    cmd = c.CaseUpdate(alice_case, "reopened")
    assert c.from_record(cmd.to_record()) == cmd
    with pytest.raises(Rejected) as e:
        centre.apply(cmd, centre._day_span[0] + 1)
    assert e.value.code == "bad_case_state"
    with pytest.raises(Rejected):
        centre.apply(c.CaseUpdate("nope", "closed"), centre._day_span[0] + 1)
    with pytest.raises(Rejected):
        centre.apply(c.CaseUpdate(alice_case, "lost"), centre._day_span[0] + 1)
    centre.apply(c.CaseUpdate(alice_case, "closed"), centre._day_span[0] + 2)
    centre.apply(c.CaseUpdate(alice_case, "reopened"), centre._day_span[0] + 3)
    assert centre.cases[alice_case].state == "open"


# ---- output ---------------------------------------------------------------------------------
def test_html_and_csv(report, tmp_path):
    paths = write_all(report, CATALOG, tmp_path / "r")
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "中心汇总" in page and "Centre summary" in page and "data:image/png;base64," in page
    for r in report.clerks:
        assert f"id='c-{r.clerk}'" in page
    with open(tmp_path / "r" / "clerks.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report.clerks)
    assert sum(int(r["quantity"]) for r in rows) == report.centre["quantity"]
    with open(tmp_path / "r" / "items.csv", encoding="utf-8-sig") as f:
        items = list(csv.DictReader(f))
    assert items[0]["item"] == report.items[0].item
    # index.html, clerks, items, centre, helps (per department) and pauses (per reason) .csv
    assert len(paths) == 6


def test_cli_smoke(history, tmp_path):
    url, _ = history
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", "--month", "2026-10", "--db", url, "--out",
                                   str(out), "--weight", "quality=2", "--no-charts"])
    assert res.exit_code == 0, res.output
    assert (out / "index.html").exists() and (out / "clerks.csv").exists()
    with open(out / "centre.csv", encoding="utf-8-sig") as f:
        kv = dict(csv.reader(f))
    assert kv["weight_quality"] == "2.0"
    bad = CliRunner().invoke(app, ["report", "--month", "2026-13", "--db", url, "--out",
                                   str(out)])
    assert bad.exit_code == 2


def test_cli_with_a_centre_config(tmp_path):
    """A real hub's journal (no simulator meta): windows and [report] from centre.toml."""
    from onewindow.hub.store.journal import Journal

    _, _, recs, _ = _hand_journal()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    j = Journal(url)
    j.append(recs)
    j.close()
    cfg = tmp_path / "centre.toml"
    cfg.write_text(f'[centre]\nid = "t"\n\n[[windows]]\nnumber = 1\n\n[[windows]]\nnumber = 2\n'
                   f'\n[store]\nurl = "{url}"\n\n[report.weights]\nquality = 3\n',
                   encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", "--config", str(cfg), "--month", "2026-10",
                                   "--out", str(out), "--no-charts"])
    assert res.exit_code == 0, res.output
    with open(out / "clerks.csv", encoding="utf-8-sig") as f:
        rows = {r["clerk"]: r for r in csv.DictReader(f)}
    assert rows["alice"]["returned"] == "1" and rows["bob"]["quality"] == "1.0"
    assert float(rows["bob"]["composite"]) > float(rows["alice"]["composite"])
    # without --config a non-simulated journal cannot be replayed faithfully
    res = CliRunner().invoke(app, ["report", "--db", url, "--month", "2026-10",
                                   "--out", str(out)])
    assert res.exit_code == 2 and "--config" in res.output


def test_html_shows_the_rating_levels_the_satisfaction_rate_and_the_follow_ups():
    """The old journal's five ratings as three-key devices send them today (2 good -> 5,
    1 ok -> 3, 2 bad -> 1), the two bad ones opening follow-ups, one of them closed."""
    from onewindow.hub.report.render import render_html

    from .test_rating_scale import app, old_journal, with_scale

    records = with_scale(old_journal())
    live = app()
    live.replay(records)
    day, at = live.centre.day, records[-1].ts
    records += live.operate(c.CloseFollowup(f"{day}-A003", "sup", "已回访"), at + 60).records
    core = live.centre
    report = compute(collect(records, core.catalog, core.config, at - 86400, at + 3600),
                     core.catalog)
    page = render_html(report, core.catalog, charts=False)
    for label, n in (("非常满意 Very satisfied (5)", 2), ("满意 Satisfied (4)", 0),
                     ("基本满意 Fairly satisfied (3)", 1), ("不满意 Dissatisfied (2)", 0),
                     ("非常不满意 Very dissatisfied (1)", 2)):
        assert f"<tr><td>{label}</td><td>{n}</td></tr>" in page, label
    # 满意率 = (非常满意 + 满意 + 基本满意) / all = 3 / 5
    assert "(非常满意+满意+基本满意)/评价数</td><td>60.0% (3/5)</td>" in page
    assert "未整改 open</td><td>2 / 1 / 1</td>" in page  # opened / closed / open
    # per clerk: alice rated 5, 5, 1 (one follow-up), bob 3, 1 (one follow-up)
    assert "66.7% (2/3; 非常满意 2 · 满意 0 · 基本满意 0 · 不满意 0 · 非常不满意 1; " \
           "差评整改 follow-ups 1)" in page
    assert "50.0% (1/2; 非常满意 0 · 满意 0 · 基本满意 1 · 不满意 0 · 非常不满意 1; " \
           "差评整改 follow-ups 1)" in page
    assert "1 非常不满意 very dissatisfied" in page and "score 1 (1 满意" not in page
