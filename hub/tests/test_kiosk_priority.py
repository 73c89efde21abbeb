"""The kiosk's priority choice (爱心优先: 60 or older, disabled, pregnant): the item page offers
it, POST /kiosk/take with `priority: true` takes a priority ticket and says so, and any other
value is a 400 that changes nothing. In-process first (the rules, the page in each language),
then the hub process (its journal), then headless Chromium ticking the box on the real page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.model import Priority
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.web import public
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    open_page,
    quiet_port,
    write_config,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ID_CARD, HUKOU = "本人居民身份证", "户口簿"  # SOC-001's required materials
TAKE = {"device": "kiosk-1", "item": "SOC-001", "have": [ID_CARD, HUKOU]}
BAD_VALUES = ["yes", "true", 1, 0, None, "priority", [], {}, 1.0]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def env():
    cat = load_catalog()
    centre = Centre(cat, CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1)])
    site = Site(HubApp(centre, registry, "b1", "http://hub.example:8080/t/"))
    app = Starlette(routes=public.routes(site), middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/kiosk?device=kiosk-1")  # the device cookie and the CSRF cookie
    client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
    return client, site


def test_the_item_page_offers_the_choice_in_each_language(env):
    client, _ = env
    zh = client.get("/kiosk/item/SOC-001").text
    assert "爱心优先（60岁以上老人、残疾人、孕妇）" in zh and 'id="priority"' in zh
    assert "爱心优先号" in zh  # the ticket panel's mark
    en = client.get("/kiosk/item/SOC-001?lang=en").text
    assert "Priority (60+, disabled, pregnant)" in en and "爱心优先（" not in en
    # the choice comes before the button that takes the ticket
    assert zh.index('id="priority"') < zh.index('id="check"')


def test_priority_true_takes_a_priority_ticket_false_or_absent_a_normal_one(env):
    client, site = env
    tickets = site.hub.centre.tickets
    r = client.post("/kiosk/take", json={**TAKE, "priority": True})
    assert r.status_code == 200 and r.json()["priority"] is True
    assert tickets[r.json()["id"]].priority is Priority.PRIORITY
    for body in ({**TAKE, "item": "SOC-003", "priority": False, "insist": True},
                 {**TAKE, "item": "SOC-004", "have": [], "insist": True}):
        r = client.post("/kiosk/take", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["priority"] is False
        assert tickets[r.json()["id"]].priority is Priority.NORMAL


@pytest.mark.parametrize("value", BAD_VALUES)
def test_any_other_priority_is_refused_and_nothing_changes(env, value):
    client, site = env
    r = client.post("/kiosk/take", json={**TAKE, "priority": value, "insist": True})
    assert r.status_code == 400
    assert r.json()["code"] == "bad_field" and "priority must be true" in r.json()["msg"]
    assert site.hub.centre.tickets == {}


def test_priority_with_materials_missing_still_needs_insisting(env):
    client, site = env
    body = {**TAKE, "have": [HUKOU], "priority": True}
    r = client.post("/kiosk/take", json=body)
    assert r.status_code == 409 and r.json()["code"] == "materials_missing"
    assert site.hub.centre.tickets == {}
    r = client.post("/kiosk/take", json={**body, "insist": True})
    assert r.json()["priority"] is True


# ---- the hub process: what its journal keeps ---------------------------------------------------


@pytest.fixture
def hub_process(tmp_path: Path):
    web_port = quiet_port()
    devices = [{"id": "box-1", "role": "box"}, {"id": "kiosk-1", "role": "kiosk"}]
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "web", broker.port, tmp_path / "hub.db",
                           windows=2, devices=devices, extra=f"\n[web]\nport = {web_port}\n")
        proc = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield f"http://127.0.0.1:{web_port}", tmp_path / "hub.db", proc
        finally:
            proc.stop()


def journal(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


@contextlib.asynccontextmanager
async def kiosk_client(url: str, proc: HubProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the kiosk's cookies, once the hub's web answers."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await open_page(http, "/kiosk?device=kiosk-1", proc)
        yield http


async def test_the_hub_journals_the_priority_and_a_bad_value_leaves_the_journal_alone(
        hub_process):
    url, db, proc = hub_process
    async with kiosk_client(url, proc) as http:
        r = await http.post("/kiosk/take", json={**TAKE, "priority": True})
        assert r.status_code == 200 and r.json()["priority"] is True
        [take] = [rec for rec in journal(db) if rec["op"] == "take"]
        assert take["priority"] == "priority" and take["source"] == "kiosk-1"
        before = journal(db)
        for value in BAD_VALUES:
            r = await http.post("/kiosk/take", json={**TAKE, "item": "SOC-003",
                                                     "priority": value})
            assert r.status_code == 400 and r.json()["code"] == "bad_field", (value, r.text)
        assert journal(db) == before
        r = await http.post("/kiosk/take", json={**TAKE, "item": "SOC-003", "insist": True})
        assert r.status_code == 200 and r.json()["priority"] is False
        assert [rec["priority"] for rec in journal(db) if rec["op"] == "take"] == [
            "priority", "normal"]


# ---- the real page in Chromium -------------------------------------------------------------------


def in_chromium(url: str) -> list[dict]:
    """Open the item page as the kiosk, tick 爱心优先 and both materials, take the ticket;
    then a second resident leaves it unticked. Returns what the page showed each time."""
    from playwright.sync_api import expect, sync_playwright

    assert os.path.exists(CHROMIUM), "chromium is not installed: apt-get install chromium"
    shown = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            for item, tick in (("SOC-001", True), ("SOC-003", False)):
                ctx = browser.new_context(locale="zh-CN",
                                          viewport={"width": 1080, "height": 1920})
                page = ctx.new_page()
                page.goto(url + "/kiosk?device=kiosk-1")
                page.goto(url + f"/kiosk/item/{item}")
                expect(page.locator("#checklist label")).not_to_have_count(0)
                for box in page.locator("#checklist input").all():
                    box.check()
                choice = page.locator("#priority-choice")
                expect(choice).to_contain_text("爱心优先（60岁以上老人、残疾人、孕妇）")
                if tick:
                    choice.locator("input").check()
                page.click("#check")
                expect(page.locator("#ticket")).to_be_visible()
                shown.append({"number": page.locator("#t-number").inner_text(),
                              "marked": page.locator("#t-priority").is_visible()})
                ctx.close()
        finally:
            browser.close()
    return shown


async def test_ticking_the_choice_in_chromium_takes_a_priority_ticket(hub_process):
    url, db, proc = hub_process
    async with kiosk_client(url, proc):
        pass
    # Playwright's sync API runs its own event loop: a thread of its own, not this test's loop
    with ThreadPoolExecutor(1) as pool:
        shown = await asyncio.wrap_future(pool.submit(in_chromium, url))
    assert [s["marked"] for s in shown] == [True, False]
    takes = [rec for rec in journal(db) if rec["op"] == "take"]
    assert [(t["item"], t["priority"]) for t in takes] == [
        ("SOC-001", "priority"), ("SOC-003", "normal")]
