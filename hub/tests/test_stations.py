"""Community stations (协管员代收, issue 17) in the core: a station's case goes to the item's
department like a window's; a key seen before is a repeat, an edit or a replay after the
hand-over, each refused with nothing changed; hand-overs are counted on both sides; and a
snapshot restored plus the journal after it is the state a full replay gives."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.stations import StationHandOver, StationReceive, StationSubmit
from onewindow.hub.devices import Registry
from onewindow.hub.store.accounts import AccountError, Accounts
from onewindow.hub.store.journal import Record

from .test_snapshot import assert_restore_plus_tail_equals

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # a Monday
CATALOG = load_catalog()
ITEM = "SOC-003"  # promised, 15 working days; materials 0-2 required, 3 optional
ALL_REQUIRED = (0, 1, 2)


def centre() -> Centre:
    return Centre(CATALOG, CentreConfig("t1", (WindowSpec(1, "comprehensive"),)))


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def submit(key: str = "key-0001", station: str = "S01", content: object = 1,
           materials: tuple[int, ...] = ALL_REQUIRED, item: str = ITEM,
           photos: tuple[str, ...] = ("a" * 64,)) -> StationSubmit:
    return StationSubmit(station, key, item, "residenttoken01", digest(content), "assist1",
                         materials, photos, T0 - 60)


def test_a_station_case_goes_to_the_items_department_due_in_working_days():
    core = centre()
    effects = core.apply(submit(), T0)
    case = core.cases["20261123-s0001"]
    item = CATALOG.items[ITEM]
    assert case.department == item.approver and case.item == ITEM
    assert case.resident == "residenttoken01" and case.state == "open"
    due = core.calendar.add_workdays(dt.date(2026, 11, 23), item.promised_days)
    assert case.due_day == due.isoformat()
    assert [type(e).__name__ for e in effects] == ["CaseOpened", "StationCaseOpened"]
    sub = core.stations.submissions["key-0001"]
    assert (sub.station, sub.case, sub.collected_at, sub.batch) == (
        "S01", case.id, T0 - 60, None)


def refused(core: Centre, cmd: c.Command, code: str, now: float = T0 + 10) -> Rejected:
    before = copy.deepcopy(core.to_dict())
    with pytest.raises(Rejected) as e:
        core.apply(cmd, now)
    assert e.value.code == code, e.value.message
    assert core.to_dict() == before  # nothing changed
    return e.value


def test_the_same_key_again_is_a_repeat_naming_the_case_and_changes_nothing():
    core = centre()
    core.apply(submit(), T0)
    e = refused(core, submit(), "station_repeat")
    assert e.detail["case"] == "20261123-s0001"
    assert len(core.cases) == 1


def test_the_same_key_with_other_content_is_an_edit_and_is_refused():
    core = centre()
    core.apply(submit(), T0)
    e = refused(core, submit(content=2), "station_edited")
    assert "20261123-s0001" in e.message and e.detail["case"] == "20261123-s0001"
    # another station cannot take over a key either
    refused(core, submit(station="S02"), "station_edited")


def test_a_replay_after_the_hand_over_is_refused():
    core = centre()
    core.apply(submit(), T0)
    core.apply(StationHandOver("S01", 1, "assist1"), T0 + 100)
    e = refused(core, submit(), "station_handed_over", T0 + 200)
    assert e.detail == {"case": "20261123-s0001", "batch": "H0001"}
    refused(core, submit(content=3), "station_edited", T0 + 200)


@pytest.mark.parametrize(("cmd", "code"), [
    (submit(materials=(0, 1)), "materials_missing"),  # a required one not checked
    (submit(materials=(0, 1, 2, 9)), "unknown_material"),
    (submit(materials=(0, 1, 2, 2)), "unknown_material"),
    (submit(photos=()), "bad_field"),
    (submit(photos=("xyz",)), "bad_field"),
    (submit(item="NOPE"), "unknown_item"),
    (submit(key="short"), "bad_field"),
    (submit(station="S 01"), "bad_field"),
    (StationSubmit("S01", "key-0009", ITEM, "", digest(1), "assist1", ALL_REQUIRED,
                   ("a" * 64,)), "bad_field"),
    (StationSubmit("S01", "key-0009", ITEM, "x" * 65, digest(1), "assist1", ALL_REQUIRED,
                   ("a" * 64,)), "bad_field"),
    (StationSubmit("S01", "key-0009", ITEM, "residenttoken01", "nothex", "assist1",
                   ALL_REQUIRED, ("a" * 64,)), "bad_field"),
    (StationSubmit("S01", "key-0009", ITEM, "residenttoken01", digest(1), "assist1",
                   ALL_REQUIRED, ("a" * 64,), T0 + 3600), "bad_field"),  # from the future
])
def test_bad_submissions_are_refused_with_nothing_changed(cmd, code):
    core = centre()
    refused(core, cmd, code)
    assert core.cases == {} and core.stations.submissions == {}


def test_hand_over_counts_must_match_on_both_sides():
    core = centre()
    for n in range(3):
        core.apply(submit(key=f"key-000{n}", content=n), T0 + n)
    core.apply(submit(key="key-other", station="S02"), T0 + 5)
    refused(core, StationHandOver("S01", 2, "assist1"), "count_mismatch")
    refused(core, StationHandOver("S01", 0, "assist1"), "bad_field")
    refused(core, StationHandOver("S03", 1, "assist3"), "nothing_to_hand_over")
    core.apply(StationHandOver("S01", 3, "assist1"), T0 + 50)
    batch = core.stations.batches["H0001"]
    assert batch.station == "S01" and len(batch.cases) == 3  # not S02's
    assert core.stations.pending("S01") == [] and len(core.stations.pending("S02")) == 1
    refused(core, StationHandOver("S01", 1, "assist1"), "nothing_to_hand_over")
    refused(core, StationReceive("H0001", 2, "bo1"), "count_mismatch")
    refused(core, StationReceive("H0009", 3, "bo1"), "unknown_batch")
    core.apply(StationReceive("H0001", 3, "bo1"), T0 + 900)
    batch = core.stations.batches["H0001"]
    assert (batch.received_at, batch.received_by) == (T0 + 900, "bo1")
    refused(core, StationReceive("H0001", 3, "bo1"), "already_received", T0 + 901)


def test_station_cases_reach_the_back_office_actions_like_window_cases():
    core = centre()
    core.apply(submit(), T0)
    core.apply(c.CaseUpdate("20261123-s0001", "closed", ""), T0 + 60)
    assert core.cases["20261123-s0001"].state == "closed"


def test_records_round_trip_through_the_journal_form():
    for cmd in (submit(), StationHandOver("S01", 2, "a"), StationReceive("H0001", 2, "b")):
        rec = json.loads(json.dumps(cmd.to_record()))
        assert c.from_record(rec) == cmd


def test_station_accounts_need_a_station_and_only_they_have_one(tmp_path):
    acc = Accounts(f"sqlite:///{tmp_path}/a.db")
    try:
        a = acc.add("assist1", "password1", "station", station="S01")
        assert a.station == "S01" and acc.get("assist1").station == "S01"
        with pytest.raises(AccountError, match="station"):
            acc.add("assist2", "password1", "station")
        with pytest.raises(AccountError, match="station"):
            acc.add("clerk9", "password1", "clerk", station="S01")
        with pytest.raises(AccountError, match="station"):
            acc.add("assist3", "password1", "station", station="S 01")
        token = acc.start_session(a, 100.0)
        assert acc.session(token, 101.0).account.station == "S01"
    finally:
        acc.close()


# ---- snapshot == replay ---------------------------------------------------------------------
def fresh() -> HubApp:
    return HubApp(centre(), Registry([]), "boot1")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_restore_plus_tail_equals_a_full_replay(data):
    """Station submissions (new, repeated, edited), hand-overs and receipts with right and
    wrong counts, the back office closing cases, and midnights: a snapshot at any cut
    plus the journal after it equals the full replay."""
    app, now, records, keys = fresh(), T0, [], []
    for _ in range(data.draw(st.integers(5, 40))):
        now += data.draw(st.floats(1.0, 5000.0))
        kind = data.draw(st.sampled_from(["new", "new", "again", "edit", "handover",
                                          "receive", "close", "midnight"]))
        station = data.draw(st.sampled_from(["S01", "S02"]))
        if kind == "new" or (kind in ("again", "edit") and not keys):
            key = f"key-{len(keys):04d}"
            keys.append((key, station))
            cmd: c.Command = submit(key, station, key)
        elif kind in ("again", "edit"):
            key, station = data.draw(st.sampled_from(keys))
            cmd = submit(key, station, key if kind == "again" else "edited")
        elif kind == "handover":
            pending = len(app.centre.stations.pending(station))
            cmd = StationHandOver(station, pending + data.draw(st.sampled_from([0, 0, 1])), "a")
        elif kind == "receive":
            batches = list(app.centre.stations.batches.values()) or [None]
            b = data.draw(st.sampled_from(batches))
            if b is None:
                continue
            cmd = StationReceive(b.id, len(b.cases) + data.draw(st.sampled_from([0, 0, -1])),
                                 "bo1")
        elif kind == "close":
            open_ = sorted(k for k, v in app.centre.cases.items() if v.state == "open")
            if not open_:
                continue
            cmd = c.CaseUpdate(data.draw(st.sampled_from(open_)), "closed", "")
        else:
            now += data.draw(st.floats(10 * 3600, 40 * 3600))
            continue
        try:
            step = app.operate(cmd, now)
        except Rejected:
            continue
        records += [Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                    for r in step.records]
    full = fresh()
    full.replay(records)
    assert full.centre.to_dict() == app.centre.to_dict()
    assert_restore_plus_tail_equals(full, records, data, now, make=fresh)


def test_a_snapshot_from_before_stations_restores_with_none():
    app = fresh()
    snap = app.snapshot()
    snap["centre"].pop("stations", None)
    restored = fresh()
    restored.restore(json.loads(json.dumps(snap)))
    assert restored.centre.stations.submissions == {}
    assert restored.centre.to_dict() == app.centre.to_dict()


def test_purge_takes_an_old_station_cases_token_out_and_the_journal_still_replays(tmp_path):
    """Past `resident_days` after its case closed, a station case's token leaves the
    record (None: the field stays) like a take's; a replay of the purged record opens the
    same case without it; a recent station case keeps its token."""
    from onewindow.hub.store.journal import Journal
    from onewindow.hub.store.retention import Retention, plan

    app = fresh()
    old_rec = app.operate(submit("key-old1"), T0).records
    old_rec += app.operate(c.CaseUpdate("20261123-s0001", "closed", ""), T0 + 60).records
    later = T0 + 200 * 86400
    new_rec = app.operate(StationSubmit("S01", "key-new1", ITEM, "residenttoken02",
                                        digest(9), "assist1", ALL_REQUIRED, ("b" * 64,)),
                          later).records
    j = Journal(f"sqlite:///{tmp_path}/j.db")
    try:
        j.append(old_rec + new_rec)
        p = plan(j, app.centre.cases.values(), tmp_path / "files", Retention(), later + 60)
    finally:
        j.close()
    assert p.token_set == {"residenttoken01"}
    purged = p.rewrite[old_rec[0].pos]
    assert purged["op"] == "station_case" and purged["resident"] is None
    assert new_rec[0].pos not in p.rewrite
    again = fresh()
    records = [Record(r.pos, r.ts, r.dev, r.seq, p.rewrite.get(r.pos, r.body))
               for r in old_rec + new_rec]
    assert again.replay(records) == 3
    # the old case closed and left memory at a later day's close; the rest is as before
    assert again.centre.stations.to_dict() == app.centre.stations.to_dict()
    assert again.centre.cases.keys() == app.centre.cases.keys() == {"20270611-s0002"}


def test_cli_adds_a_station_account_checked_against_the_centres_list(tmp_path):
    from typer.testing import CliRunner

    from onewindow.hub.cli import app as cli
    from onewindow.tools.testkit.testbed import default_devices, write_config

    cfg = write_config(tmp_path / "centre.toml", "c1", 1883, tmp_path / "hub.db", windows=1,
                       devices=default_devices(1),
                       extra='\n[stations.names]\nS01 = "幸福里社区工作站"\n')
    run = CliRunner()

    def add(*args: str):
        return run.invoke(cli, ["user", "add", "--config", str(cfg), "--password-stdin",
                                *args], input="s3cret-pass\n")

    r = add("--username", "wang", "--role", "station", "--station", "S09")
    assert r.exit_code == 2 and "no station 'S09'" in r.output
    r = add("--username", "wang", "--role", "station")
    assert r.exit_code == 1 and "--station" in r.output
    r = add("--username", "wang", "--role", "clerk", "--station", "S01")
    assert r.exit_code == 1 and "station" in r.output
    r = add("--username", "wang", "--role", "station", "--station", "S01")
    assert r.exit_code == 0 and "station S01" in r.output, r.output
    r = run.invoke(cli, ["user", "list", "--config", str(cfg)])
    assert r.output.strip().splitlines() == ["wang\twang\tstation\t-\tS01\tactive"]
