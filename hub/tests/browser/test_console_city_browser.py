"""Issue 20 (全市通办) in real headless Chromium against a real hub process with [city].

A city that cannot be reached (nothing listens at its NATS address): the clerk console
shows the city panel, says nobody at the window is known by a card, then, for the called
ticket's card and for a card tapped at the window's keypad, that the city is not
reachable; the window keeps working meanwhile.

A city that answers (a real nats-server with the centres' production permissions, the
router's index and its `cityq` answerer, another centre sending its waits): the panel lists
the resident's case elsewhere, its centres by the names they send, in the page's language.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from onewindow.hub.city import router
from onewindow.tools.testkit.nats_cluster import NatsCluster, centre_password
from onewindow.tools.testkit.ports import quiet_port

from .conftest import add_staff, log_in, shot
from .test_staff_pages import Device

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"
CARD = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"
AWAY = f'[city]\nservers = ["nats://127.0.0.1:{quiet_port()}"]\nuser = "centre-web"\n'
CITY_PORT = quiet_port()  # the city's one node listens here once the test starts it
CITY = (f'[city]\nservers = ["nats://127.0.0.1:{CITY_PORT}"]\nuser = "centre-web"\n'
        f'password = "{centre_password("web")}"\n')
WEST = {"zh": "西区中心", "zh_tw": "西區中心", "en": "West Centre"}
ELSEWHERE = "c05/20261102-A001"


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


class City:
    """The city tier (two nodes) in a thread of its own (Playwright's sync API holds this
    one's loop): the router's index holding the card's case at c05 (approved there,
    collected at c07), its answerer, and c05's hub sending its waits, name included, every
    0.3 s."""

    def __init__(self, cluster: NatsCluster) -> None:
        self.cluster = cluster
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(1)
        self.done = self.pool.submit(asyncio.run, self._run())

    async def _run(self) -> None:
        admin = await self.cluster.connect()
        c05 = await self.cluster.connect_centre("c05")
        try:
            kv = await router.index_bucket(admin.jetstream(), replicas=1)
            await router.merge(kv, {
                "token": CARD, "centre": "c05", "case": "20261102-A001", "key": ELSEWHERE,
                "item": "SOC-003", "state": "open", "due_day": "2026-11-23",
                "approver": "c05", "pickup": "c07", "version": 1, "at": time.time()})
            await router.answer_queries(admin, kv)
            waits = json.dumps({"centre": "c05", "at": 0.0, "name": WEST, "url": "",
                                "lines": {}}).encode()
            while not self.stop.is_set():
                await c05.publish("citywaits.c05", waits)
                await c05.flush()
                await asyncio.to_thread(self.stop.wait, 0.3)  # c05's waits_every_s
        finally:
            await c05.close()
            await admin.close()

    def close(self) -> None:
        self.stop.set()
        self.done.result(timeout=30)
        self.pool.shutdown()


@pytest.mark.hub_extra(CITY)
def test_the_console_names_the_centres_of_a_residents_cases_elsewhere(
        web_hub, browser_context, tmp_path):
    cluster = NatsCluster(tmp_path / "nats", centres=["web", "c05"], size=2)
    cluster.nodes[0] = dataclasses.replace(cluster.nodes[0], port=CITY_PORT)
    with cluster:
        city = City(cluster)
        try:
            add_staff(web_hub, [("wu", "吴敏", "clerk", 1), ("li", "李静", "supervisor", None)],
                      PASSWORD)
            # the hub has heard c05 name itself (GET /city/status, a supervisor's)
            sup = browser_context.new_page()
            log_in(sup, web_hub.url, "li", PASSWORD, next_=None)
            deadline = time.monotonic() + 30
            while "c05" not in sup.request.get(f"{web_hub.url}/city/status").json()["named"]:
                assert time.monotonic() < deadline, "the hub never heard c05's waits"
                sup.wait_for_timeout(100)
            Device(web_hub.broker_port, "box-1", "box").send(
                ("take", {"item": "SOC-001", "resident": CARD}))
            page = browser_context.new_page()
            log_in(page, web_hub.url, "wu", PASSWORD, lands=r"/console$")
            page.click("#act-open")
            page.click("#act-call")
            expect(page.locator("#current-number")).to_have_text("A001")
            expect(page.locator("#city-box")).to_have_attribute("data-state", "ok")
            row = page.locator(f'#city-cases li[data-key="{ELSEWHERE}"]')
            # approved at c05, by the name it sends; c07 never sent one: its id
            expect(row).to_contain_text("城乡居民养老金申领")
            expect(row).to_contain_text("审批中心 西区中心")
            expect(row).to_contain_text("领取中心 c07")
            page.goto(f"{web_hub.url}/console?lang=en")
            expect(row).to_contain_text("approved at West Centre")
            assert CARD not in page.content()
        finally:
            city.close()
