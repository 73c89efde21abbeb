"""Booking reminders end to end (issue 16), across hub crashes: the real `onewindow hub`
process, a real Mosquitto, the phone page's booking endpoint over HTTP, and SMS through
SMPP 3.4 to tools/testkit/smppd.py (a protocol-level SMSC stand-in: no SMSC server can be
installed here; it decodes the PDUs with its own code).

A resident books the 12:00 slot with a mobile number ([notices] reminder_minutes = 1, in
Traditional Chinese); another books the same slot with another number and cancels. The hub
is killed (SIGKILL) before the reminder's moment and started again: the restarted hub, in a
quiet hall (no step to ask after), sends the reminder by its timer, through SMS and the
page, once, and journals both outcomes (the booking's page lists it); nothing for the
cancelled booking. Killed and started once more, it sends nothing again. Neither number is
journaled or logged in clear.

No clock is faked: the centre's UTC offset is chosen so that it is 11:58 (or 11:57) local
when the test starts, the reminder's moment (11:59:00) 20 to 80 s away."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from onewindow.hub.core import booking as bk
from onewindow.hub.fleet.registry import Fleet
from onewindow.tools.testkit.smppd import SmppStandIn
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    offset_for_local,
    quiet_port,
    write_config,
)

from .test_notices_e2e import until, web

pytestmark = pytest.mark.timeout(240)
CENTRE = "rm"
NUMBER, OTHER = "13812345678", "13998765432"
ALL_DAY = '"00:00-23:59"'


def journal(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


def outcomes(db: Path) -> list[tuple[str, str, str]]:
    return [(r["notice"], r["channel"], r["outcome"]) for r in journal(db)
            if r["op"] == "notice_outcome"]


async def test_a_booking_reminder_goes_once_by_sms_and_page_across_hub_crashes(tmp_path):
    web_port = quiet_port()
    db = tmp_path / "hub.db"
    secret = Fleet(f"sqlite:///{db}").secret(create=True)  # seals numbers, signs codes
    assert secret is not None
    # 11:58:ss local (11:57:ss late in the minute): the 12:00 slot's reminder, one minute
    # before it, is due at the next (or the one after) minute boundary.
    local = "11:58" if time.gmtime().tm_sec <= 40 else "11:57"
    offset = offset_for_local(local)
    tz = dt.timezone(dt.timedelta(minutes=offset))
    day = dt.datetime.now(tz).date()
    slot = f"{CENTRE}/social/{day:%Y%m%d}/1200"
    async with SmppStandIn() as gateway:
        extra = (f"\n[web]\nport = {web_port}\n"
                 f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
                 "\n[booking]\nslot_minutes = 5\n"
                 "\n[notices]\nreminder_minutes = 1\nsignature = \"某中心\"\n"
                 f"\n[notices.smpp]\nhost = \"127.0.0.1\"\nport = {gateway.port}\n"
                 "system_id = \"onewindow\"\npassword = \"secret\"\nsource = \"10690001\"\n")
        devices = [{"id": "box-1", "role": "box"}, {"id": "kp-1", "role": "keypad", "window": 1}]
        with Mosquitto(tmp_path / "broker") as broker:
            cfg = write_config(tmp_path / "centre.toml", CENTRE, broker.port, db, windows=2,
                               devices=devices, extra=extra, utc_offset_minutes=offset)
            url = f"http://127.0.0.1:{web_port}"
            hub = HubProcess(cfg, tmp_path / "hub.log").start()
            try:
                async with web(url, hub) as http:
                    r = await http.post("/book?lang=zh_TW", json={
                        "item": "SOC-001", "slot": slot, "phone": NUMBER})
                    assert r.status_code == 200, r.text
                    code = r.json()["code"]
                    r = await http.post("/book", json={"item": "SOC-003", "slot": slot,
                                                       "phone": OTHER})
                    assert r.status_code == 200, r.text
                    r = await http.post("/book/cancel", json={"code": r.json()["code"]})
                    assert r.status_code == 200, r.text
                moment = dt.datetime.combine(day, dt.time(11, 59), tz).timestamp()
                assert time.time() < moment, "booked after the reminder's moment"
                hub.kill()  # before the moment: the bookings are in the journal only

                hub.start()
                async with web(url, hub):
                    await gateway.wait_for(lambda: len(gateway.messages) == 1, timeout=120)
                    await until(lambda: len(outcomes(db)) == 2, hub=hub)
                hub.kill()  # after the reminder went out and was journaled

                hub.start()
                async with web(url, hub) as http:
                    # a step after the restart (the notices are asked after it too)
                    r = await http.post("/book", json={"item": "SOC-003",
                                                       "slot": f"{slot[:-4]}1205",
                                                       "phone": OTHER})
                    assert r.status_code == 200, r.text
                    await until(lambda: sum(1 for x in journal(db) if x["op"] == "book") == 3,
                                hub=hub)
                    # the booking's page (the notice channel "page") lists the reminder once
                    r = await http.get("/book/notices.json", params={"code": code})
                    assert r.status_code == 200, r.text
                    page = r.json()
                    forged = await http.get("/book/notices.json",
                                            params={"code": code[:-2] + "AA"})
                    assert forged.status_code == 400 and forged.json()["code"] == "bad_code"
            finally:
                assert hub.stop() is not None
    log = (tmp_path / "hub.log").read_text()
    nid = "n1:B0001:booking_reminder:0"
    assert sorted(outcomes(db)) == [(nid, "page", "sent"), (nid, "sms", "sent")], log
    due = [x for x in journal(db) if x["op"] == "booking_notice"]
    assert [(x["booking"], x["occurrence"]) for x in due] == [("B0001", 0)]
    assert code == bk.short_code(bk.derive_key(secret, CENTRE), CENTRE, "B0001")
    assert page["booking"] == "B0001" and page["state"] == "booked"
    [shown] = page["notices"]
    assert shown["kind"] == "booking_reminder" and code in shown["zh_TW"]
    assert NUMBER not in json.dumps(page)
    [(dest, text)] = [(m.dest, m.text) for m in gateway.messages]
    assert dest == "86" + NUMBER
    assert text == (f"【某中心】預約提醒：{day:%Y-%m-%d} 12:00，預約碼{code}。"
                    "請提前10分鐘到中心簽到。")
    assert [s.dest for s in gateway.submits] == [dest]  # no part sent twice
    stored = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("hub.db-*"))
    for number in (NUMBER, OTHER):
        assert number.encode() not in stored and number not in log
