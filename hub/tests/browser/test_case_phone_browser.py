"""The resident leaves their mobile number for their case's notices on the phone page
(issue 17), in real headless Chromium against the hub process: the form shows on the
ticket's own page (its QR link's token) while the case is in progress, a landline is
refused in the page's language, a mobile number is kept sealed and said back masked, and
the form is gone after a reload; a page opened without the token offers no form."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from onewindow.hub.core import booking
from onewindow.hub.core.signing import ticket_token
from onewindow.hub.fleet import registry

from .conftest import CENTRE, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)


@pytest.mark.hub_local_time("10:00")
def test_the_resident_leaves_a_number_for_the_cases_notices(web_hub, browser_context):
    db = web_hub.workdir / "hub.db"
    with registry.Fleet(f"sqlite:///{db}") as fleet:
        secret = fleet.secret(create=True)
    assert secret is not None
    web_hub.restart()  # numbers are sealed with the centre's secret
    box = Device(web_hub.broker_port, "box-1", "box")
    kp = Device(web_hub.broker_port, "kp-1", "keypad", 1)
    [took] = box.send(("take", {"item": "SOC-003"}))  # a promised item
    kp.send(("open", {}), ("call", {}), ("start", {}), ("complete", {}))
    case = f"{dt.datetime.now(web_hub.tz):%Y%m%d}-{took['ticket']}"
    k = ticket_token(booking.derive_key(secret, CENTRE), CENTRE, case)
    page = browser_context.new_page()
    page.goto(f"{web_hub.url}/t/{case}")  # no token: read-only, no form
    expect(page.locator("#case-state")).to_have_text("后台审批中")
    expect(page.locator("#case-phone-form")).to_be_hidden()
    page.goto(f"{web_hub.url}/t/{case}?k={k}&lang=zh_CN")
    expect(page.locator("#case-phone-form")).to_be_visible()
    page.fill("#case-phone", "021-12345678")
    page.click("#case-phone-save")
    expect(page.locator("#case-phone-msg")).to_contain_text("手机号码")
    page.fill("#case-phone", "13812345678")
    page.click("#case-phone-save")
    expect(page.locator("#case-phone-done")).to_contain_text("138****5678")
    expect(page.locator("#case-phone-form")).to_be_hidden()
    shot(page, "case_phone_kept")
    page.reload()
    expect(page.locator("#case-state")).to_have_text("后台审批中")
    expect(page.locator("#case-phone-form")).to_be_hidden()
    assert b"13812345678" not in b"".join(p.read_bytes() for p in
                                          web_hub.workdir.glob("hub.db*"))
