"""A resident who booked with their card checks in by tapping it at the Pi kiosk (issue 16):
the real NodeLink/NodeApp, a private Mosquitto and the hub process with bookings on (the
centre's secret made before it starts, open all day in 5-minute slots, at a UTC offset where
it is noon when the hub starts: the hours cannot end during the test). The
booking is made on the kiosk's booking page with the card's token, as the web kiosk does;
the tap sends `checkin` with the same token and the appointment ticket is printed at the
kiosk. A card with no booking today takes a ticket as before.

A booking made on the resident's PHONE with their ID number typed in (optional on the phone
page) is checked in by the same tap: the hub hashes the typed number with the nodes' card
key ([stations] card_key_file, the very centre.key the node reads) and the same function
(node.card.resident_token), keeps only the token, and the card's token finds it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from onewindow.hub.fleet import registry
from onewindow.hub.render.escpos_decode import decode
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    offset_for_local,
    quiet_port,
    write_config,
)

from .test_node_e2e import SECRET, Card, Hall, start_node, token

pytestmark = pytest.mark.timeout(90)
BOOKED_ID, WALK_IN_ID = "310101199001011234", "310101198502021111"
EXTRA = """
[hours]
weekdays = "00:00-23:59"
sat = "00:00-23:59"
sun = "00:00-23:59"

[booking]
slot_minutes = 5
"""


@pytest.fixture
def local_tz() -> dt.timezone:
    """The centre's UTC offset: noon now, so its 00:00-23:59 hours cannot end mid-test."""
    return dt.timezone(dt.timedelta(minutes=offset_for_local("12:00")))


@pytest.fixture
async def hall(tmp_path, local_tz) -> AsyncIterator[Hall]:
    devices = [{"id": "kiosk-1", "role": "kiosk"}]
    web_port = quiet_port()
    offset = int(local_tz.utcoffset(None).total_seconds() // 60)
    with registry.Fleet(f"sqlite:///{tmp_path / 'hub.db'}") as fleet:
        fleet.secret(create=True)  # bookings' codes are signed under it
    # The nodes' card key, which the hub reads too (a typed ID number gives the card's token).
    (tmp_path / "centre.key").write_text(SECRET)
    stations = f'\n[stations]\ncard_key_file = "{tmp_path / "centre.key"}"\n'
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=2, devices=devices,
                           extra=f"\n[web]\nport = {web_port}\n{EXTRA}{stations}",
                           utc_offset_minutes=offset)
        proc = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield Hall(broker, tmp_path, proc, web_port)
        finally:
            proc.stop()


def journal(hall: Hall) -> list[dict[str, Any]]:
    with sqlite3.connect(hall.tmp / "hub.db") as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


async def book_with_card(hall: Hall, card: str, tz: dt.timezone) -> dict[str, Any]:
    """The web kiosk's booking with a tapped card: the slot starting now (5-minute slots)."""
    now = dt.datetime.now(tz)
    slot = f"n1/social/{now:%Y%m%d}/{now.hour:02d}{now.minute // 5 * 5:02d}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.web_port}",
                                 timeout=10) as http:
        r = await http.get("/book?device=kiosk-1")
        assert r.status_code == 200
        http.headers["X-CSRF-Token"] = http.cookies["ow_csrf"]
        r = await http.post("/book", json={"item": "SOC-001", "slot": slot,
                                           "device": "kiosk-1", "card": card})
        assert r.status_code == 200, r.text
        return r.json()


async def book_on_the_phone(hall: Hall, tz: dt.timezone, **who: str) -> httpx.Response:
    """The phone page's booking (no kiosk): the slot starting now."""
    now = dt.datetime.now(tz)
    slot = f"n1/social/{now:%Y%m%d}/{now.hour:02d}{now.minute // 5 * 5:02d}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.web_port}",
                                 timeout=10) as http:
        r = await http.get("/book")
        assert r.status_code == 200 and 'id="id-number"' in r.text  # the field is offered
        http.headers["X-CSRF-Token"] = http.cookies["ow_csrf"]
        return await http.post("/book", json={"item": "SOC-001", "slot": slot, **who})


async def test_a_phone_booking_with_the_id_number_is_checked_in_by_tapping_the_card(
        hall, local_tz):
    printed: list[bytes] = []

    class Printer:
        write = printed.append

    phone = "13812345678"
    app, task = await start_node(hall, "kiosk-1", "kiosk", printer=Printer())  # hub up
    try:
        bad = await book_on_the_phone(hall, local_tz, phone=phone,
                                      id_number=BOOKED_ID[:-1] + "9")  # wrong check digit
        assert bad.status_code == 400 and bad.json()["code"] == "bad_id"
        assert "证件号码有误" in bad.json()["msg"]
        r = await book_on_the_phone(hall, local_tz, phone=phone, id_number=BOOKED_ID.lower())
        assert r.status_code == 200, r.text
        [book] = [x for x in journal(hall) if x["op"] == "book"]
        assert book["resident"] == token(BOOKED_ID)  # the card's token, as the node makes it
        assert await app.card(Card(ident=BOOKED_ID))
        assert app.log[-1]["what"] == "checkin"
        [checkin] = [x for x in journal(hall) if x["op"] == "checkin"]
        assert checkin["resident"] == token(BOOKED_ID)
        assert not [x for x in journal(hall) if x["op"] == "take"]
        for _ in range(100):  # the appointment slip reaches the kiosk's printer
            if any(b"\x1dV\x00" in p for p in printed):
                break
            await asyncio.sleep(0.05)
        assert "A001" in decode(b"".join(printed))["texts"]
    finally:
        task.cancel()
    # Neither the ID number nor the phone number is in the journal or the hub's log.
    everything = json.dumps(journal(hall)) + (hall.tmp / "hub.log").read_text(errors="replace")
    for secret in (BOOKED_ID, phone):
        assert secret not in everything


async def test_a_booked_card_checks_in_at_the_pi_kiosk_and_another_takes_a_ticket(hall, local_tz):
    printed: list[bytes] = []

    class Printer:
        write = printed.append

    app, task = await start_node(hall, "kiosk-1", "kiosk", printer=Printer())
    try:
        await book_with_card(hall, token(BOOKED_ID), local_tz)
        assert await app.card(Card(ident=BOOKED_ID))
        assert app.log[-1]["what"] == "checkin"
        [checkin] = [r for r in journal(hall) if r["op"] == "checkin"]
        assert checkin["resident"] == token(BOOKED_ID)
        assert not [r for r in journal(hall) if r["op"] == "take"]  # checked in, not taken
        # A card without a booking today: a ticket as before.
        assert await app.card(Card(ident=WALK_IN_ID))
        assert app.log[-1]["what"] == "take"
        [take] = [r for r in journal(hall) if r["op"] == "take"]
        assert take["resident"] == token(WALK_IN_ID)
        for _ in range(100):  # both slips reach the printer (the hub's `print` commands)
            if sum(p.count(b"\x1dV\x00") for p in printed) >= 2:
                break
            await asyncio.sleep(0.05)
        slips = [decode(p)["texts"] for p in printed]
        assert len(slips) == 2 and "A001" in slips[0] and "A002" in slips[1]
    finally:
        task.cancel()
