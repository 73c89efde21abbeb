"""Issue 20 (全市通办) in real headless Chromium against a real hub process with [city] whose
city cannot be reached (nothing listens at its NATS address): the clerk console shows the
city panel, says nobody at the window is known by a card, then, for the called ticket's
card and for a card tapped at the window's keypad, that the city is not reachable; the
window keeps working meanwhile. (The rows of a city that answers: test_console_city.py.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from onewindow.tools.testkit.ports import quiet_port

from .conftest import add_staff, log_in, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"
CARD = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"
AWAY = f'[city]\nservers = ["nats://127.0.0.1:{quiet_port()}"]\nuser = "centre-web"\n'


@pytest.mark.hub_extra(AWAY)
def test_the_console_says_the_city_is_not_reachable(web_hub, browser_context):
    add_staff(web_hub, [("wu", "吴敏", "clerk", 1)], PASSWORD)
    box = Device(web_hub.broker_port, "box-1", "box")
    box.send(("take", {"item": "SOC-001", "resident": CARD}), ("take", {"item": "SOC-001"}))
    page = browser_context.new_page()
    log_in(page, web_hub.url, "wu", PASSWORD, lands=r"/console$")
    panel = page.locator("#city-box")
    expect(panel).to_contain_text("本市其他中心办理中的事项")
    page.click("#act-open")
    expect(page.locator("#city-state")).to_have_text("该群众未刷卡，无法查询")
    page.click("#act-call")
    expect(page.locator("#current-number")).to_have_text("A001")
    expect(panel).to_have_attribute("data-state", "unreachable")
    expect(page.locator("#city-state")).to_contain_text("全市系统无法连接")
    expect(page.locator("#city-source")).to_have_text("")
    shot(page, "console-city-unreachable")
    page.click("#act-complete")
    page.click("#act-call")  # the next resident has no card
    expect(page.locator("#current-number")).to_have_text("A002")
    expect(panel).to_have_attribute("data-state", "no_card")
    # A card tapped at the window's keypad: its cases are asked for, the city is away.
    [answer] = Device(web_hub.broker_port, "kp-1", "keypad", window=1).send(
        ("card", {"resident": CARD}))
    assert answer.get("city", "absent") is None  # the device is told the same
    expect(panel).to_have_attribute("data-state", "unreachable")
    expect(page.locator("#city-source")).to_have_text("（本窗口刚刷的卡）")
    assert CARD not in page.content()
