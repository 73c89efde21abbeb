"""Issue 16, honest capacity end to end in real headless Chromium against a real hub process
and Mosquitto: on a day the queue cannot be served before closing, the kiosk says so BEFORE
a ticket is issued and offers a booking (where the centre takes bookings; else another day),
and the booking page opens with the item chosen; in mode "stop" the box's press is refused.

The day is made over capacity without faking a clock: the centre closes at 12:00 and its UTC
offset is chosen so that it is 11:55 when the hub starts (hub_local_time), whatever the wall
clock says; a box then issues a queue the windows cannot serve in those five minutes. (The
hours used to be written from the local time at UTC+8, and after 23:50 the test checked a
closed centre instead.)"""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import expect

from onewindow.hub.fleet import registry
from onewindow.tools.simdevice import DeviceError

from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(180)
# Closing at noon, with the hub started at 11:55 local (hub_local_time on each test).
HOURS = "\n[hours]\n" + "".join(f'{d} = "00:00-12:00"\n' for d in ("weekdays", "sat", "sun"))
AT_1155 = pytest.mark.hub_local_time("11:55")


def open_windows(hub) -> None:
    """The clerks open windows 1 and 2 (with no window open the wait cannot be judged, and
    a take is not refused for it: the morning before the windows open)."""
    for n in (1, 2):
        Device(hub.broker_port, f"kp-{n}", "keypad", n).send(("open", {}))


@pytest.mark.hub_extra(HOURS + '\n[admission]\nmode = "warn"\n')
@AT_1155
def test_an_over_capacity_day_warns_at_the_kiosk_and_offers_a_booking(
        web_hub, browser_context):
    # The centre's secret (what `onewindow broker-config` makes once): with it the hub takes
    # bookings (codes signed under it), so the kiosk can offer one.
    with registry.Fleet(f"sqlite:///{web_hub.workdir / 'hub.db'}") as fleet:
        fleet.secret(create=True)
    web_hub.restart()
    open_windows(web_hub)
    box = Device(web_hub.broker_port, "box-1", "box")
    box.send(*[("take", {"item": "SOC-001"})] * 30)  # 30 waiting, closing in 5 minutes
    page = browser_context.new_page()
    page.goto(f"{web_hub.url}/kiosk/item/SOC-001?device=kiosk-1&lang=zh_CN")
    banner = page.locator("#admission")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-verdict", "late")
    expect(banner).to_contain_text("预计无法在今日办理")
    expect(page.locator("#check")).to_be_enabled()  # warn: the resident may still take one
    page.click("#admission-book")
    expect(page).to_have_url(f"{web_hub.url}/book?item=SOC-001")
    expect(page.locator("#item")).to_have_value("SOC-001")


@pytest.mark.hub_extra(HOURS + '\n[admission]\nmode = "stop"\n')
@AT_1155
def test_stop_mode_refuses_before_issuing_and_the_box_gets_day_full(web_hub, browser_context):
    open_windows(web_hub)
    box = Device(web_hub.broker_port, "box-1", "box")
    refused = None
    for _ in range(60):  # the box's presses are issued until the day is full
        try:
            box.send(("take", {"item": "SOC-001"}))
        except DeviceError as e:
            refused = e.reply
            break
    assert refused is not None and refused["code"] == "day_full", refused
    page = browser_context.new_page()
    page.goto(f"{web_hub.url}/kiosk/item/SOC-001?device=kiosk-1&lang=zh_TW")
    banner = page.locator("#admission")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("今日號源已滿")
    expect(page.locator("#check")).to_be_disabled()
    # This centre takes no bookings (no secret yet): no booking is offered, but another day.
    expect(page.locator("#admission-book")).to_have_count(0)
    expect(page.locator("#admission-later")).to_have_text("請改日（工作日）再來辦理。")


@pytest.mark.hub_extra(HOURS + '\n[admission]\nmode = "stop"\n')
@AT_1155
def test_the_phone_says_it_before_a_remote_number_is_taken(web_hub, chromium) -> None:
    with registry.Fleet(f"sqlite:///{web_hub.workdir / 'hub.db'}") as fleet:
        fleet.secret(create=True)  # remote takes seal numbers, bookings sign codes with it
    # Remote takes on, now that the centre has its secret (without it the hub refuses to
    # start: hub/tests/test_hub_command.py).
    web_hub.config.write_text(web_hub.config.read_text() + "\n[remote]\nenabled = true\n")
    web_hub.restart()
    open_windows(web_hub)
    box = Device(web_hub.broker_port, "box-1", "box")
    with contextlib.suppress(DeviceError):  # the box's presses until the day is full
        for _ in range(60):
            box.send(("take", {"item": "SOC-001"}))
    phone = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                 is_mobile=True, has_touch=True).new_page()
    phone.goto(f"{web_hub.url}/remote?lang=zh_CN")
    phone.select_option("#item", "SOC-001")
    expect(phone.locator("#admission")).to_be_visible()
    expect(phone.locator("#admission-text")).to_have_text(
        "今日号源已满")
    expect(phone.locator("#take")).to_be_disabled()
    expect(phone.locator("#admission-book")).to_have_attribute("href", "/book?item=SOC-001")
