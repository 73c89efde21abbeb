"""The main pages as a person meets them, in real headless Chromium against a real hub and
Mosquitto with a morning under way (windows open, tickets waiting and called, a promised
item in the back office): the front door, kiosk, hall screen, clerk console, dashboard, the
resident's phone ticket, the back office's cases and the device fleet (the dashboard, cases
and fleet on a phone too).

Each page is checked the same way: it has its heading, nothing is wider than the screen
(no sideways scrolling of the page, no card past its right edge), and its main text is
there in zh-CN. The fleet page says everything in Chinese (roles, states, "last seen" as an
age from the hub's clock).

The README's screenshots are these: `ONEWINDOW_SCREENSHOTS=1` (or `tools/dev.sh
screenshots`) writes each page's PNG to docs/screenshots/; every run leaves them in
artifacts/screenshots/ too.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, insert

from onewindow.hub.store.schema import history_tickets

from .conftest import REPO, SHOTS, add_staff
from .test_staff_pages import PASSWORD, STAFF, Device, login

pytestmark = pytest.mark.timeout(180)
DOCS = REPO / "docs" / "screenshots"
DESK = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def save(page, name: str, full_page: bool = False) -> Path:
    """The page as a PNG in artifacts/screenshots/ and, with ONEWINDOW_SCREENSHOTS=1, in
    docs/screenshots/ (the README's)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"readme-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("ONEWINDOW_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        (DOCS / f"{name}.png").write_bytes(path.read_bytes())
    return path


def save_part(locator, name: str) -> None:
    """One part of a page (the dashboard's chart) as its own PNG, as `save` does."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"readme-{name}.png"
    locator.screenshot(path=str(path))
    if os.environ.get("ONEWINDOW_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        (DOCS / f"{name}.png").write_bytes(path.read_bytes())


def no_overflow(page, what: str) -> None:
    got = page.evaluate("""() => {
      const vw = document.documentElement.clientWidth;
      const over = [...document.querySelectorAll('header, main, section, .card, table, svg')]
        .filter((e) => !e.closest('.scroll') && e.getBoundingClientRect().right > vw + 1)
        .map((e) => e.id || e.className.baseVal || e.className || e.tagName);
      return {page: document.documentElement.scrollWidth, vw, over};
    }""")
    assert got["page"] <= got["vw"] and not got["over"], (what, got)


def check(page, name: str, heading: str | re.Pattern, full_page: bool = False) -> None:
    expect(page.locator("h1").first).to_contain_text(heading)
    no_overflow(page, name)
    save(page, name, full_page)


# residents per half-hour on an ordinary past day, 09:00-16:30: the forecast's shape
PAST_DAY = (9, 14, 16, 13, 10, 7, 4, 3, 6, 9, 11, 10, 7, 5, 3, 1)


def _past_days(hub, days: int = 12) -> None:
    """Closed days in the history tables, for the dashboard's forecast."""
    today = dt.datetime.now(hub.tz).date()
    rows = []
    for k in range(1, days + 1):
        d = today - dt.timedelta(days=k)
        day = d.strftime("%Y%m%d")
        start = dt.datetime(d.year, d.month, d.day, 9, 0, tzinfo=hub.tz).timestamp()
        for slot, n in enumerate(PAST_DAY):
            rows += [{"id": f"{day}-A{slot:02d}{i:02d}", "day": day, "item": "SOC-001",
                      "priority": "normal", "state": "done",
                      "issued_at": start + slot * 1800 + i * 60, "one_window": True,
                      "extra_items": "", "returned": ""} for i in range(n)]
    engine = create_engine(f"sqlite:///{hub.workdir / 'hub.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(insert(history_tickets), rows)
    finally:
        engine.dispose()


def on_phone(page, name: str) -> None:
    """The same page 390 px wide: its wide tables scroll in their cards, the page not."""
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("h1").first).to_be_visible()
    no_overflow(page, name + " on a phone")
    page.set_viewport_size(DESK)


@pytest.mark.hub_local_time("10:20")
def test_main_pages_render_without_overflow_and_are_captured(web_hub, chromium):
    add_staff(web_hub, STAFF, PASSWORD)
    _past_days(web_hub)
    kp = {n: Device(web_hub.broker_port, f"kp-{n}", "keypad", n) for n in (1, 2, 3)}
    box = Device(web_hub.broker_port, "box-1", "box")
    for n, clerk in ((1, "wang"), (2, "zhao"), (3, None)):
        kp[n].send(("open", {"clerk": clerk} if clerk else {}))
    # a promised item (SOC-003) accepted at window 3, for the back office
    box.send(("take", {"item": "SOC-003"}))
    kp[3].send(("call", {}), ("start", {}), ("complete", {}))
    taken = box.send(("take", {"item": "SOC-001", "items": ["SOC-002"]}),
                     *[("take", {"item": i}) for i in ("SOC-001", "MED-001", "SOC-004",
                                                       "MED-001", "SOC-001")])
    kp[1].send(("call", {}), ("start", {}))
    kp[2].send(("call", {}))
    kp[3].send(("pause", {}))
    number = taken[-1]["ticket"]
    ticket_id = f"{dt.datetime.now(web_hub.tz):%Y%m%d}-{number}"

    ctx = chromium.new_context(locale="zh-CN", viewport=DESK)
    errors: list[str] = []
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(web_hub.url + "/")
        check(page, "landing", "示范")
        page.goto(web_hub.url + "/kiosk?device=kiosk-1")
        check(page, "kiosk", re.compile(r"\S"))
        hall = ctx.new_page()
        hall.set_viewport_size({"width": 1600, "height": 900})
        hall.goto(web_hub.url + "/hall")
        expect(hall.locator("body")).to_contain_text("A002", timeout=20_000)
        no_overflow(hall, "hall")
        save(hall, "hall")
        hall.close()

        login(page, web_hub.url, "wang")
        expect(page.locator("#current-number")).to_have_text("A002", timeout=20_000)
        check(page, "console", "1")
        page.click("#logout")

        login(page, web_hub.url, "chen")
        expect(page.locator('#windows tbody tr[data-window="1"] td.state')).to_have_text(
            "办理中", timeout=20_000)
        expect(page.locator("#arrivals-chart svg polyline.fc")).to_have_count(1)
        check(page, "dashboard", "监控大屏")
        save_part(page.locator("#arrivals-card"), "dashboard-arrivals")
        page.set_viewport_size(PHONE)
        page.reload()
        expect(page.locator("#arrivals-chart svg polyline.fc")).to_have_count(1,
                                                                       timeout=20_000)
        check(page, "dashboard-phone", "监控大屏")
        page.set_viewport_size(DESK)
        page.click("#logout")

        login(page, web_hub.url, "qian")
        expect(page.locator("#cases tbody tr[data-case]")).to_have_count(1)
        # one reason box per row, its own buttons beside it
        row = page.locator("#cases tbody tr[data-case]").first
        expect(row.locator(".case-reason")).to_have_count(1)
        check(page, "cases", "承诺件")
        on_phone(page, "cases")
        page.click("#logout")

        login(page, web_hub.url, "sun")
        kp1 = page.locator('#fleet tr[data-dev="kp-1"]')
        expect(kp1.locator("td.role")).to_have_text("呼叫器")
        expect(kp1.locator("td.state")).to_have_text(
            re.compile(r"^(在线|离线) \((就绪|已断开|启动中|失联)\)$"))
        expect(kp1.locator("td.seen")).to_contain_text(re.compile(r"\d+ (秒|分钟)前 · \d\d:\d\d"))
        # a device never heard from since the hub started says so, in Chinese
        led1 = page.locator('#fleet tr[data-dev="led-1"]')
        expect(led1.locator("td.seen")).to_have_text("主机本次启动后未见")
        # no English word in what the page itself says (ids, boards, firmware are names)
        said = page.locator("#fleet td.role, #fleet td.state, #fleet td.uptime, "
                            "#fleet td.seen, #fleet td.dev-alerts").all_inner_texts()
        assert len(said) == 5 * 11 and not [t for t in said if re.search("[A-Za-z]", t)], said
        check(page, "fleet", "设备管理")
        on_phone(page, "fleet")
        assert errors == []  # no page's script failed
    finally:
        ctx.close()

    phone = chromium.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True,
                                 device_scale_factor=2)
    try:
        page = phone.new_page()
        page.goto(f"{web_hub.url}/t/{ticket_id}")
        check(page, "phone-ticket", "您的号码")
        expect(page.locator("#number")).to_have_text(number)
    finally:
        phone.close()
