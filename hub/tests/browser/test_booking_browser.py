"""Issue 16, booking end to end in real headless Chromium against a real hub process and
Mosquitto: a resident books on a 390x844 phone page (the slot starting now, so no clock is
faked), gets a code and a QR; the kiosk's check-in page takes the QR's text as a scanner
types it and answers with an appointment ticket; the same code again is refused; and when a
clerk calls, the booked ticket goes first, ahead of two walk-ins who came earlier. The
journal holds the booking and the check-in, never the phone number."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest
from playwright.sync_api import expect

from onewindow.hub.fleet import registry

from .conftest import add_staff, shot
from .test_console_priority import login
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(180)
PASSWORD = "s3cret-pass"
STAFF = [("wu", "吴敏", "clerk", 1)]
PHONE = "13812345678"
# Open all day (the test books the slot starting now) in 5-minute slots, at a UTC offset
# where it is noon when the hub starts (hub_local_time): the hours cannot end during the test,
# as they did at UTC+8 when it ran in the minute before midnight.
EXTRA = """
[hours]
weekdays = "00:00-23:59"
sat = "00:00-23:59"
sun = "00:00-23:59"

[booking]
slot_minutes = 5
"""


def journal(db) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT op, body FROM journal ORDER BY pos").fetchall()


@pytest.mark.hub_extra(EXTRA)
@pytest.mark.hub_local_time("12:00")
def test_a_phone_booking_checked_in_by_qr_at_the_kiosk_goes_first_in_its_slot(
        web_hub, chromium, browser_context):
    # The centre's secret (what `onewindow broker-config` makes once): booking codes are
    # signed and phone numbers sealed under keys derived from it. Then the hub restarts.
    db = web_hub.workdir / "hub.db"
    with registry.Fleet(f"sqlite:///{db}") as fleet:
        fleet.secret(create=True)
    web_hub.restart()
    add_staff(web_hub, STAFF, PASSWORD)
    box = Device(web_hub.broker_port, "box-1", "box")
    walk_ins = box.send(("take", {"item": "SOC-001"}), ("take", {"item": "SOC-003"}))
    assert [r["ticket"] for r in walk_ins] == ["A001", "A002"]

    # ---- the resident's phone: 390 x 844 ----------------------------------------------
    phone_ctx = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                     is_mobile=True, has_touch=True)
    page = phone_ctx.new_page()
    page.goto(f"{web_hub.url}/book?item=SOC-001")
    expect(page.locator("h1")).to_have_text("预约办理")
    expect(page.locator("#item")).to_have_value("SOC-001")
    now = dt.datetime.now(web_hub.tz)
    hhmm = f"{now.hour:02d}{now.minute // 5 * 5:02d}"
    current = page.locator(f'#slots button[data-value$="/{hhmm}"]')
    expect(current).to_be_enabled()
    expect(current.locator("small")).to_have_text("余4个")  # 4 windows serve the line
    current.click()
    expect(current).to_have_attribute("aria-checked", "true")
    page.fill("#phone", "12345")  # not a mobile number: said in the page's language
    page.click("#submit")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("手机号码")
    page.fill("#phone", PHONE)
    shot(page, "booking-phone-form-390")
    page.click("#submit")
    expect(page.locator("#done")).to_be_visible()
    code = page.locator("#d-code").inner_text()
    assert re.fullmatch(r"B0001-[A-Z2-7]{6}", code)
    qr_text = page.locator("#d-qr").get_attribute("data-text")
    assert qr_text is not None and qr_text.startswith("OWB1/web/B0001/")
    expect(page.locator("#d-qr svg")).to_be_visible()
    expect(page.locator("#d-window")).to_contain_text("签到")
    # the page fits the phone: nothing wider than its 390 px
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "booking-phone-390")

    # a second booking for the item and day, same number: refused, nothing booked
    again = phone_ctx.new_page()
    again.goto(f"{web_hub.url}/book?item=SOC-001&lang=zh_TW")
    again.locator("#slots button:not([disabled])").last.click()
    again.fill("#phone", PHONE)
    again.click("#submit")
    expect(again.locator("#error")).to_have_text(re.compile("您當天已預約此事項"))

    # ---- the kiosk: its scanner types the QR's text and Enter ----------------------------
    kiosk = browser_context.new_page()
    kiosk.goto(f"{web_hub.url}/kiosk/checkin?device=kiosk-1&lang=zh_CN")
    expect(kiosk.locator("#code")).to_be_focused()
    kiosk.keyboard.type(qr_text)
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#c-ticket")).to_be_visible()
    expect(kiosk.locator("#c-number")).to_have_text("A003")
    expect(kiosk.locator("#c-kind")).to_have_text("预约号：在您的时段内优先办理")
    expect(kiosk.locator("#c-ticket")).to_have_attribute("data-late", "false")
    shot(kiosk, "booking-kiosk-checkin")
    kiosk.keyboard.type(qr_text)  # the same code again (a replay)
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#c-error")).to_have_text(re.compile("该预约已签到"))
    kiosk.keyboard.type(qr_text[:-3] + "AAA")  # forged
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#c-error")).to_have_text("预约码无效")

    # ---- a clerk calls: the booked ticket goes first -------------------------------------
    console = browser_context.new_page()
    login(console, web_hub.url)
    console.click("#act-open")
    expect(console.locator("#win-state")).to_have_text("空闲")
    console.click("#act-call")
    expect(console.locator("#current-number")).to_have_text("A003")
    console.click("#act-call")
    expect(console.locator("#current-number")).to_have_text("A001")

    ops = journal(db)
    assert [op for op, _ in ops if op in ("book", "checkin")] == ["book", "checkin"]
    checkin = next(body for op, body in ops if op == "checkin")
    assert '"source": "kiosk-1"' in checkin or '"source":"kiosk-1"' in checkin
    assert not any(PHONE in body or "5678" in body for _, body in ops)
    phone_ctx.close()
