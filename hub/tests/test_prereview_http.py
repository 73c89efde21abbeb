"""Pre-review that counts (预审 / 一次办成) over HTTP, the hub's app in-process: the kiosk
journals what its pre-review found with the ticket (ticked, missing, tips printed, queued
anyway) or on its own when the resident leaves without one; the console shows it to the
clerk with the items often done together (多问一句), and "returned for materials" ends the
visit with who did it and offers the tips slip. Bad input is a clear error and changes
nothing. The records journaled replay into the same state."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store.journal import Record

from .test_staff_http import Env

ID_CARD, HUKOU = "本人居民身份证", "户口簿"  # SOC-001's required materials: SOC-001.0, .1
DEVICES = [DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1),
           DeviceSpec("box-2", "box", 2)]  # box-2: a printer at window 2


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    e.hub.registry = Registry(DEVICES)
    e.records = []
    e.site.port.subscribe(lambda step: e.records.extend(step.records))
    kiosk = e.client()
    kiosk.get("/kiosk?device=kiosk-1")
    e.kiosk = kiosk
    yield e
    e.site.accounts.close()


def ops(env) -> list[dict]:
    return [json.loads(json.dumps(r.body)) for r in env.records]


def test_a_complete_pre_review_rides_on_the_ticket(env):
    r = env.kiosk.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001",
                                            "have": [ID_CARD, HUKOU]})
    assert r.status_code == 200, r.text
    rec = ops(env)[-1]
    assert rec["op"] == "take" and rec["review"] == {
        "ticked": ["SOC-001.0", "SOC-001.1"], "missing": [], "tips": False,
        "insisted": False}
    t = env.hub.centre.tickets[r.json()["id"]]
    assert t.review == rec["review"]
    # nothing about the resident in it: material keys and flags only
    assert set(rec["review"]) == {"ticked", "missing", "tips", "insisted"}


def test_queued_anyway_after_tips_printed_is_journaled_with_the_ticket(env):
    body = {"device": "kiosk-1", "item": "SOC-001", "have": [ID_CARD]}
    r = env.kiosk.post("/kiosk/take", json=body)
    assert r.status_code == 409 and r.json()["code"] == "materials_missing"
    assert env.hub.centre.tickets == {} and env.records == []
    r = env.kiosk.post("/kiosk/take", json={**body, "insist": True, "tips_printed": True})
    assert r.status_code == 200, r.text
    assert ops(env)[-1]["review"] == {"ticked": ["SOC-001.0"], "missing": ["SOC-001.1"],
                                      "tips": True, "insisted": True}


def test_leaving_without_a_ticket_is_a_wasted_wait_avoided(env):
    body = {"device": "kiosk-1", "item": "SOC-001", "extra_items": ["SOC-002"],
            "have": [ID_CARD], "tips_printed": True}
    r = env.kiosk.post("/kiosk/left", json=body)
    assert r.status_code == 200, r.text
    rec = ops(env)[-1]
    assert rec["op"] == "prereview" and rec["items"] == ["SOC-001", "SOC-002"]
    assert "SOC-001.1" in rec["missing"] and rec["tips"] is True
    assert env.hub.centre.kiosk_left == (1, 1)
    assert env.hub.centre.tickets == {}


@pytest.mark.parametrize("body, status, code", [
    ({"item": "SOC-001", "have": [ID_CARD, HUKOU]}, 409, "nothing_missing"),
    ({"item": "NOPE-1", "have": []}, 404, "unknown_item"),
    ({"item": "SOC-001", "have": [], "device": "kp-1"}, 403, "unknown_device"),
    ({"item": "SOC-001", "extra_items": "SOC-002", "have": []}, 400, "bad_field"),
])
def test_a_bad_leave_is_refused_and_changes_nothing(env, body, status, code):
    r = env.kiosk.post("/kiosk/left", json={"device": "kiosk-1", **body})
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert env.records == [] and env.hub.centre.kiosk_left == (0, 0)


def serve(env, clerk, n: int, body: dict) -> dict:
    """A kiosk ticket, called and started at window n from the console."""
    r = env.kiosk.post("/kiosk/take", json={"device": "kiosk-1", **body})
    assert r.status_code == 200, r.text
    for act in ("open", "call", "start"):
        assert clerk.post(f"/console/{act}", json={"window": n}).status_code == 200
    return r.json()


def test_the_console_shows_the_pre_review_and_related_items(env):
    clerk = env.client("clerk1")
    serve(env, clerk, 1, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    t = clerk.get("/console/state").json()["ticket"]
    assert t["prereview"] == {"outcome": "queued_anyway", "tips": False, "insisted": True}
    status = {m["key"]: m["status"] for m in t["review_materials"]}
    assert status == {"SOC-001.0": "ticked", "SOC-001.1": "missing", "SOC-001.2": None}
    assert [r["id"] for r in t["related"]][:2] == ["SOC-002", "SOC-005"]  # the catalog's


def test_returned_for_materials_ends_the_visit_with_who_and_offers_the_slip(env):
    clerk = env.client("clerk1")
    tk = serve(env, clerk, 1, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    r = clerk.post("/console/return", json={"window": 1, "missing": ["SOC-001.1"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ticket"] is None and out["window"]["state"] == "idle"
    slip = out["returned"]
    assert slip["number"] == tk["number"] and slip["missing"] == ["SOC-001.1"]
    assert "/tips?items=SOC-001&miss=SOC-001.1" in slip["tips_url"] and "<svg" in slip["qr"]
    assert slip["printed_on"] is None  # no printer at window 1: offered only
    rec = ops(env)[-1]
    assert rec == {"op": "return_materials", "window": 1, "missing": ["SOC-001.1"],
                   "by": "clerk1"}
    t = env.hub.centre.tickets[tk["id"]]
    assert t.state.value == "done" and t.returned == ("SOC-001.1",)
    assert t.returned_by == "clerk1"
    # the slip page lists the missing material, marked
    assert slip["tips_url"].endswith(slip["tips_path"])  # the QR's: where phones reach it
    page = env.kiosk.get(slip["tips_path"])
    assert page.status_code == 200 and HUKOU in page.text


def test_a_window_with_a_printer_prints_the_slip_there(env, monkeypatch):
    sent = []

    async def send(publishes):
        sent.extend(publishes)

    monkeypatch.setattr(env.site, "send", send)
    clerk = env.client("clerk2")
    serve(env, clerk, 2, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    r = clerk.post("/console/return", json={"window": 2, "missing": ["SOC-001.1"]})
    assert r.status_code == 200 and r.json()["returned"]["printed_on"] == "box-2"
    [p] = sent
    assert p.topic.endswith("/dev/box-2/cmd")
    msg = json.loads(p.payload)
    assert msg["type"] == "print" and msg["ticket"] == "tips"
    assert any(HUKOU in line for line in msg["lines"])


@pytest.mark.parametrize("body, status, code", [
    ({"missing": ["SOC-001.9"]}, 409, "unknown_material"),
    ({"missing": ["MED-001.0"]}, 409, "unknown_material"),  # not this ticket's item
    ({"missing": []}, 409, "materials_required"),
    ({"missing": "SOC-001.1"}, 400, "bad_request"),
    ({}, 400, "bad_request"),
])
def test_a_bad_return_is_refused_and_changes_nothing(env, body, status, code):
    clerk = env.client("clerk1")
    serve(env, clerk, 1, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    before, n = env.hub.centre.to_dict(), len(env.records)
    r = clerk.post("/console/return", json={"window": 1, **body})
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert env.hub.centre.to_dict() == before and len(env.records) == n


def test_a_return_without_a_ticket_being_served_is_refused(env):
    clerk = env.client("clerk1")
    assert clerk.post("/console/open", json={"window": 1}).status_code == 200
    r = clerk.post("/console/return", json={"window": 1, "missing": ["SOC-001.1"]})
    assert (r.status_code, r.json()["code"]) == (409, "no_current_ticket")
    env.kiosk.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001",
                                        "have": [ID_CARD, HUKOU]})
    assert clerk.post("/console/call", json={"window": 1}).status_code == 200
    before, n = env.hub.centre.to_dict(), len(env.records)
    r = clerk.post("/console/return", json={"window": 1, "missing": ["SOC-001.1"]})
    assert (r.status_code, r.json()["code"]) == (409, "not_serving")  # called, not started
    assert "开始办理" in r.json()["msg"] and "start" in r.json()["msg"]
    assert env.hub.centre.to_dict() == before and len(env.records) == n
    # another clerk's window: refused before the core
    r = env.client("clerk2").post("/console/return", json={"window": 1, "missing": []})
    assert (r.status_code, r.json()["code"]) == (403, "not_your_window")


def test_the_records_replay_into_the_same_state(env):
    clerk = env.client("clerk1")
    env.kiosk.post("/kiosk/left", json={"device": "kiosk-1", "item": "SOC-001", "have": []})
    serve(env, clerk, 1, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    clerk.post("/console/return", json={"window": 1, "missing": ["SOC-001.1"]})
    fresh = HubApp(Centre(env.hub.centre.catalog,
                          CentreConfig("t", tuple(WindowSpec(n) for n in (1, 2, 3)))),
                   Registry(DEVICES), "b")
    fresh.replay([Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                  for r in env.records])
    assert fresh.centre.to_dict() == env.hub.centre.to_dict()


def test_an_old_take_record_without_a_review_still_replays():
    rec = {"op": "take", "item": "SOC-001", "priority": "normal", "resident": None,
           "appointment_at": None, "extra_items": [], "source": "box-1", "number": None,
           "taken_at": None, "request": 3, "supersedes": None}
    cmd = c.from_record(rec)
    assert isinstance(cmd, c.TakeTicket) and cmd.review is None
    assert json.loads(json.dumps(cmd.to_record())) == rec  # written as before


def test_the_pages_say_it_in_each_language(env):
    clerk = env.client("clerk1")
    zh = clerk.get("/console?lang=zh_CN", headers={"accept": "text/html"}).text
    assert "退回补材料（结束本次办理）" in zh and "console_review.js" in zh
    tw = clerk.get("/console?lang=zh_TW", headers={"accept": "text/html"}).text
    assert "退回補材料（結束本次辦理）" in tw
    en = clerk.get("/console?lang=en", headers={"accept": "text/html"}).text
    assert "Return for materials (ends the visit)" in en
    page = env.kiosk.get("/kiosk/item/SOC-001?lang=zh_TW").text
    assert "我先回去準備材料" in page


def test_the_dashboard_counts_today_and_reads_the_past_days_from_the_tables(env, tmp_path):
    from onewindow.hub.store.history import DayFacts, History, day_summary
    from onewindow.hub.store.journal import Journal
    from onewindow.hub.web.trips_view import TripsView

    clerk = env.client("clerk1")
    env.kiosk.post("/kiosk/left", json={"device": "kiosk-1", "item": "SOC-001", "have": [],
                                        "tips_printed": True})
    serve(env, clerk, 1, {"item": "SOC-001", "have": [ID_CARD], "insist": True})
    clerk.post("/console/return", json={"window": 1, "missing": ["SOC-001.1"]})
    sup = env.client("sup")
    today = sup.get("/dashboard/state").json()["trips"]["today"]
    assert (today["kiosk_left"], today["kiosk_left_tips"]) == (1, 1)
    assert (today["queued_anyway"], today["returned"], today["reviewed"]) == (1, 1, 1)
    assert sup.get("/dashboard/state").json()["trips"]["period"] is None  # no journal
    page = sup.get("/dashboard?lang=zh_CN", headers={"accept": "text/html"}).text
    assert "今日自助机预审劝返（免于白等）" in page and "trips_dashboard.js" in page

    # the past days: a resident returned three days ago and served today is a second trip
    journal = Journal(f"sqlite:///{tmp_path}/j.db")
    centre = env.hub.centre
    day = centre.local_date(env.now)
    past = (day - dt.timedelta(days=3)).strftime("%Y%m%d")
    row = {"id": f"{past}-A001", "day": past, "item": "SOC-001", "priority": "normal",
           "state": "done", "issued_at": env.now - 3 * 86400, "first_call_at": None,
           "window": 1, "wait_min": None, "one_window": True, "extra_items": "",
           "resident": "tok-1", "review": "queued_anyway", "returned": "SOC-001.1"}
    History(journal.engine).write([DayFacts(past, day_summary(past, [row], (2, 1)), [row])])
    env.site.port.journal = journal
    env.act(c.TakeTicket("SOC-001", resident="tok-1", source="kiosk-1"))
    for act in ("call", "start", "complete"):
        clerk.post(f"/console/{act}", json={"window": 1})
    trips_view = TripsView(env.site)
    assert trips_view.view()["period"] is None  # read in a worker thread: not there yet
    trips_view.past.settle()
    view = trips_view.view()
    assert view["today"]["served_with_token"] == 1 and view["today"]["one_trip"] == 0
    assert view["today"]["repeat_visits"] == 1
    assert view["period"]["kiosk_left"] == 2 and view["period"]["returned"] == 1
    journal.close()


def test_related_items_come_from_what_residents_really_do_together(env, tmp_path):
    from onewindow.hub.store.history import DayFacts, History, day_summary
    from onewindow.hub.store.journal import Journal

    med = env.hub.centre.catalog.items["MED-001"]
    assert "MED-001" not in env.hub.centre.catalog.items["SOC-001"].related
    page = env.kiosk.get("/kiosk/item/SOC-001?lang=zh_CN").text
    assert 'value="MED-001"' not in page  # the catalog's list only, so far
    # today: two residents (card tokens) do SOC-001 and MED-001; a third only SOC-001
    for token in ("tok-a", "tok-b"):
        for item in ("SOC-001", "MED-001"):
            env.act(c.TakeTicket(item, resident=token, source="kiosk-1"))
    env.act(c.TakeTicket("SOC-001", resident="tok-c", source="kiosk-1"))
    page = env.kiosk.get("/kiosk/item/SOC-001?lang=zh_CN").text
    assert 'value="MED-001"' in page and med.name.zh in page
    assert page.index('value="SOC-002"') < page.index('value="MED-001"')  # catalog's first
    clerk = env.client("clerk1")
    for act in ("open", "call"):
        clerk.post(f"/console/{act}", json={"window": 1})
    related = clerk.get("/console/state").json()["ticket"]["related"]
    assert {r["id"]: r["seen"] for r in related}["MED-001"] == 2
    # past weeks in the tables count too: a ticket with extra items, on a day now gone
    journal = Journal(f"sqlite:///{tmp_path}/j.db")
    day = env.hub.centre.local_date(env.now)
    past = (day - dt.timedelta(days=8)).strftime("%Y%m%d")
    rows = [{"id": f"{past}-A00{k}", "day": past, "item": "SOC-001", "priority": "normal",
             "state": "done", "issued_at": env.now - 8 * 86400, "first_call_at": None,
             "window": 1, "wait_min": None, "one_window": True, "extra_items": "CIV-001",
             "resident": None, "review": None, "returned": ""} for k in (1, 2)]
    History(journal.engine).write([DayFacts(past, day_summary(past, rows), rows)])
    env.site.port.journal = journal
    from onewindow.hub.web.related import Related

    related = Related(env.site)
    assert dict(related.learned("SOC-001")) == {"MED-001": 2}  # the tables: being read
    related.past.settle()
    assert dict(related.learned("SOC-001")) == {"MED-001": 2, "CIV-001": 2}
    journal.close()
