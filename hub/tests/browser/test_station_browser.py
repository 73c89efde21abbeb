"""A community station in real Chromium against a real hub process (issue 17, 协管员代收):
cut off from the hub, the station page keeps three cases (photos and sealed ID numbers) in
its IndexedDB queue; when the link returns they arrive once each, even the one whose
answer is lost on the way (sent again with its key: the hub answers the earlier result).
The ID numbers are nowhere in the journal or the hub's log."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from PIL import Image
from playwright.sync_api import expect

from onewindow.hub.store.accounts import Accounts

from .conftest import log_in, shot

PASSWORD = "station-pass-1"
ITEM = "SOC-003"  # promised; materials 0-2 required
IDS = ("11010519491231002", "31010119900101123", "44030119851120123")  # 17 digits


def with_check(first17: str) -> str:
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * k for d, k in zip(first17, w, strict=True))
                                   % 11]


RESIDENTS = tuple(with_check(x) for x in IDS)


@pytest.fixture
def station_hub(tmp_path: Path, request: pytest.FixtureRequest):
    """web_hub with [stations]: the card key file written before the hub starts."""
    (tmp_path / "centre.key").write_bytes(b"browser-test-card-key-0123456789\n")
    hub = request.getfixturevalue("web_hub")
    accounts = Accounts(f"sqlite:///{hub.workdir / 'hub.db'}",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        accounts.add("assist1", PASSWORD, "station", "王协管员", station="S01")
        accounts.add("bo1", PASSWORD, "backoffice", "李科员")
    finally:
        accounts.close()
    return hub


def png(colour: tuple[int, int, int]) -> bytes:
    """A camera's photo as the browser gets it (any image type: the page makes a JPEG)."""
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(buf, "PNG")
    return buf.getvalue()


def station_records(hub) -> list[dict]:
    with sqlite3.connect(hub.workdir / "hub.db") as db:
        rows = db.execute("SELECT body FROM journal WHERE op = 'station_case' "
                          "ORDER BY pos").fetchall()
    return [json.loads(r[0]) for r in rows]


def fill_case(page, resident: str, colour: tuple[int, int, int]) -> None:
    page.fill("#q", ITEM)
    page.click(f'#results button[data-item="{ITEM}"]')
    for k in (0, 1, 2):
        page.check(f'#materials input[data-k="{k}"]')
    page.fill("#id-number", resident)
    page.set_input_files("#photo", files=[{"name": "photo.png", "mimeType": "image/png",
                                           "buffer": png(colour)}])
    expect(page.locator("#thumbs img")).to_have_count(1)
    expect(page.locator("#submit")).to_be_enabled()
    page.click("#submit")
    expect(page.locator("#id-number")).to_have_value("")


def login(page, url: str, username: str, lands: str) -> None:
    log_in(page, url, username, PASSWORD, next_=None, lands=lands)


@pytest.mark.hub_extra('[stations]\ncard_key_file = "centre.key"\n'
                       '[stations.names]\nS01 = "幸福里社区工作站"\n')
