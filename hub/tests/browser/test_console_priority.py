"""Issue 16, in real headless Chromium against a real hub process and Mosquitto: a clerk
marks a waiting resident priority (爱心优先) from the console's queue list, after confirming;
the hub journals it with the clerk's name, keeps it across a restart, calls it before the
normal tickets, and the resident's phone page and the hall board show 优先 beside the
number. A confirmation dismissed changes nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import add_staff, log_in, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"
STAFF = [("wu", "吴敏", "clerk", 1)]


def login(page, url: str) -> None:
    log_in(page, url, "wu", PASSWORD, lands=r"/console$")


def queue(page) -> list[dict]:
    return page.evaluate("fetch('/console/state?window=1').then(r => r.json())")["queue"]["list"]


def marks(db) -> list[dict]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT body FROM journal WHERE op = 'mark_priority' ORDER BY pos")
        return [json.loads(b) for (b,) in rows]


def test_a_clerk_marks_a_waiting_resident_priority_and_every_screen_shows_it(
        web_hub, browser_context):
    add_staff(web_hub, STAFF, PASSWORD)
    box = Device(web_hub.broker_port, "box-1", "box")
    replies = box.send(*[("take", {"item": "SOC-001"})] * 3)
    assert [r["ticket"] for r in replies] == ["A001", "A002", "A003"]
    page = browser_context.new_page()
    login(page, web_hub.url)
    page.click("#act-open")
    expect(page.locator("#win-state")).to_have_text("空闲")
    rows = page.locator("#queue-list li")
    expect(rows).to_have_count(3)
    expect(page.locator("[data-mark]")).to_have_count(3)

    # dismissed: nothing is sent, nothing changes
    page.once("dialog", lambda d: d.dismiss())
    page.click('[data-mark="A002"]')
    expect(page.locator('#queue-list li[data-ticket="A002"]')).to_have_attribute(
        "data-priority", "normal")
    assert [u["priority"] for u in queue(page)] == ["normal"] * 3

    # confirmed: A003 goes to the front of this window's list, tagged 优先
    texts = []

    def accept(d):
        texts.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.click('[data-mark="A003"]')
    expect(rows.first).to_have_attribute("data-ticket", "A003")
    expect(rows.first).to_have_attribute("data-priority", "priority")
    expect(rows.first.locator(".tag")).to_have_text("优先")
    expect(page.locator('[data-mark="A003"]')).to_have_count(0)
    expect(page.locator("#msg")).to_have_text("")
    assert "A003" in texts[0] and "爱心优先" in texts[0]
    shot(page, "console-priority")
    assert marks(web_hub.workdir / "hub.db") == [
        {"op": "mark_priority", "ticket": queue(page)[0]["id"], "by": "wu"}]

    # the resident's phone: 优先 beside the number; a normal ticket's page shows none
    ids = {u["number"]: u["id"] for u in queue(page)}
    phone = browser_context.new_page()
    phone.goto(f"{web_hub.url}/t/{ids['A003']}?lang=zh_CN")
    expect(phone.locator("#number")).to_have_text("A003")
    expect(phone.locator("#prio")).to_be_visible()
    expect(phone.locator("#prio")).to_have_text("优先")
    other = browser_context.new_page()
    other.goto(f"{web_hub.url}/t/{ids['A001']}?lang=zh_CN")
    expect(other.locator("#number")).to_have_text("A001")
    expect(other.locator("#prio")).to_be_hidden()

    # across a restart (journal replay): still priority, and called first. No page is left
    # reconnecting to the hub's port meanwhile (a loopback client can end up holding it).
    phone.close()
    other.close()
    page.goto("about:blank")
    web_hub.restart()
    page.goto(web_hub.url + "/console")
    expect(page.locator("#queue-list li").first).to_have_attribute("data-ticket", "A003")
    assert [(u["number"], u["priority"]) for u in queue(page)] == [
        ("A003", "priority"), ("A001", "normal"), ("A002", "normal")]
    hall = browser_context.new_page()
    hall.goto(f"{web_hub.url}/hall?lang=zh_CN&voice=off")
    expect(hall.locator("#now-number")).to_have_text("—")
    expect(hall.locator("#now-prio")).to_be_hidden()
    page.click("#act-call")
    expect(page.locator("#current-number")).to_have_text("A003")
    expect(hall.locator("#now-number")).to_have_text("A003")
    expect(hall.locator("#now-prio")).to_be_visible()
    expect(hall.locator("#now-prio")).to_have_text("优先")
    page.click("#act-call")  # A003 done, A001 called: normal, no tag
    expect(hall.locator("#now-number")).to_have_text("A001")
    expect(hall.locator("#now-prio")).to_be_hidden()
    expect(hall.locator("#recent tbody tr").first.locator(".prio-tag")).to_have_text("优先")
    shot(hall, "hall-priority")
