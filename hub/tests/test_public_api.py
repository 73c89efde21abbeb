"""The public pages' HTTP side in-process (no browser): the kiosk's pre-review rules, the
tips printout, the phone page's snapshot and the hall's voice endpoint."""

from __future__ import annotations

import asyncio
import base64
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.render.escpos_decode import decode
from onewindow.hub.web import public
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.protocol import ow_protocol as proto

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

STATUS = "http://hub.example:8080/t/"


@pytest.fixture
def env():
    cat = load_catalog()
    centre = Centre(cat, CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("box-1", "box"),
                         DeviceSpec("kp-1", "keypad", 1)])
    hub = HubApp(centre, registry, "b1", STATUS)
    site = Site(hub)
    sent = []

    async def send(publishes):
        sent.extend(publishes)

    site.send = send  # type: ignore[method-assign]
    app = Starlette(routes=public.routes(site), middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/kiosk?device=kiosk-1")  # the CSRF cookie
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    return client, site, sent


def run(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


def act(site, cmd):
    return run(site.act(cmd))


ID_CARD, HUKOU = "本人居民身份证", "户口簿"  # SOC-001's required materials


def test_kiosk_pages_in_both_languages(env):
    client, _, _ = env
    home = client.get("/kiosk?device=kiosk-1")
    assert home.status_code == 200 and "您今天要办什么事" in home.text and "社会保险" in home.text
    assert client.cookies["ow_kiosk"] == "kiosk-1"
    en = client.get("/kiosk/item/SOC-001?lang=en")  # the device from the cookie
    assert en.status_code == 200 and "Pre-review" in en.text and "pension" in en.text
    assert "Ask one more question" in en.text  # SOC-001 has related items
    assert client.get("/kiosk/search?q=yl").text.count("/kiosk/item/") >= 5
    assert client.get("/kiosk/search.json?q=yanglao").json()["items"][0]["id"].startswith("SOC")
    assert client.get("/kiosk/item/NOPE").status_code == 404
    client.cookies.clear()
    bad = client.get("/kiosk?device=kp-1")  # a keypad cannot print tickets
    assert bad.status_code == 400 and "kp-1" in bad.text


def test_pre_review_refuses_a_ticket_until_the_resident_insists(env):
    client, site, _ = env
    body = {"device": "kiosk-1", "item": "SOC-001", "extra_items": ["SOC-005"],
            "have": [HUKOU]}
    review = client.post("/kiosk/review", json=body).json()
    assert review["ok"] is False
    assert [m["item"] for m in review["missing"]] == ["SOC-001", "SOC-005"]
    assert review["missing"][0]["materials"] == [
        {"zh": ID_CARD, "en": "Applicant's resident ID card"}]
    assert review["tips_url"].startswith("http://hub.example:8080/tips?items=SOC-001%2CSOC-005")
    assert review["qr"].startswith("<svg")

    refused = client.post("/kiosk/take", json=body)
    assert refused.status_code == 409 and refused.json()["code"] == "materials_missing"
    assert site.hub.centre.tickets == {}  # nothing journaled

    taken = client.post("/kiosk/take", json={**body, "insist": True})
    assert taken.status_code == 200
    t = taken.json()
    assert t["number"] == "A001" and t["url"] == STATUS + t["id"]
    ticket = site.hub.centre.tickets[t["id"]]
    assert ticket.item == "SOC-001" and ticket.extra_items == ("SOC-005",)
    assert ticket.source == "kiosk-1"


def test_everything_ticked_gives_a_ticket_directly(env):
    client, site, _ = env
    body = {"device": "box-1", "item": "SOC-001", "have": [ID_CARD, HUKOU]}
    assert client.post("/kiosk/review", json=body).json() == {"ok": True, "missing": []}
    t = client.post("/kiosk/take", json=body).json()
    assert t["ahead"] == 0 and t["wait"] is None  # no window open yet
    assert site.hub.centre.tickets[t["id"]].source == "box-1"


def test_refusals_are_plain(env):
    client, _, _ = env
    cash_only = client.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-002",
                                                 "have": [], "insist": True})
    assert cash_only.status_code == 409 and cash_only.json()["code"] == "not_served_here"
    assert "本中心无窗口办理" in cash_only.json()["msg"]
    stranger = client.post("/kiosk/take", json={"device": "kp-1", "item": "SOC-001",
                                                "insist": True})
    assert stranger.status_code == 403
    assert client.post("/kiosk/take", json={"device": "kiosk-1", "item": "X"}).status_code == 404
    too_many = {"device": "kiosk-1", "item": "SOC-001", "extra_items": ["SOC-003"] * 6}
    assert client.post("/kiosk/take", json=too_many).status_code == 400
    no_csrf = client.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001"},
                          headers={"X-CSRF-Token": ""})
    assert no_csrf.status_code == 403


