"""窗口吹哨 科室报到 (issue 17) in real headless Chromium against a real hub process and
Mosquitto: a clerk's help call from the console reaches the department of the item being
served, on its department page, within a second (and not another department's page),
with the call's tone (Web Audio, heard where the browser lets pages play sound) and a
count-up timer; a keypad's help key over MQTT naming a department (the protocol's
optional field) reaches that one; the call nobody answers goes to the supervisors'
view after [help] escalate_after_s; the department answers, comes and resolves it."""

from __future__ import annotations

import re
import time

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from onewindow.hub.store.accounts import Accounts

from .conftest import shot
from .test_staff_pages import PASSWORD, Device, login

pytestmark = pytest.mark.timeout(120)
ESCALATE_S = 3
STAFF = [("wang", "王芳", "clerk", 1, None), ("zhao", "赵磊", "clerk", 2, None),
         ("soc1", "社保李", "specialist", None, "social"),
         ("med1", "医保周", "specialist", None, "medical"),
         ("chen", "陈主任", "supervisor", None, None)]


@pytest.fixture
def staff(web_hub):
    accounts = Accounts(f"sqlite:///{web_hub.workdir / 'hub.db'}",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        for username, display, role, window, dept in STAFF:
            accounts.add(username, PASSWORD, role, display, window, department=dept)
    finally:
        accounts.close()
    return web_hub


def _department_page(chromium, url: str, user: str):
    ctx = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    login(page, url, user)
    page.goto(f"{url}/department")
    expect(page.locator("body")).to_have_attribute("data-rendered", re.compile(r"[1-9]"))
    return ctx, page


@pytest.mark.hub_extra(f"[help]\nescalate_after_s = {ESCALATE_S}\n")
def test_a_help_call_reaches_its_department_sounds_and_escalates(staff, chromium):
    box = Device(staff.broker_port, "box-1", "box")
    assert box.send(("take", {"item": "SOC-001"}))[0]["ticket"] == "A001"
    pages = {}
    try:
        for user in ("soc1", "med1", "chen"):
            pages[user] = _department_page(chromium, staff.url, user)
        soc, med, sup = (pages[u][1] for u in ("soc1", "med1", "chen"))
        expect(soc.locator("#dept-name")).to_have_text("社会保险")
        expect(sup.locator("#dept-name")).to_have_text("全部科室")
        clerk_ctx = chromium.new_context(locale="zh-CN")
        pages["wang"] = (clerk_ctx, clerk_ctx.new_page())
        clerk = pages["wang"][1]
        login(clerk, staff.url, "wang")
        clerk.click("#act-open")
        clerk.click("#act-call")
        expect(clerk.locator("#current-number")).to_have_text("A001")
        # the help button calls the department of the item being served unless changed
        expect(clerk.locator("#help-dept")).to_have_value("social")

        clerk.click("#act-help")
        t0 = time.monotonic()
        row = soc.locator('#calls tr[data-department="social"]')
        row.wait_for(timeout=1000)  # on the department's page within a second
        took = time.monotonic() - t0
        assert took < 1.0, took
        expect(row).to_have_attribute("data-state", "requested")
        expect(row).to_contain_text("A001")
        # the tone was attempted once, and played: this Chromium lets pages play sound
        expect(soc.locator("body")).to_have_attribute("data-beeps", "1")
        expect(soc.locator("body")).to_have_attribute("data-sound", "running")
        expect(soc.locator("#sound-blocked")).to_be_hidden()
        # the count-up timer runs
        expect(row.locator("td.timer")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=3000)
        # the supervisors see it too; another department does not (its feed never had it)
        expect(sup.locator("#calls tbody tr")).to_have_count(1)
        expect(med.locator("#calls tbody tr")).to_have_count(0)
        expect(med.locator("body")).to_have_attribute("data-beeps", "0")

        # a keypad's help key naming a department, over MQTT as the protocol says
        kp = Device(staff.broker_port, "kp-2", "keypad", 2)
        replies = kp.send(("open", {"clerk": "zhao"}), ("help", {"department": "medical"}))
        assert replies[-1]["ok"] is True, replies
        expect(med.locator('#calls tr[data-department="medical"]')).to_have_count(1)
        expect(med.locator("body")).to_have_attribute("data-beeps", "1")
        expect(soc.locator("#calls tbody tr")).to_have_count(1)

        # nobody answers: after escalate_after_s both go to the supervisors, marked
        escalated = sup.locator('#calls tr[data-escalated="1"]')
        expect(escalated).to_have_count(2, timeout=(ESCALATE_S + 5) * 1000)
        expect(sup.locator("#escalated")).to_contain_text("2")
        expect(row).to_have_attribute("data-escalated", "1")
        shot(sup, "department-supervisor-escalated")

        # the department answers, comes to the window and resolves it
        row.locator("button.step-answer").click()
        expect(row).to_have_attribute("data-state", "answered")
        expect(clerk.locator("#help-state")).to_have_attribute("data-state", "answered")
        row.locator("button.step-arrived").click()
        expect(row).to_have_attribute("data-state", "arrived")
        shot(soc, "department-social-arrived")
        row.locator("button.step-resolved").click()
        expect(soc.locator("#calls tbody tr")).to_have_count(0)
        expect(soc.locator("#done tbody tr")).to_have_count(1)
        expect(sup.locator('#calls tr[data-escalated="1"]')).to_have_count(1)  # medical's
    finally:
        for ctx, _ in pages.values():
            ctx.close()


def test_a_blocked_sound_is_said_and_the_button_turns_it_on(staff, chromium):
    """Where the browser keeps a page's audio suspended until the user acts (Chromium's
    default autoplay policy; this test's Chromium allows it, so the page's AudioContext is
    made to start suspended), the page says so and its button resumes it; then a call's
    tone plays."""
    ctx = chromium.new_context(locale="en", viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.add_init_script("""(() => {
          const Real = window.AudioContext;
          window.AudioContext = class extends Real {
            constructor() { super(); this.suspend(); }
          };
        })();""")
        login(page, staff.url, "soc1", lang="en")
        page.goto(f"{staff.url}/department")
        expect(page.locator("body")).to_have_attribute("data-sound", "suspended")
        expect(page.locator("#sound-blocked")).to_be_visible()
        expect(page.locator("#sound-blocked")).to_contain_text("blocked the call sound")
        page.click("#sound-on")
        expect(page.locator("body")).to_have_attribute("data-sound", "running")
        expect(page.locator("#sound-blocked")).to_be_hidden()
        kp = Device(staff.broker_port, "kp-1", "keypad", 1)
        kp.send(("open", {"clerk": "wang"}), ("help", {"department": "social"}))
        expect(page.locator("#calls tbody tr")).to_have_count(1)
        expect(page.locator("body")).to_have_attribute("data-beeps", "1")
        expect(page.locator("body")).to_have_attribute("data-played", "true")
    finally:
        ctx.close()
