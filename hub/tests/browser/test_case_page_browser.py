"""One promised case's page in real headless Chromium against a real hub process and
Mosquitto (issue 17's back office): the page photo captured at the window for the case's
ticket is on it, as a thumbnail served to logged-in staff only; the back office returns
the case for one material from that page (its own reason box and checklist), then
approves it once resubmitted, and each step is listed with who did it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .test_staff_pages import JPEG, Device, login, staff  # noqa: F401 - staff: a fixture

pytestmark = pytest.mark.timeout(120)


def test_the_case_page_shows_the_captured_page_and_walks_the_loop(staff, browser_context):  # noqa: F811
    box = Device(staff.broker_port, "box-1", "box")
    [taken] = box.send(("take", {"item": "SOC-003"}))  # promised: 城乡居民养老金申领
    kp = Device(staff.broker_port, "kp-1", "keypad", 1)
    kp.send(("open", {}), ("call", {}), ("start", {}))
    page = browser_context.new_page()
    login(page, staff.url, "qian")
    expect(page).to_have_url(re.compile(r"/cases$"))
    # the window node's camera uploads the page for the ticket being served (by number)
    up = browser_context.request.post(
        f"{staff.url}/api/tickets/{taken['ticket']}/files",
        multipart={"file": {"name": "page.jpg", "mimeType": "image/jpeg", "buffer": JPEG}})
    assert up.status == 201, up.text()
    kp.send(("complete", {}))
    page.reload()
    row = page.locator("#cases tbody tr").first
    expect(row).to_contain_text("城乡居民养老金申领")
    ticket_id = row.get_attribute("data-case")
    assert ticket_id is not None and ticket_id.endswith("-" + taken["ticket"])
    page.goto(f"{staff.url}/cases/{ticket_id}")
    expect(page.locator("#case .state")).to_have_text("办理中")
    img = page.locator("#case-docs img")
    expect(img).to_have_count(1)
    src = img.get_attribute("src")
    assert src is not None and src.startswith(f"/cases/{ticket_id}/files/")
    got = browser_context.request.get(staff.url + src)
    assert got.status == 200 and got.body() == JPEG
    anon = browser_context.browser.new_context()  # not logged in: no document
    try:
        r = anon.request.get(staff.url + src, max_redirects=0)
        assert r.status in (303, 401) and r.body() != JPEG
    finally:
        anon.close()
    form = page.locator("#case .case-form")
    form.locator('button[data-action="returned"]').click()  # no reason: refused, shown
    expect(form.locator(".case-msg")).to_contain_text("原因")
    form.locator(".case-reason").fill("户口簿复印件不清晰")
    form.locator('input[name="material"]').nth(1).check()
    form.locator('button[data-action="returned"]').click()
    expect(page.locator("#case .state")).to_have_text("已退件")
    expect(page.locator("#case-return")).to_contain_text("户口簿复印件不清晰")
    shot(page, "staff-case-page-returned")
    page.locator('#case button[data-action="resubmitted"]').click()
    expect(page.locator("#case .state")).to_have_text("办理中")
    page.locator('#case button[data-action="approved"]').click()
    expect(page.locator("#case .state")).to_have_text("待领取")
    steps = page.locator("#case-steps tbody tr")
    expect(steps).to_have_count(4)  # accepted, returned, resubmitted, approved
    expect(page.locator('#case-steps tr[data-action="returned"]')).to_contain_text("钱科长")
    expect(page.locator('#case-steps tr[data-action="accepted"]')).to_contain_text("窗口受理")