def test_tips_printout_goes_to_the_kiosk_printer(env):
    client, _, sent = env
    body = {"device": "kiosk-1", "item": "SOC-001", "extra_items": ["SOC-005"], "have": []}
    assert client.post("/kiosk/tips/print", json=body).json()["printed"] is True
    (p,) = sent
    assert p.topic == "ow/web/dev/kiosk-1/cmd" and len(p.payload) <= 4096
    cmd = proto.decode("cmd", p.payload)
    assert cmd["type"] == "print" and cmd["ticket"] == "tips"
    slip = decode(base64.b64decode(cmd["escpos"]))
    assert "办事提醒" in slip["texts"] and f"□{ID_CARD}" in slip["texts"]
    assert f"□{HUKOU}" in slip["texts"] and slip["cut"]
    assert slip["qr"] == cmd["qr"] and "/tips?items=SOC-001%2CSOC-005" in slip["qr"]
    page = client.get(slip["qr"].removeprefix("http://hub.example:8080"))
    assert page.status_code == 200 and "✗" in page.text and HUKOU in page.text
    nothing = client.post("/kiosk/tips/print", json={**body, "extra_items": [],
                                                     "have": [ID_CARD, HUKOU]})
    assert nothing.status_code == 409


def test_phone_page_follows_the_ticket_and_shows_nothing_personal(env):
    client, site, _ = env
    act(site, c.TakeTicket("SOC-001", resident="secret-token", source="kiosk-1"))
    act(site, c.TakeTicket("SOC-001", source="kiosk-1"))
    first, second = list(site.hub.centre.tickets)
    snap = lambda t: site.live.snapshot("ticket", t)  # noqa: E731
    assert snap(second)["state"] == "waiting" and snap(second)["wait"] is None  # none open
    page = client.get(f"/t/{first}")
    assert page.status_code == 200 and "A001" in page.text and "secret-token" not in page.text
    assert "secret-token" not in str(snap(first))
    act(site, c.OpenWindow(2, clerk="王小明"))
    waiting = snap(second)  # one 8-minute item ahead: the predicted median, 80% interval
    assert waiting["ahead"] == 1 and 6 <= waiting["wait"] <= 9
    assert waiting["wait_lo"] <= waiting["wait"] <= waiting["wait_hi"]
    act(site, c.CallNext(2))
    called = snap(first)
    assert called["state"] == "called" and called["window"] == 2
    assert "王小明" not in client.get(f"/t/{first}").text
    act(site, c.Start(2))
    assert snap(first)["state"] == "serving"
    act(site, c.Complete(2))
    assert snap(first)["state"] == "done" and snap(second)["ahead"] == 0
    missing = client.get("/t/20200101-A001")
    assert missing.status_code == 404 and "没有找到这张号票" in missing.text
    assert snap("nope") == {"found": False}


def test_hall_snapshot_and_voice_only_for_its_own_calls(env):
    client, site, _ = env
    for _ in range(3):
        act(site, c.TakeTicket("SOC-001", source="kiosk-1"))
    act(site, c.OpenWindow(1))
    act(site, c.CallNext(1))
    hall = site.live.snapshot("hall")
    (call,) = hall["calls"]
    assert call["ticket"] == "A001" and call["window"] == 1
    assert call["zh"] == "请A001号到1号窗口办理业务"
    social = next(w for w in hall["waits"] if w["line"] == "social")
    assert social["waiting"] == 2 and social["minutes"] >= 8
    act(site, c.Recall(1))
    again = site.live.snapshot("hall")["calls"]
    assert [x["ticket"] for x in again] == ["A001", "A001"] and again[0]["id"] != call["id"]
    wav = client.get(f"/hall/voice/{again[0]['id']}.wav?lang=zh")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    assert wav.content.startswith(b"RIFF")
    assert client.get(f"/hall/voice/{again[0]['id']}.wav?lang=fr").status_code == 404
    assert client.get("/hall/voice/1-A999-1.wav").status_code == 404
    assert client.get("/hall?voice=en").status_code == 200
