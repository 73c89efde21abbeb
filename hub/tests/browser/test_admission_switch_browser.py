"""Issue 16: a supervisor switches admission control from the dashboard in real headless
Chromium against a real hub process: the choice goes out (journaled with who did it), the
page and a second supervisor's open dashboard show it live, and after a hub restart the
dashboard still says "stop", switched by that supervisor. A clerk's try is refused (403)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import add_staff, shot
from .test_staff_pages import PASSWORD, login

pytestmark = pytest.mark.timeout(120)
STAFF = [("chen", "陈主任", "supervisor", None), ("zhou", "周敏", "supervisor", None),
         ("wang", "王芳", "clerk", 1)]


def switches(db) -> list[dict]:
    with sqlite3.connect(db) as con:
        return [json.loads(b) for (b,) in con.execute(
            "SELECT body FROM journal WHERE op = 'admission_mode' ORDER BY pos")]


def test_a_supervisor_switches_admission_control_and_it_holds_across_a_restart(
        web_hub, chromium, browser_context):
    add_staff(web_hub, STAFF, PASSWORD)
    page = browser_context.new_page()
    login(page, web_hub.url, "chen")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#adm-mode")).to_have_text("提醒：照常取号并告知")
    expect(page.locator("#adm-by")).to_have_text("按 centre.toml 配置")
    other_ctx = chromium.new_context(locale="zh-CN")
    other = other_ctx.new_page()
    login(other, web_hub.url, "zhou")
    expect(other.locator("#adm-mode")).to_have_attribute("data-mode", "warn")

    page.select_option("#adm-select", "stop")
    page.click("#adm-set")
    expect(page.locator("#adm-mode")).to_have_attribute("data-mode", "stop")
    expect(page.locator("#adm-mode")).to_have_text("停止：不再取号，引导预约")
    expect(page.locator("#s-admission")).to_have_text("停止：不再取号，引导预约")
    expect(page.locator("#adm-by")).to_contain_text("切换人 chen")
    # the other supervisor's open dashboard follows (the staff-floor live channel)
    expect(other.locator("#adm-mode")).to_have_attribute("data-mode", "stop")
    expect(other.locator("#adm-by")).to_contain_text("切换人 chen")
    shot(page, "dashboard-admission-switched")
    assert [(s["mode"], s["by"]) for s in switches(web_hub.workdir / "hub.db")] == \
        [("stop", "chen")]

    web_hub.restart()
    page.reload()  # the session survives the restart (stored sessions)
    expect(page.locator("#adm-mode")).to_have_attribute("data-mode", "stop")
    expect(page.locator("#adm-by")).to_contain_text("切换人 chen")

    clerk_ctx = chromium.new_context(locale="zh-CN")
    clerk = clerk_ctx.new_page()
    clerk.goto(f"{web_hub.url}/login?lang=zh_CN")
    clerk.fill("#username", "wang")
    clerk.fill("#password", PASSWORD)
    clerk.click("#login")
    clerk.wait_for_url(re.compile(r"/console"))
    status = clerk.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/dashboard/admission', {method: 'POST', headers:
            {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
            body: JSON.stringify({mode: 'off'})});
        return r.status; }""")
    assert status == 403
    assert len(switches(web_hub.workdir / "hub.db")) == 1
    other_ctx.close()
    clerk_ctx.close()
