"""The public pages in real headless Chromium against a real hub process and Mosquitto:
the kiosk's pre-review (tips instead of a ticket, a ticket only if the resident insists),
kiosk -> ticket -> a clerk's keypad calls -> the hall screen and the phone page change
without a reload (and the hall speaks), and the English switch."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import expect

from onewindow.tools.simdevice import SimDevice

from .conftest import CENTRE, shot

pytestmark = pytest.mark.timeout(120)


class Keypad:
    """A clerk's keypad over real MQTT; its event numbering survives reconnects."""

    def __init__(self, port: int, window: int) -> None:
        self.port, self.window, self.seq = port, window, 0

    def press(self, *types: str) -> list[dict]:
        async def go() -> list[dict]:
            async with SimDevice(CENTRE, f"kp-{self.window}", "keypad", "127.0.0.1", self.port,
                                 window=self.window, seq=self.seq) as kp:
                replies = [await kp.send(t) for t in types]
                self.seq = kp.seq
                return replies

        # Playwright's sync API keeps an event loop in this thread: run ours in another.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result(timeout=30)


class Printer:
    """What the hub sends to a device's printer (its `cmd` topic)."""

    def __init__(self, port: int, dev: str) -> None:
        self.prints: list[dict] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"spy-{dev}")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"ow/{CENTRE}/dev/{dev}/cmd", qos=1)
        self.client.loop_start()

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        """Until the broker has acknowledged the subscription (SUBACK)."""
        assert self._subscribed.wait(timeout), "the printer spy's subscription was not acked"

    def _message(self, _c, _u, msg) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("type") == "print":
            with self._changed:
                self.prints.append(cmd)
                self._changed.notify_all()

    def wait_for(self, ticket: str, timeout: float = 10.0) -> dict:
        def printed() -> dict | None:
            return next((p for p in self.prints if p["ticket"] == ticket), None)

        with self._changed:
            if not self._changed.wait_for(printed, timeout):
                raise AssertionError(f"no print of {ticket!r}; got {self.prints}")
            return printed()  # type: ignore[return-value]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def printer(web_hub):
    p = Printer(web_hub.broker_port, "kiosk-1")
    p.wait_subscribed()
    yield p
    p.close()


def kiosk_page(ctx, web_hub):
    page = ctx.new_page()
    page.set_viewport_size({"width": 1080, "height": 1920})  # portrait kiosk
    page.goto(web_hub.url + "/kiosk?device=kiosk-1")
    return page


def open_item(page, web_hub, item: str = "SOC-001"):
    page.goto(web_hub.url + "/kiosk/line/social")
    page.click(f'a[href="/kiosk/item/{item}"]')
    expect(page.locator("#checklist label")).not_to_have_count(0)


def tick(page, *materials: str):
    for m in materials:
        page.locator("#checklist label", has_text=m).locator("input").check()


def test_pre_review_shows_tips_instead_of_a_ticket_until_the_resident_insists(
        web_hub, browser_context, printer):
    page = kiosk_page(browser_context, web_hub)
    expect(page.locator("h1")).to_have_text("您今天要办什么事？")
    page.fill("#q", "yl")
    expect(page.locator("#live-results li")).not_to_have_count(0)
    assert "养老" in page.locator("#live-results li").first.inner_text()
    shot(page, "kiosk-home-search")

    open_item(page, web_hub)
    expect(page.locator("#item-name")).to_have_text("城乡居民养老保险参保登记")
    expect(page.locator("#checklist label.need")).to_have_count(2)
    tick(page, "户口簿")  # no ID card
    shot(page, "kiosk-item-prereview")
    page.click("#check")

    tips = page.locator("#tips")
    expect(tips).to_be_visible()
    expect(page.locator("#ticket")).to_be_hidden()
    expect(page.locator("#tips-list")).to_contain_text("本人居民身份证")
    expect(page.locator("#tips-list")).not_to_contain_text("户口簿")
    expect(page.locator("#tips-qr svg")).to_be_visible()
    expect(page.locator("#insist")).to_be_hidden()  # not offered until asked for
    page.click("#print-tips")
    expect(page.locator("#printed")).to_be_visible()
    slip = printer.wait_for("tips")
    assert "□ 本人居民身份证" in slip["lines"] and "/tips?items=SOC-001" in slip["qr"]
    shot(page, "kiosk-tips")

    page.click("#insist-ask")
    page.click("#insist")
    expect(page.locator("#ticket")).to_be_visible()
    expect(page.locator("#t-number")).to_have_text("A001")
    expect(page.locator("#t-ahead")).to_have_text("前面还有0人")
    assert printer.wait_for("A001")["lines"][1] == "A001"
    shot(page, "kiosk-ticket")

    tips_page = browser_context.new_page()
    tips_page.set_viewport_size({"width": 390, "height": 844})
    tips_page.goto(web_hub.url + urlparse(slip["qr"]).path + "?" + urlparse(slip["qr"]).query)
    expect(tips_page.locator("li.missing")).to_contain_text("本人居民身份证")
    shot(tips_page, "tips-phone")


