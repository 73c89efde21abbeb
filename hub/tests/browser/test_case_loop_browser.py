"""Issue 17's front -> back -> pick-up, one promised case end to end, in real headless
Chromium and over MQTT against a real hub process and Mosquitto:

a resident taps their ID card at the kiosk (the node's `take` with the card's resident
token) for a promised item; the clerk at window 1 calls, serves and completes it in the
console while the window's node uploads the captured page (高拍仪), and gives the resident's
mobile number for the case in the console's case desk (sealed at once); the case is routed
to the item's department and the back office returns it for one catalog material with a
reason; the resident's phone page (a second browser) shows the state, the material and the
reason, and the "returned for material" notice, and the kiosk's pick-up screen, given the
case code, prints the correction slip (a mistyped code refused); the hub restarts; the
material is corrected (resubmitted) and the case approved; the page shows "ready" at the
pick-up window and the notice; a stranger's card gets no pick-up ticket; the resident's
card does, at the kiosk (printed there), and it goes to the pick-up window, whose clerk
calls it in the console; a stranger's card cannot sign the hand-over off, the resident's
card does: the case is closed with the time. Every step is in the journal in order, each
notice once; the state survives a second restart; the month's staff report counts the case
accepted, returned and closed.

The back office acts on its /cases page (the department's queue, the case page with the
captured page, each row's return form with the item's materials to tick)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking, pickup
from onewindow.hub.core.signing import ticket_token
from onewindow.hub.fleet import registry
from onewindow.hub.report.cli import run as report_run
from onewindow.hub.store.accounts import Accounts
from onewindow.node.card import resident_token
from onewindow.tools.simdevice import DeviceError

from .conftest import CENTRE, log_in, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(240)
PASSWORD = "s3cret-pass"
NODE_TOKEN = "node-1-upload-token-0123456789"  # the window node's bearer token for uploads
ITEM = "SOC-003"  # 城乡居民养老金申领: promised (承诺件), four materials, line social
EXTRA = f"""
[pickup]
item = "GEN-099"

[[windows]]
number = 5
kind = "pickup"

[[devices]]
id = "node-1"
role = "node"
window = 1
token = "{NODE_TOKEN}"

[[devices]]
id = "node-5"
role = "node"
window = 5
"""
# A JPEG's first bytes and enough of a body for the files API (it checks the magic).
PAGE_JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 200 + b"\xff\xd9"


def journal(db) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as con:
        return [json.loads(b) for (b,) in con.execute("SELECT body FROM journal ORDER BY pos")]


def login(page, url: str, username: str, window: int | None, next_: str) -> None:
    log_in(page, url, username, PASSWORD, next_=next_, window=window)  # wherever it lands


def upload_page(url: str, ticket: str) -> dict[str, Any]:
    """What the window node's capture does: the photographed page, to the ticket."""
    def go() -> dict[str, Any]:
        r = httpx.post(f"{url}/api/tickets/{ticket}/files",
                       files={"file": ("page.jpg", PAGE_JPEG, "image/jpeg")},
                       data={"kind": "page"}, timeout=10,
                       headers={"Authorization": f"Bearer {NODE_TOKEN}"})
        assert r.status_code in (200, 201), r.text
        return dict(r.json())
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop owns this thread
        return pool.submit(go).result(timeout=20)


def refused(device: Device, typ: str, fields: dict[str, Any]) -> str:
    try:
        device.send((typ, fields))
    except Exception as e:  # DeviceError from the SimDevice, raised in its thread
        assert isinstance(e, DeviceError), e
        device.seq += 1  # the refused event used its number (Device keeps it on success)
        return str(e.code)
    raise AssertionError(f"{typ} {fields} was not refused")


