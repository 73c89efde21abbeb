"""The node end to end: the real NodeApp and NodeLink, a private Mosquitto and the hub
process. GPIO is gpiozero's MockFactory (no Pi here)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from onewindow.hub.render.escpos_decode import decode
from onewindow.node.app import Inputs, NodeApp
from onewindow.node.config import from_dict
from onewindow.node.keys import KeyBridge, Keys
from onewindow.node.link import NodeLink
from onewindow.tools.testbed import HubProcess, Mosquitto, write_config

pytestmark = pytest.mark.timeout(60)

SECRET = "centre-secret-for-tests-0123456789"


@dataclass
class Card:  # what a card reader reports: only `ident` matters to the app
    ident: str | None
    uid: bytes | None = None
    kind: str = "inserted"
    error: str | None = None


def token(ident: str) -> str:
    import hashlib
    import hmac

    return hmac.new(SECRET.encode(), ident.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture
async def hub(tmp_path):
    devices = [{"id": "box-1", "role": "box"}, {"id": "node-1", "role": "node", "window": 1},
               {"id": "kiosk-1", "role": "kiosk"}, {"id": "kp-2", "role": "keypad", "window": 2}]
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=2, devices=devices)
        proc = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield broker, tmp_path
        finally:
            proc.stop()


async def start_node(broker, tmp: Path, dev: str, role: str = "node", **inputs):
    node = {"id": dev, "centre": "n1", "role": role, "secret": SECRET,
            "state_dir": str(tmp / dev), "clerk": "S1024"}
    if role == "node":
        node["window"] = 1
    data = {"node": node, "broker": {"host": "127.0.0.1", "port": broker.port}}
    if role == "kiosk":
        data["kiosk"] = {"item": "SOC-001"}
    cfg = from_dict(data)
    link = NodeLink(cfg)
    app = NodeApp(cfg, link, Inputs(token=token, **inputs))
    task = asyncio.create_task(app.run())
    for _ in range(200):
        if link.online():
            break
        await asyncio.sleep(0.05)
    assert link.online(), "node did not come up"
    return app, task


def journal(tmp: Path) -> list[dict]:
    db = sqlite3.connect(tmp / "hub.db")
    return [json.loads(b) for (b,) in db.execute("select body from journal order by pos")]


async def test_kiosk_card_tap_issues_a_ticket_for_the_resident_and_prints_it(hub):
    broker, tmp = hub
    printed = tmp / "lp0"

    class FilePrinter:  # the kiosk's printer device file (/dev/usb/lp0 on a Pi)
        def write(self, data: bytes) -> None:
            with printed.open("ab") as f:
                f.write(data)

    app, task = await start_node(broker, tmp, "kiosk-1", "kiosk", printer=FilePrinter())
    try:
        assert await app.card(Card(ident="310101199001011234"))
        for _ in range(100):
            if printed.exists() and printed.read_bytes().endswith(b"\x1dV\x00"):
                break
            await asyncio.sleep(0.05)
        ticket = decode(printed.read_bytes())
        assert "A001" in ticket["texts"]
        [take] = [r for r in journal(tmp) if r["op"] == "take"]
        assert take["resident"] == token("310101199001011234")
        assert "310101199001011234" not in json.dumps(journal(tmp))
        # The same resident again: one active ticket per item, so their own is reprinted.
        assert await app.card(Card(ident="310101199001011234"))
        assert app.log[-2]["reply"]["code"] == "already_has_ticket"
        for _ in range(100):
            if printed.read_bytes().count(b"\x1dV\x00") == 2:
                break
            await asyncio.sleep(0.05)
        assert [r["op"] for r in journal(tmp)].count("take") == 1
        assert printed.read_bytes().count(b"A001") >= 2
        # A card with no readable number: a clear alert, no event.
        assert not await app.card(Card(ident=None, error="unknown card"))
        assert "card_unreadable" in app.link.alerts
    finally:
        task.cancel()


async def test_window_node_keys_scan_rate_and_card(hub):
    broker, tmp = hub
    paper: list[bytes] = []

    class ListPrinter:
        write = paper.append

    kiosk, ktask = await start_node(broker, tmp, "kiosk-1", "kiosk", printer=ListPrinter())
    factory = MockFactory()
    bridge = KeyBridge(asyncio.get_running_loop())
    keys = Keys({"call": 5, "rate_good": 16}, bridge, pin_factory=factory)
    app, task = await start_node(broker, tmp, "node-1", bridge=bridge)
    try:
        await kiosk.card(Card(ident="310101199001011234"))
        factory.pin(5).drive_low()  # the clerk presses call
        factory.pin(5).drive_high()
        for _ in range(100):
            if app.ticket == "A001":
                break
            await asyncio.sleep(0.05)
        assert app.ticket == "A001" and app.state == "calling"
        # A ticket not called here is refused; the resident's own QR starts service.
        assert not await app.scan("http://hub/t/20991231-Z999")
        assert not await app.scan("6901234567892")  # a product barcode: not ours
        printed_qr = decode(paper[0])["qr"]
        assert await app.scan(printed_qr)  # the URL in the ticket's QR code
        for _ in range(50):
            if app.state == "serving":
                break
            await asyncio.sleep(0.05)
        assert app.state == "serving"
        # The resident's card at the window pulls up their ticket.
        assert await app.card(Card(ident="310101199001011234"))
        assert [t["ticket"] for t in app.resident_view["tickets"]] == ["A001"]
        factory.pin(16).drive_low()  # 满意
        factory.pin(16).drive_high()
        for _ in range(100):
            if any(r["op"] == "rate" for r in journal(tmp)):
                break
            await asyncio.sleep(0.05)
        [rate] = [r for r in journal(tmp) if r["op"] == "rate"]
        assert rate["score"] == 1 and rate["clerk"] == "S1024" and rate["ticket"].endswith("A001")
    finally:
        task.cancel()
        ktask.cancel()
        keys.close()
        factory.reset()
