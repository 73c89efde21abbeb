"""The supervisor dashboard in real headless Chromium against a real hub and Mosquitto
(issue 18): today's arrivals per half-hour beside the forecast fitted on the past days in
the hub's own history tables (an SVG chart), waits per line with the longest wait now and
no estimate below it, windows with clerk, state, items served and the pause's reason, and
the page usable at a tablet's 1024x768 and a phone's 390x844 (nothing wider than the
screen, the chart and tables sized to it)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, insert

from onewindow.hub.store.schema import history_tickets

from .conftest import add_staff, shot
from .test_staff_pages import PASSWORD, STAFF, Device, login

pytestmark = pytest.mark.timeout(120)
PAST_DAYS = 14
TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


def _past_tickets(hub) -> None:
    """PAST_DAYS closed days in the history tables: 6 residents at 10:05, 4 at 14:05 each."""
    today = dt.datetime.now(hub.tz).date()
    rows = []
    for k in range(1, PAST_DAYS + 1):
        d = today - dt.timedelta(days=k)
        day = d.strftime("%Y%m%d")
        for hh, n in ((10, 6), (14, 4)):
            at = dt.datetime(d.year, d.month, d.day, hh, 5, tzinfo=hub.tz).timestamp()
            rows += [{"id": f"{day}-A{hh}{i:02d}", "day": day, "item": "SOC-001",
                      "priority": "normal", "state": "done", "issued_at": at + i,
                      "one_window": True, "extra_items": "", "returned": ""}
                     for i in range(n)]
    engine = create_engine(f"sqlite:///{hub.workdir / 'hub.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(insert(history_tickets), rows)
    finally:
        engine.dispose()


def fits(page) -> dict:
    """What overflows the screen: the page's own width, and any card or table wrapper
    whose right edge passes the viewport."""
    return page.evaluate("""() => {
      const vw = document.documentElement.clientWidth;
      const sel = 'header, main, .card, .scroll, #arrivals-chart svg';
      const out = [...document.querySelectorAll(sel)]
        .filter((e) => e.getBoundingClientRect().right > vw + 1)
        .map((e) => e.id || e.className || e.tagName);
      return {page: document.documentElement.scrollWidth, vw, over: out};
    }""")


@pytest.mark.hub_local_time("10:10")
def test_dashboard_chart_waits_windows_on_tablet_and_phone(web_hub, chromium):
    add_staff(web_hub, STAFF, PASSWORD)
    _past_tickets(web_hub)
    kp1 = Device(web_hub.broker_port, "kp-1", "keypad", 1)
    kp2 = Device(web_hub.broker_port, "kp-2", "keypad", 2)
    box = Device(web_hub.broker_port, "box-1", "box")
    kp1.send(("open", {"clerk": "wang"}))
    kp2.send(("open", {"clerk": "zhao"}))
    box.send(("take", {"item": "SOC-001", "items": ["SOC-002"]}),
             *[("take", {"item": "SOC-001"})] * 3, ("take", {"item": "MED-001"}))
    # window 1 serves A001 (two items), then pauses (a keypad's pause gives no reason)
    kp1.send(("call", {}), ("complete", {}), ("pause", {}))
    # window 2 calls A002 and keeps it
    kp2.send(("call", {}))

    ctx = chromium.new_context(locale="zh-CN", viewport=TABLET)
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, web_hub.url, "chen")
        expect(page).to_have_url(re.compile(r"/dashboard$"))
        expect(page.locator("h1")).to_have_text("监控大屏")
        # the chart: a bar per half-hour, today's 5 residents in the 10:00 slot, the forecast
        # (fitted on the 14 past days) as a line, the slot now marked
        chart = page.locator("#arrivals-chart svg")
        expect(chart.locator('rect[data-slot="10:00"]')).to_have_attribute(
            "data-count", "5", timeout=20_000)
        expect(chart.locator("polyline.fc")).to_have_count(1)
        expect(chart.locator("line.now")).to_have_count(1)
        expect(page.locator("#arrivals-text")).to_contain_text("今日至今：5 人")
        expect(page.locator("#arrivals-text")).to_contain_text("14")
        bars = chart.locator("rect.bar")
        # every half-hour from the first to the last with a resident, today or forecast (and
        # the opening hours, on a working day)
        expect(chart.locator('rect[data-slot="14:00"]')).to_have_attribute("data-count", "0")
        assert bars.count() >= 9
        total = sum(int(bars.nth(i).get_attribute("data-count")) for i in range(bars.count()))
        assert total == 5
        # the forecast at 10:00 stands near the 6 of every past day, far above 14:00's 0 now
        fc_points = chart.locator("polyline.fc").get_attribute("points").split()
        ys = [float(p.split(",")[1]) for p in fc_points]
        assert min(ys) < max(ys)  # not a flat line: the past days' shape
        # waits per line, the longest wait now, and the estimate never below it
        soc = page.locator('#lines tbody tr[data-line="social"]')
        expect(soc).to_have_count(1)
        longest = int(soc.locator("td.longest").inner_text())
        est = soc.locator("td.estimate").inner_text()
        assert est == "∞" or int(est) >= longest
        # windows: clerk, state with the pause's reason, items served
        w1 = page.locator('#windows tbody tr[data-window="1"]')
        expect(w1.locator("td.state")).to_contain_text("暂停")
        expect(w1.locator("td.state .reason")).to_have_text("未注明")
        expect(w1.locator("td.served")).to_have_text("2")  # A001 and its added item
        expect(w1).to_contain_text("王芳")
        w2 = page.locator('#windows tbody tr[data-window="2"]')
        expect(w2.locator("td.state")).to_have_text("叫号中")
        expect(w2.locator("td.served")).to_have_text("0")
        expect(w2).to_contain_text("A002")
        # tablet: nothing wider than the screen; the chart spans its card and is tall enough
        f = fits(page)
        assert f["page"] <= f["vw"] and not f["over"], f
        box_ = chart.bounding_box()
        card = page.locator("#arrivals-card").bounding_box()
        assert box_["width"] >= 0.9 * (card["width"] - 40) and box_["height"] >= 150
        # buttons a finger can hit on a tablet
        for b in page.locator("#windows td.acts button").all():
            assert b.bounding_box()["height"] >= 40
        shot(page, "dashboard-tablet")

        # phone: the same page at 390 px, no sideways scrolling of the page itself
        page.set_viewport_size(PHONE)
        page.reload()
        expect(chart.locator('rect[data-slot="10:00"]')).to_have_attribute(
            "data-count", "5", timeout=20_000)
        expect(page.locator("#windows tbody tr")).to_have_count(4, timeout=20_000)
        f = fits(page)
        assert f["page"] <= f["vw"] and not f["over"], f
        box_ = chart.bounding_box()
        assert 300 <= box_["width"] <= PHONE["width"] and box_["height"] >= 80
        # the summary figures are two a row, readable
        tickets = page.locator("#s-tickets").bounding_box()
        assert tickets["width"] >= 120
        font = page.locator("#windows td.state").first.evaluate(
            "(e) => parseFloat(getComputedStyle(e).fontSize)")
        assert font >= 12
        shot(page, "dashboard-phone")
        # English is longer: still nothing wider than the phone
        page.goto(web_hub.url + "/dashboard?lang=en")
        expect(page.locator("#arrivals-text")).to_contain_text("So far today: 5 residents")
        expect(w1.locator("td.state .reason")).to_have_text("Not given")
        f = fits(page)
        assert f["page"] <= f["vw"] and not f["over"], f
        assert errors == []  # no script failed on the way
    finally:
        ctx.close()