def test_three_cases_kept_while_cut_off_arrive_once_each(station_hub, browser_context,
                                                        chromium):
    hub = station_hub
    ctx = browser_context
    page = ctx.new_page()
    login(page, hub.url, "assist1", r"/station$")
    expect(page.locator("#station")).to_have_attribute("data-seal", re.compile(r".{40,}"))
    # the catalog is kept for looking items up offline
    page.wait_for_function("JSON.parse(localStorage.getItem('ow-station-catalog') || '[]')"
                           ".length > 100")

    ctx.set_offline(True)  # the station's link to the hub is down
    for n, resident in enumerate(RESIDENTS):
        fill_case(page, resident, (60 * n, 100, 200))
        expect(page.locator("#queue-count")).to_have_text(str(n + 1))
    expect(page.locator("#link")).to_have_attribute("data-state", "offline")
    expect(page.locator("#queue li")).to_have_count(3)
    shot(page, "station-offline-queue")
    assert station_records(hub) == []  # nothing reached the hub
    # the queue is in IndexedDB: each entry with its photo and the ID number's seal only
    stored = page.evaluate("""async () => {
        const db = await new Promise((ok) => { const r = indexedDB.open('ow-station-S01');
                                               r.onsuccess = () => ok(r.result); });
        const all = await new Promise((ok) => { const q = db.transaction('queue')
            .objectStore('queue').getAll(); q.onsuccess = () => ok(q.result); });
        return all.map((e) => ({sealed: e.sealed, photos: e.photos.length, key: e.key}));
    }""")
    assert len(stored) == 3 and all(e["photos"] == 1 for e in stored)
    assert not any(r in json.dumps(stored) for r in RESIDENTS)  # only the seals are kept

    # The first submission reaches the hub but its answer is lost: the page must send it
    # again with the same key, and the hub must answer the earlier result.
    posts: list[str] = []

    def lose_first_answer(route):
        if route.request.method != "POST":
            route.continue_()
            return
        posts.append(route.request.url)
        if len(posts) == 1:
            route.fetch()  # the hub takes it ...
            route.abort("connectionreset")  # ... and the answer never arrives
        else:
            route.continue_()

    page.route("**/station/cases", lose_first_answer)
    ctx.set_offline(False)  # the link returns
    expect(page.locator("#queue-count")).to_have_text("0", timeout=30_000)
    expect(page.locator("#cases tbody tr")).to_have_count(3)
    expect(page.locator("#refused li")).to_have_count(0)
    expect(page.locator("#pending")).to_have_text("3")
    shot(page, "station-sent")

    case_ids = page.locator("#cases tbody tr").evaluate_all("rs => rs.map(r => r.dataset.case)")
    assert len(set(case_ids)) == 3
    records = station_records(hub)
    keys = [r["key"] for r in records]
    assert len(records) == 3 and len(set(keys)) == 3  # once each
    assert sorted(keys) == sorted(e["key"] for e in stored)
    assert len(posts) == 4  # the lost answer's submission was sent twice
    assert all(r["station"] == "S01" and r["item"] == ITEM and len(r["photos"]) == 1
               for r in records)
    with sqlite3.connect(hub.workdir / "hub.db") as db:
        journal = "\n".join(r[0] for r in db.execute("SELECT body FROM journal"))
    log = (hub.workdir / "hub.log").read_text(encoding="utf-8", errors="replace")
    for resident in RESIDENTS:
        assert resident not in journal and resident not in log

    # hand-over of the three paper originals: a wrong count is refused, the right one sent
    page.fill("#count", "2")
    page.click("#handover")
    expect(page.locator("#msg")).to_contain_text("3")
    page.fill("#count", "3")
    page.click("#handover")
    expect(page.locator("#pending")).to_have_text("0")
    expect(page.locator("#done")).to_contain_text("H0001")

    # The centre receives the batch: its own count must match too.
    centre = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        back = centre.new_page()
        login(back, hub.url, "bo1", r"/cases")
        back.goto(f"{hub.url}/stations/handovers")
        row = back.locator('tr[data-batch="H0001"]')
        expect(row).to_contain_text("幸福里社区工作站")
        row.locator(".count-in").fill("2")
        row.locator("button.receive").click()
        expect(back.locator("#msg")).to_contain_text("3")
        row.locator(".count-in").fill("3")
        row.locator("button.receive").click()
        expect(row.locator(".received")).to_have_text("bo1")
        shot(back, "station-handover-received")
        # the back office sees the station's cases among the promised items
        back.goto(f"{hub.url}/cases")
        for case in case_ids:
            expect(back.locator(f'#cases tr[data-case="{case}"]')).to_have_count(1)
    finally:
        centre.close()
    with sqlite3.connect(hub.workdir / "hub.db") as db:
        ops = [r[0] for r in db.execute("SELECT op FROM journal WHERE op LIKE 'station_%' "
                                        "ORDER BY pos")]
    assert ops == ["station_case"] * 3 + ["station_handover", "station_receive"]
    # A restart of the hub (snapshot + journal) keeps the station's cases and the hand-over.
    hub.restart()
    page.reload()
    expect(page.locator("#cases tbody tr")).to_have_count(3)
    expect(page.locator("#cases tbody")).to_contain_text("H0001")
    expect(page.locator("#pending")).to_have_text("0")
    expect(page.locator('#cases td.state[data-state="open"]')).to_have_text(["办理中"] * 3)
