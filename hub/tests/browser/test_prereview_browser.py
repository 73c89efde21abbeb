"""Pre-review that counts (预审 / 一次办成), in real headless Chromium against a real hub
process and Mosquitto: one resident at the kiosk ticks one of two required materials, sees
the tips and leaves to fetch the other (journaled on its own: a wasted wait avoided);
another insists and queues anyway. The clerk's console shows that ticket's pre-review
(ticked, missing, queued anyway) and the related items, and "return for materials" (after
confirming) ends the visit, journaled with the clerk, and offers the tips slip."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import add_staff, log_in, shot

pytestmark = pytest.mark.timeout(120)
PASSWORD = "s3cret-pass"
STAFF = [("wu", "吴敏", "clerk", 1)]
ID_CARD = "本人居民身份证"  # SOC-001.0; SOC-001.1 (户口簿) is the other required one


def journal(db, op: str) -> list[dict]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT body FROM journal WHERE op = ? ORDER BY pos", (op,))
        return [json.loads(b) for (b,) in rows]


def at_kiosk(context, url: str):
    page = context.new_page()
    page.goto(f"{url}/kiosk/item/SOC-001?device=kiosk-1&lang=zh_CN")
    page.check(f'#checklist input[value="{ID_CARD}"]')
    page.click("#check")
    expect(page.locator("#tips")).to_be_visible()
    expect(page.locator("#tips-list")).to_contain_text("户口簿")
    return page


def test_kiosk_outcomes_reach_the_console_and_a_clerk_returns_for_materials(
        web_hub, browser_context):
    add_staff(web_hub, STAFF, PASSWORD)
    db = web_hub.workdir / "hub.db"

    # the first resident leaves to fetch the missing material: no ticket, journaled
    first = at_kiosk(browser_context, web_hub.url)
    first.click("#leave")
    expect(first.locator("#left-note")).to_be_visible()
    [left] = journal(db, "prereview")
    assert left["items"] == ["SOC-001"] and left["missing"] == ["SOC-001.1"]
    assert left["ticked"] == ["SOC-001.0"] and left["source"] == "kiosk-1"
    assert journal(db, "take") == []
    first.close()

    # the second queues anyway
    kiosk = at_kiosk(browser_context, web_hub.url)
    kiosk.click("#insist-ask")
    kiosk.click("#insist")
    expect(kiosk.locator("#t-number")).to_have_text("A001")
    [take] = journal(db, "take")
    assert take["review"] == {"ticked": ["SOC-001.0"], "missing": ["SOC-001.1"],
                              "tips": False, "insisted": True}

    page = browser_context.new_page()
    log_in(page, web_hub.url, "wu", PASSWORD, lands=r"/console$")
    page.click("#act-open")
    expect(page.locator("#win-state")).to_have_text("空闲")
    page.click("#act-call")
    expect(page.locator("#current-number")).to_have_text("A001")
    expect(page.locator("#prereview")).to_have_text("缺材料仍坚持取号")
    missing = page.locator('#return-materials li[data-key="SOC-001.1"]')
    expect(missing).to_have_attribute("data-status", "missing")
    expect(missing.locator("input")).to_be_checked()
    expect(page.locator('#return-materials li[data-key="SOC-001.0"]')).to_have_attribute(
        "data-status", "ticked")
    expect(page.locator("#related li").first).to_contain_text("SOC-002")
    expect(page.locator("#act-return")).to_be_disabled()  # called, not yet served
    page.click("#act-start")
    expect(page.locator("#act-return")).to_be_enabled()

    # dismissed: nothing changes
    page.once("dialog", lambda d: d.dismiss())
    page.click("#act-return")
    expect(page.locator("#current-number")).to_have_text("A001")
    assert journal(db, "return_materials") == []

    page.once("dialog", lambda d: d.accept())
    page.click("#act-return")
    expect(page.locator("#return-slip")).to_be_visible()
    expect(page.locator("#return-number")).to_have_text("A001")
    expect(page.locator("#return-link")).to_have_attribute(
        "href", re.compile(r"/tips\?items=SOC-001&miss=SOC-001\.1$"))
    expect(page.locator("#review-box")).to_be_hidden()  # nobody at the window now
    expect(page.locator("#win-state")).to_have_text("空闲")
    assert journal(db, "return_materials") == [
        {"op": "return_materials", "window": 1, "missing": ["SOC-001.1"], "by": "wu"}]
    shot(page, "console-return-for-materials")
    slip = browser_context.new_page()
    slip.goto(web_hub.url + page.locator("#return-link").get_attribute("href") + "&lang=zh_CN")
    expect(slip.locator("body")).to_contain_text("户口簿")


def test_walking_away_from_the_tips_is_journaled_as_leaving(web_hub, browser_context):
    """The kiosk goes back to its start page after two minutes untouched; on the tips for a
    missing material that means the resident left without a ticket: journaled once."""
    db = web_hub.workdir / "hub.db"
    page = browser_context.new_page()
    page.clock.install()
    page.goto(f"{web_hub.url}/kiosk/item/SOC-001?device=kiosk-1&lang=zh_CN")
    page.check(f'#checklist input[value="{ID_CARD}"]')
    page.click("#check")
    expect(page.locator("#tips")).to_be_visible()
    page.click("#print-tips")
    expect(page.locator("#printed")).to_be_visible()
    assert journal(db, "prereview") == []
    page.clock.fast_forward("02:01")
    page.wait_for_url(re.compile(r"/kiosk$"))
    [left] = journal(db, "prereview")
    assert left["missing"] == ["SOC-001.1"] and left["tips"] is True
    assert journal(db, "take") == []