def test_kiosk_ticket_then_a_call_updates_the_hall_and_the_phone_live(
        web_hub, browser_context, printer):
    hall = browser_context.new_page()
    hall.set_viewport_size({"width": 1920, "height": 1080})
    voices: list[str] = []
    hall.on("request", lambda r: voices.append(r.url) if "/hall/voice/" in r.url else None)
    hall.goto(web_hub.url + "/hall?voice=en")
    expect(hall.locator("#now-number")).to_have_text("—")

    page = kiosk_page(browser_context, web_hub)
    open_item(page, web_hub)
    # ask one more question: the social security card too, on the same ticket
    page.locator("#more label", has_text="社会保障卡即时制卡").locator("input").check()
    tick(page, "本人居民身份证", "户口簿")
    page.click("#check")  # everything there: straight to the ticket
    expect(page.locator("#ticket")).to_be_visible()
    expect(page.locator("#t-number")).to_have_text("A001")
    expect(page.locator("#t-items li")).to_have_count(2)
    url = page.locator("#t-qr").get_attribute("data-url")
    assert url and url.endswith("-A001")

    phone = browser_context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(web_hub.url + urlparse(url).path)
    expect(phone.locator("#number")).to_have_text("A001")
    expect(phone.locator("#ticket")).to_have_attribute("data-state", "waiting")
    expect(phone.locator("#detail")).to_contain_text("暂无开放窗口")
    expect(hall.locator("#waits li").first).to_contain_text("社会保险")
    shot(phone, "phone-waiting")

    keypad = Keypad(web_hub.broker_port, 1)
    keypad.press("open")
    expect(phone.locator("#status")).to_have_text("下一位就是您")
    # the hall speaks the call in Chinese, then English: the English voice is the last one
    with hall.expect_request(lambda r: "/hall/voice/" in r.url and "lang=en" in r.url,
                             timeout=15_000):
        reply = keypad.press("call")[0]
    assert reply["ticket"] == "A001"

    expect(hall.locator("#now-number")).to_have_text("A001")
    expect(hall.locator("#now-window")).to_have_text("请到1号窗口")
    expect(phone.locator("#ticket")).to_have_attribute("data-state", "called")
    expect(phone.locator("#status")).to_have_text("请到1号窗口办理")
    shot(phone, "phone-called")
    renders = hall.evaluate("window.__owRenders")
    assert [r["ticket"] for r in renders] == ["A001"]
    call_id = renders[0]["id"]
    assert [v.split("?")[1] for v in voices] == ["lang=zh", "lang=en"]
    assert all(call_id in v for v in voices)
    shot(hall, "hall")

    # the announcement repeats, with a new call id
    with hall.expect_request(lambda r: "/hall/voice/" in r.url and "lang=en" in r.url
                             and call_id not in r.url, timeout=15_000):
        keypad.press("recall")
    expect(hall.locator("#recent tbody tr")).to_have_count(1)
    assert len(voices) == 4 and call_id not in voices[2]
    keypad.press("start")
    expect(phone.locator("#status")).to_have_text("正在1号窗口办理")
    keypad.press("complete")
    expect(phone.locator("#ticket")).to_have_attribute("data-state", "done")


def test_english_switch_keeps_the_kiosk_device(web_hub, browser_context):
    page = kiosk_page(browser_context, web_hub)
    page.click(".langs a:has-text('English')")
    expect(page.locator("h1")).to_have_text("What would you like to do today?")
    assert "device=kiosk-1" in page.url and "lang=en" in page.url
    expect(page.locator(".tile").first).to_contain_text("Social insurance")
    shot(page, "kiosk-home-en")
    open_item(page, web_hub)
    expect(page.locator("h2", has_text="Pre-review")).to_be_visible()
    shot(page, "kiosk-item-en")
    hall = browser_context.new_page()
    hall.set_viewport_size({"width": 1920, "height": 1080})
    hall.goto(web_hub.url + "/hall")  # the cookie remembers English
    expect(hall.locator(".now .label")).to_have_text("Now calling")
    shot(hall, "hall-en")
    missing = browser_context.new_page()
    r = missing.goto(web_hub.url + "/t/20200101-A001?lang=zh_CN")
    assert r is not None and r.status == 404
    expect(missing.locator("h1")).to_have_text("没有找到这张号票")
    shot(missing, "phone-not-found")