@pytest.mark.hub_extra(EXTRA)
@pytest.mark.hub_local_time("10:00")
def test_one_promised_case_front_to_back_to_pick_up(web_hub, chromium, tmp_path):
    db = web_hub.workdir / "hub.db"
    with registry.Fleet(f"sqlite:///{db}") as fleet:
        secret = fleet.secret(create=True)
    assert secret is not None
    web_hub.restart()  # the hub now seals numbers and signs codes with the centre's secret
    accounts = Accounts(f"sqlite:///{db}", PasswordHasher(time_cost=1, memory_cost=8,
                                                           parallelism=1))
    accounts.add("wang", PASSWORD, "clerk", "王芳", 1)
    accounts.add("zhao", PASSWORD, "clerk", "赵敏", 5)
    accounts.add("li", PASSWORD, "backoffice", "李科长", department="social")
    accounts.close()
    key = booking.derive_key(secret, CENTRE)
    card = resident_token(secret, "110101195001011234")  # what the node sends, not the number
    stranger = resident_token(secret, "110101198001015678")
    item = load_catalog().items[ITEM]
    material = item.materials[1].name.zh
    kiosk = Device(web_hub.broker_port, "kiosk-1", "kiosk")
    node5 = Device(web_hub.broker_port, "node-5", "node", 5)

    # 1. the card at the kiosk: a ticket for the promised item, tied to the resident
    [took] = kiosk.send(("take", {"item": ITEM, "resident": card}))
    number = took["ticket"]
    assert [r["resident"] for r in journal(db) if r.get("op") == "take"] == [card]
    clerk_ctx = chromium.new_context(locale="zh-CN")
    office_ctx = chromium.new_context(locale="zh-CN")
    phone_ctx = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    try:
        clerk = clerk_ctx.new_page()
        login(clerk, web_hub.url, "wang", 1, "/console")
        clerk.click("#act-open")
        expect(clerk.locator("#win-state")).to_have_text("空闲")
        clerk.click("#act-call")
        expect(clerk.locator("#current-number")).to_have_text(number)
        clerk.click("#act-start")
        expect(clerk.locator("#win-state")).to_have_text("办理中")
        day = dt.datetime.now(web_hub.tz).strftime("%Y%m%d")
        case = f"{day}-{number}"
        upload_page(web_hub.url, case)  # the captured page (高拍仪) travels with the case
        clerk.click("#act-complete")
        expect(clerk.locator("#win-state")).to_have_text("空闲")
        # the resident's mobile number for the case's notices, given at acceptance in the
        # console's case desk (sealed at the hub; the page hears it back masked)
        expect(clerk.locator("#desk-case option")).to_have_count(1)
        clerk.fill("#desk-phone", "1381234567")  # a digit short: refused, nothing kept
        clerk.click("#desk-phone-save")
        expect(clerk.locator("#desk-msg")).to_contain_text("手机号码")
        clerk.fill("#desk-phone", "13812345678")
        clerk.click("#desk-phone-save")
        expect(clerk.locator("#desk-msg")).to_contain_text("138****5678")
        expect(clerk.locator("#desk-case option")).to_contain_text("已登记手机号")
        shot(clerk, "case_loop_console")

        # 2. routed to the item's department; the back office sees it and returns it
        office = office_ctx.new_page()
        login(office, web_hub.url, "li", None, "/cases")
        office.goto(f"{web_hub.url}/cases?lang=zh_CN")
        row = office.locator(f'tr[data-case="{case}"]').first
        expect(row).to_have_attribute("data-department", "social")  # routed (分类审批)
        office.goto(f"{web_hub.url}/cases/{case}?lang=zh_CN")  # the case page: its documents
        expect(office.locator("#case-docs li[data-file]")).to_have_count(1)
        office.goto(f"{web_hub.url}/cases?lang=zh_CN")
        form = office.locator(f'tr[data-case="{case}"] .case-form')
        resident = phone_ctx.new_page()
        k = ticket_token(key, CENTRE, case)
        resident.goto(f"{web_hub.url}/t/{case}?k={k}&lang=zh_CN")
        expect(resident.locator("#case-state")).to_have_text("后台审批中")
        form.locator('input[name="material"][value="1"]').check()
        form.locator('button[data-action="returned"]').click()  # no reason: refused
        expect(form.locator(".case-msg")).to_contain_text("原因")
        assert not [r for r in journal(db) if r.get("op") == "case"]
        form.locator(".case-reason").fill("户口簿复印件不清晰")
        form.locator('input[name="material"][value="1"]').check()
        form.locator('button[data-action="returned"]').click()
        expect(office.locator(f'tr[data-case="{case}"]')).to_have_attribute("data-state",
                                                                            "returned")
        shot(office, "case_loop_back_office_returned")
        expect(resident.locator("#case-state")).to_have_text("退回补正")
        expect(resident.locator("#case-materials li")).to_have_text([material])
        expect(resident.locator("#case-reason")).to_contain_text("户口簿复印件不清晰")
        expect(resident.locator('#notice-list li[data-kind="case_returned"]')).to_contain_text(
            material)
        expect(resident.locator("#case-code")).to_have_text(pickup.case_code(key, CENTRE,
                                                                             case))
        shot(resident, "case_loop_phone_returned")
        # the resident brings the slip to the kiosk: its code prints the correction slip
        kiosk_page = phone_ctx.new_page()
        kiosk_page.goto(f"{web_hub.url}/kiosk/pickup?device=kiosk-1&lang=zh_CN")
        kiosk_page.fill("#code", "WRONG-" + pickup.case_code(key, CENTRE, case)[-8:])
        kiosk_page.click("#pickup-btn")
        expect(kiosk_page.locator("#p-error")).to_contain_text("取件码无效")
        kiosk_page.fill("#code", pickup.case_code(key, CENTRE, case))
        kiosk_page.click("#pickup-btn")
        expect(kiosk_page.locator("#p-materials li")).to_have_text([material])
        shot(kiosk_page, "case_loop_kiosk_returned")

        # 3. the hub restarts: the case and its notice are as they were, nothing resent
        web_hub.restart()
        resident.reload()
        expect(resident.locator("#case-state")).to_have_text("退回补正")
        expect(resident.locator('#notice-list li[data-kind="case_returned"]')).to_have_count(1)

        # 4. corrected (the material came back), approved: ready at the pick-up window
        for action, state in (("resubmitted", "open"), ("approved", "ready")):
            office.goto(f"{web_hub.url}/cases?lang=zh_CN")
            office.locator(f'tr[data-case="{case}"] button[data-action="{action}"]').click()
            expect(office.locator(f'tr[data-case="{case}"]')).to_have_attribute(
                "data-state", state)
        expect(resident.locator("#case-state")).to_have_text("可领取")
        expect(resident.locator("#case-detail")).to_contain_text("5号窗口")
        expect(resident.locator('#notice-list li[data-kind="ready_for_pickup"]')).to_contain_text(
            "5号窗口")
        shot(resident, "case_loop_phone_ready")

        # 5. the pick-up ticket by card at the kiosk: a stranger's card gets none
        assert refused(kiosk, "pickup", {"resident": stranger}) == "no_ready_case"
        [ticket] = kiosk.send(("pickup", {"resident": card}))
        pick_number = ticket["ticket"]
        assert pick_number != number
        counter = clerk_ctx.new_page()
        login(counter, web_hub.url, "zhao", 5, "/console")
        counter.click("#act-open")
        counter.click("#act-call")
        expect(counter.locator("#current-number")).to_have_text(pick_number)

        # 6. handed over: a stranger's card cannot sign it off, the resident's does
        assert refused(node5, "card", {"resident": stranger}) == "not_your_case"
        [handed] = node5.send(("card", {"resident": card}))
        assert handed["state"] == "closed", handed
        expect(resident.locator("#case-state")).to_have_text("已领取办结")
        shot(resident, "case_loop_phone_collected")
    finally:
        for ctx in (clerk_ctx, office_ctx, phone_ctx):
            ctx.close()

    # 7. every step journaled, in order, each notice once; a second restart keeps it
    web_hub.restart()
    records = journal(db)
    steps = [(r["op"], r.get("action") or r.get("kind") or r.get("by")) for r in records
             if r.get("op") in ("take", "complete", "case_contact", "case", "case_notice",
                                "pickup") and (r.get("op") != "take" or r.get("item") == ITEM)]
    assert steps == [
        ("take", None), ("complete", None), ("case_contact", None),
        ("case", "returned"), ("case_notice", "case_returned"),
        ("case", "resubmitted"), ("case", "approved"), ("case_notice", "ready_for_pickup"),
        ("pickup", "card"), ("case", "handed_over")], steps
    who = {r["action"]: r.get("by") for r in records if r.get("op") == "case"}
    assert who == {"returned": "li", "resubmitted": "li", "approved": "li",
                   "handed_over": "card"}
    outcomes = sorted((r["notice"].split(":")[2], r["channel"], r["outcome"]) for r in records
                      if r.get("op") == "notice_outcome")
    assert outcomes == [("case_returned", "page", "sent"), ("ready_for_pickup", "page", "sent")]
    assert "13812345678" not in db.read_bytes().decode("latin-1")

    async def state() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=web_hub.url, timeout=10) as http, \
                http.stream("GET", f"/live/ticket/{case}") as r:
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    return dict(json.loads(line[5:]))
        raise AssertionError("no snapshot")

    with ThreadPoolExecutor(1) as pool:
        snap = pool.submit(asyncio.run, state()).result(timeout=20)
    assert snap["case"]["state"] == "closed" and snap["case"]["closed_at"]
    files = httpx.get(f"{web_hub.url}/api/tickets/{case}/files", timeout=10,
                      headers={"Authorization": f"Bearer {NODE_TOKEN}"})
    assert [f["kind"] for f in files.json()["files"]] == ["page"]  # the captured page kept

    # 8. the month's staff report: the case accepted by wang, returned once, closed
    month = dt.datetime.now(web_hub.tz).strftime("%Y-%m")
    report_run(web_hub.config, None, month, tmp_path / "report", charts=False, replay=True)
    with open(tmp_path / "report" / "centre.csv", encoding="utf-8-sig") as f:
        centre = dict(csv.reader(f))
    assert (centre["cases"], centre["returned"], centre["closed"]) == ("1", "1", "1"), centre
    with open(tmp_path / "report" / "clerks.csv", encoding="utf-8-sig") as f:
        wang = next(r for r in csv.DictReader(f) if r["clerk"] in ("wang", "王芳"))
    assert wang["cases"] == "1" and wang["returned"] == "1", wang
