"""Issue 13 (6), in real headless Chromium against a real hub process and Mosquitto: a
console page acts at the window it shows, never at the user's own. An admin logged in at
window 3 who opens window 4's console and presses 叫号 calls at window 4 and window 3 is
unchanged; a clerk's page for a window that is no longer theirs is refused, and the page
says why (zh-CN, or English on the English page), changing nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import add_staff, log_in
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"
STAFF = [("zhou", "周处长", "admin", None), ("wu", "吴敏", "clerk", None)]


@pytest.fixture
def staff(web_hub):
    add_staff(web_hub, STAFF, PASSWORD)
    return web_hub


def login_at(page, url: str, username: str, window: int) -> None:
    log_in(page, url, username, PASSWORD, window=window, lands=r"/console$")


def state(page, window: int) -> dict:
    return page.evaluate(f"fetch('/console/state?window={window}').then(r => r.json())")


def test_admin_at_window_3_calls_at_the_console_it_opened(staff, browser_context):
    box = Device(staff.broker_port, "box-1", "box")
    box.send(("take", {"item": "SOC-001"}))
    page = browser_context.new_page()
    login_at(page, staff.url, "zhou", 3)
    expect(page.locator("h1")).to_contain_text("3号窗口")  # the session's own window
    page.click("#act-open")
    expect(page.locator("#win-state")).to_have_text("空闲")

    page.goto(staff.url + "/console?window=4")
    expect(page.locator("h1")).to_contain_text("4号窗口")
    expect(page.locator("#win-state")).to_have_text("未开放")
    page.click("#act-open")
    expect(page.locator("#win-state")).to_have_text("空闲")
    expect(page.locator("#win-clerk")).to_have_text("周处长")
    page.click("#act-call")
    expect(page.locator("#current-number")).to_have_text("A001")
    expect(page.locator("#win-state")).to_have_text("叫号中")
    expect(page.locator("#msg")).to_have_text("")
    w4, w3 = state(page, 4), state(page, 3)
    assert w4["window"]["state"] == "calling" and w4["ticket"]["number"] == "A001"
    assert w3["window"]["state"] == "idle" and w3["ticket"] is None  # window 3 unchanged


def test_a_clerk_page_for_another_window_is_refused_and_says_why(staff, browser_context):
    box = Device(staff.broker_port, "box-1", "box")
    box.send(("take", {"item": "SOC-001"}))
    zh = browser_context.new_page()
    login_at(zh, staff.url, "wu", 1)
    zh.click("#act-open")
    expect(zh.locator("#win-state")).to_have_text("空闲")
    en = browser_context.new_page()
    en.goto(staff.url + "/console?lang=en")
    expect(en.locator("h1")).to_contain_text("Window 1")
    # the same clerk logs in again at window 2 (another tab, same browser): the first two
    # tabs still show window 1, and their buttons now belong to someone at window 2
    new = browser_context.new_page()
    login_at(new, staff.url, "wu", 2)
    expect(new.locator("h1")).to_contain_text("2号窗口")
    new.click("#act-open")
    expect(new.locator("#win-state")).to_have_text("空闲")

    zh.click("#act-call")
    expect(zh.locator("#msg")).to_have_text("无权操作1号窗口：您只能操作本人的2号窗口。")
    en.click("#act-call")
    expect(en.locator("#msg")).to_have_text(
        "You may not act at window 1: you act only at your own window 2.")
    expect(zh.locator("#current-number")).to_have_count(0)
    # nothing changed: window 1 open with nobody called, window 2 idle, A001 still waiting
    w2 = state(new, 2)
    assert w2["window"]["state"] == "idle" and w2["ticket"] is None
    assert w2["queue"]["waiting"] == 1
    new.click("#act-call")  # at the clerk's own window it is called
    expect(new.locator("#current-number")).to_have_text("A001")
