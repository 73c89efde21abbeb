"""The city pages (issue 20) in real Chromium: `onewindow city-web` (a process) on a real
PostgreSQL with the city schema; a city account logs in through the form, sees every
centre's floor, and the table follows a centre's new live state without a reload; a
district account sees its district only; the monthly report in Traditional Chinese."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import pytest

from onewindow.hub.city import citydb
from onewindow.hub.city.dashboard import set_user
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import Postgres, terminate

from .conftest import _wait_http, shot

TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
CENTRES = [("c01", "陆家嘴中心", "浦东"), ("c02", "花木中心", "浦东"),
           ("c03", "静安寺中心", "静安")]


def _live(conn, centre: str, pos: int, waiting: int) -> None:
    doc = {"v": 1, "centre": centre, "pos": pos, "at": time.time(), "waiting": waiting,
           "longest_min": 12.5, "windows_open": 4, "lines": {}, "windows": [],
           "devices": {"online": 11, "total": 12}, "alerts": [{"device": "led-3"}]}
    citydb.write_live(conn, [doc], time.time(), 60.0, {}, set())


@pytest.fixture
def city_web(tmp_path):
    with Postgres() as pg:
        with citydb.connect(pg.url) as conn:
            citydb.create(conn)
            for c, name, district in CENTRES:
                conn.execute("INSERT INTO city_centres VALUES (%s, %s, %s)",
                             (c, name, district))
                _live(conn, c, 10, 3)
            set_user(conn, "city", "pw-city", "city", None)
            set_user(conn, "pd", "pw-pd", "district", "浦东")
        port = quiet_port()
        env = dict(os.environ, OW_CITY_WEB_SECRET="s3cret")
        with open(tmp_path / "web.log", "wb") as log:
            web = subprocess.Popen([sys.executable, "-m", "onewindow.hub.cli", "city-web",
                                    "--db", pg.url, "--port", str(port)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_http(f"http://127.0.0.1:{port}", 60)
            yield f"http://127.0.0.1:{port}", pg
        finally:
            terminate(web)


def _login(page, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/city/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button")
    page.wait_for_url(f"{url}/city")


def test_city_dashboard_follows_the_centres_and_the_roles(city_web, browser_context):
    url, pg = city_web
    page = browser_context.new_page()
    _login(page, url, "city", "pw-city")
    rows = page.locator("#live tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3
    c01 = page.locator("#live tbody tr[data-centre=c01] td")
    assert c01.nth(0).inner_text() == "陆家嘴中心" and c01.nth(2).inner_text() == "3"
    assert c01.nth(5).inner_text() == "11/12" and c01.nth(6).inner_text() == "1"
    # A centre's newer floor state: the open page shows it without a reload.
    with citydb.connect(pg.url) as conn:
        _live(conn, "c01", 11, 17)
    page.wait_for_function(
        "document.querySelector('#live tbody tr[data-centre=c01] td:nth-child(3)')"
        ".textContent === '17'", timeout=10000)
    shot(page, "city-dashboard")
    # A district account: its district's centres only.
    page.goto(f"{url}/city/logout")
    _login(page, url, "pd", "pw-pd")
    rows.first.wait_for()
    page.wait_for_function("document.querySelectorAll('#live tbody tr').length > 0")
    assert sorted(r.get_attribute("data-centre") for r in rows.all()) == ["c01", "c02"]
    # The monthly report, in Traditional Chinese.
    with citydb.connect(pg.url) as conn:
        citydb.write(conn, [{"v": 1, "centre": "c01", "day": TODAY.isoformat(), "pos": 99,
                             "part": 0, "kind": "day", "at": 0.0, "tickets": 100,
                             "served": 90, "no_shows": 10, "waits": 90,
                             "wait_sum_min": 900.0, "wait_p90_min": 20.0, "one_window": 80,
                             "one_trip": 81, "returned": 5, "ratings": 50,
                             "rating_sum": 200, "satisfied": 45, "cases": 3}], set(), set())
    page.goto(f"{url}/city/report?month={TODAY:%Y-%m}&lang=zh-TW")
    text = page.locator("body").inner_text()
    assert "全市月報" in text and "陆家嘴中心" in text and "90.0%" in text
    assert "静安寺中心" not in text
    assert json.loads(page.evaluate("JSON.stringify(document.documentElement.lang)")) \
        == "zh-TW"
