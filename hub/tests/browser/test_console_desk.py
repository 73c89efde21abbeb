"""Issue 18, in real headless Chromium against a real hub process and Mosquitto: a clerk
who keeps hands on the keyboard calls, recalls, starts and completes with the shortcut keys
(not while typing in a box), sees the next tickets this window would call with their marks,
calls one out of turn with a reason (journaled with the clerk) and pauses for lunch."""

from __future__ import annotations

import json
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import add_staff, log_in, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"


def journal(db, op) -> list[dict]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT body FROM journal WHERE op = ? ORDER BY pos", (op,))
        return [json.loads(b) for (b,) in rows]


def test_shortcut_keys_next_up_call_out_of_turn_with_a_reason_and_pause(
        web_hub, browser_context):
    add_staff(web_hub, [("wu", "吴敏", "clerk", 1)], PASSWORD)
    box = Device(web_hub.broker_port, "box-1", "box")
    box.send(*[("take", {"item": "SOC-001"})] * 6)
    page = browser_context.new_page()
    log_in(page, web_hub.url, "wu", PASSWORD, lands=r"/console$")
    expect(page.locator("#keys")).to_contain_text("F1")
    page.click("#act-open")
    expect(page.locator("#win-state")).to_have_text("空闲")
    nxt = page.locator("#next-list li")
    expect(nxt).to_have_count(6)
    expect(nxt.first).to_have_attribute("data-ticket", "A001")
    expect(nxt.first).to_contain_text("分钟")

    # keys typed into a box do nothing: the department list has focus
    page.focus("#help-dept")
    page.keyboard.press("n")
    page.keyboard.press("c")
    page.locator("h1").click()  # out of the box
    expect(page.locator("#current-number")).to_have_count(0)
    expect(nxt).to_have_count(6)
    page.keyboard.press("F1")  # call next
    expect(page.locator("#current-number")).to_have_text("A001")
    expect(nxt).to_have_count(5)
    page.keyboard.press("r")  # recall
    expect(page.locator("#current")).to_contain_text("重呼次数 1")
    page.keyboard.press("s")  # start
    expect(page.locator("#win-state")).to_have_text("办理中")
    page.keyboard.press("c")  # complete
    expect(page.locator("#current")).not_to_contain_text("A001")
    expect(page.locator("#win-state")).to_have_text("空闲")
    page.keyboard.press("n")  # call next again: A002
    expect(page.locator("#current-number")).to_have_text("A002")

    # A005 out of turn, for a resident back with the missing materials
    page.click('#next-list [data-call="A005"]')
    expect(page.locator("#call-dialog")).to_be_visible()
    expect(page.locator("#call-number")).to_have_text("A005")
    page.keyboard.press("c")  # typing in the dialog completes nothing
    page.select_option("#call-reason", "returned_materials")
    shot(page, "console-call-out-of-turn")
    page.click("#call-ok")
    expect(page.locator("#current-number")).to_have_text("A005")
    expect(page.locator('#next-list [data-ticket="A005"]')).to_have_count(0)
    expect(page.locator('#next-list li').first).to_have_attribute("data-ticket", "A003")
    # "other" needs a note: the dialog stays open until it has one
    page.click('#queue-list [data-call="A006"]')
    page.select_option("#call-reason", "other")
    page.click("#call-ok")
    expect(page.locator("#call-dialog")).to_be_visible()
    page.fill("#call-note", "家属代办")
    page.click("#call-ok")
    expect(page.locator("#current-number")).to_have_text("A006")
    calls = journal(web_hub.workdir / "hub.db", "call_ticket")
    assert [(x["ticket"].split("-")[-1], x["reason"], x["note"], x["by"]) for x in calls] == [
        ("A005", "returned_materials", "", "wu"), ("A006", "other", "家属代办", "wu")]

    # a pause needs its reason; then it shows beside the state and is journaled
    page.keyboard.press("c")
    expect(page.locator("#win-state")).to_have_text("空闲")
    page.click("#act-pause")
    expect(page.locator("#msg")).to_have_text("请先选择暂停原因。")
    page.select_option("#pause-reason", "lunch")
    page.click("#act-pause")
    expect(page.locator("#win-state")).to_have_text("暂停服务 · 午休用餐")
    expect(page.locator("#pause-reason")).to_have_value("")  # the next pause asks again
    page.keyboard.press("n")  # paused: the call button is disabled, the key does nothing
    expect(page.locator("#win-state")).to_have_text("暂停服务 · 午休用餐")
    shot(page, "console-paused-lunch")
    assert journal(web_hub.workdir / "hub.db", "pause") == [
        {"op": "pause", "window": 1, "reason": "lunch"}]
    done = journal(web_hub.workdir / "hub.db", "complete")
    # A001 and A006 by C (A002 and A005 were finished by the next calls)
    assert len(done) == 2
