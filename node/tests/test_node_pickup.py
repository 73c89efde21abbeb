"""A ready case's result picked up by tapping the ID card (统一窗口出件, issue 17): the real
NodeLink/NodeApp at the kiosk and at the pick-up window (5), a private Mosquitto and the
hub process with `[pickup] item`. The resident's card takes the promised item's ticket at
the kiosk (nothing ready yet: a ticket as before); window 1 accepts it; the back office
approves it over HTTP; the same card at the kiosk now gets a pick-up ticket, printed
there, for the pick-up window; called there, a stranger's card tapped on the window's node
is refused and the resident's card signs the hand-over off. Only tokens travel: the ID
numbers are in neither the journal nor the hub's log."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from onewindow.hub.render.escpos_decode import decode
from onewindow.hub.store.accounts import Accounts
from onewindow.node.app import Inputs, NodeApp
from onewindow.node.config import from_dict
from onewindow.node.link import NodeLink
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.testbed import HubProcess, Mosquitto, quiet_port, write_config

from .test_node_e2e import SECRET, Card, Hall, token

pytestmark = pytest.mark.timeout(120)
RESIDENT, STRANGER = "310101195001011234", "310101198502021111"
PASSWORD = "s3cret-pass"
CST = dt.timezone(dt.timedelta(hours=8))  # write_config's default centre offset
EXTRA = """
[pickup]
item = "GEN-099"

[[windows]]
number = 5
kind = "pickup"
"""


@pytest.fixture
async def hall(tmp_path) -> AsyncIterator[Hall]:
    devices = [{"id": "kiosk-1", "role": "kiosk"}, {"id": "node-5", "role": "node", "window": 5},
               {"id": "kp-1", "role": "keypad", "window": 1},
               {"id": "kp-5", "role": "keypad", "window": 5}]
    web_port = quiet_port()
    accounts = Accounts(f"sqlite:///{tmp_path / 'hub.db'}",
                        PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add("li", PASSWORD, "supervisor", "李科长")
    accounts.close()
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = write_config(tmp_path / "centre.toml", "n1", broker.port, tmp_path / "hub.db",
                           windows=1, devices=devices,
                           extra=f"\n[web]\nport = {web_port}\n{EXTRA}")
        proc = HubProcess(cfg, tmp_path / "hub.log").start()
        try:
            yield Hall(broker, tmp_path, proc, web_port)
        finally:
            proc.stop()


async def start(hall: Hall, dev: str, role: str, window: int | None = None,
                **inputs: Any) -> tuple[NodeApp, asyncio.Task[None]]:
    node: dict[str, Any] = {"id": dev, "centre": "n1", "role": role, "secret": SECRET,
                            "state_dir": str(hall.tmp / dev), "clerk": "S1024"}
    if window is not None:
        node["window"] = window
    data: dict[str, Any] = {"node": node, "broker": {"host": "127.0.0.1",
                                                     "port": hall.broker.port}}
    if role == "kiosk":
        data["kiosk"] = {"item": "SOC-003"}  # a promised item (承诺件)
    cfg = from_dict(data)
    link = NodeLink(cfg)
    app = NodeApp(cfg, link, Inputs(token=token, **inputs))
    task = asyncio.create_task(app.run())
    for _ in range(600):
        if link.online():
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    assert link.online(), (hall.tmp / "hub.log").read_text()[-3000:]
    return app, task


def journal(hall: Hall) -> list[dict[str, Any]]:
    with sqlite3.connect(hall.tmp / "hub.db") as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


async def approve(hall: Hall, case: str) -> None:
    """The back office approves the case (its /cases action, as a logged-in supervisor)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.web_port}",
                                 timeout=10) as http:
        await http.get("/login")
        http.headers["X-CSRF-Token"] = http.cookies["ow_csrf"]
        r = await http.post("/login", data={"username": "li", "password": PASSWORD,
                                            "csrf": http.cookies["ow_csrf"]})
        assert r.status_code in (200, 303), r.text
        r = await http.post(f"/cases/{case}/approved", json={})
        assert r.status_code == 200, r.text


async def test_a_ready_case_is_picked_up_and_handed_over_by_tapping_the_card(hall):
    printed: list[bytes] = []

    class Printer:
        write = printed.append

    kiosk, kiosk_task = await start(hall, "kiosk-1", "kiosk", printer=Printer())
    window5, window5_task = await start(hall, "node-5", "node", window=5)
    kp1 = SimDevice("n1", "kp-1", "keypad", "127.0.0.1", hall.broker.port, window=1)
    kp5 = SimDevice("n1", "kp-5", "keypad", "127.0.0.1", hall.broker.port, window=5)
    try:
        async with kp1, kp5:
            # nothing ready: the tap takes the kiosk's (promised) item as before
            assert await kiosk.card(Card(ident=RESIDENT))
            assert kiosk.log[-1]["what"] == "take"
            assert not [r for r in journal(hall) if r["op"] == "pickup"]  # none was ready
            number = kiosk.log[-1]["reply"]["ticket"]
            case = f"{dt.datetime.now(CST):%Y%m%d}-{number}"  # the centre's day (UTC+8)
            for typ in ("open", "call", "start", "complete"):
                await kp1.send(typ, timeout=30, retry=0.5)
            [opened] = [r for r in journal(hall) if r["op"] == "take"]
            await approve(hall, case)
            # ready: the same card gets the pick-up ticket, printed at the kiosk
            assert await kiosk.card(Card(ident=RESIDENT))
            assert kiosk.log[-1]["what"] == "pickup"
            pick = kiosk.log[-1]["reply"]["ticket"]
            [asked] = [r for r in journal(hall) if r["op"] == "pickup"]
            assert asked["cases"] == [case] and asked["by"] == "card"
            assert asked["resident"] == token(RESIDENT) == opened["resident"]
            for _ in range(100):
                if any(pick in t for t in decode(b"".join(printed))["texts"]):
                    break
                await asyncio.sleep(0.05)
            assert any(pick in t for t in decode(b"".join(printed))["texts"])
            # called at the pick-up window: a stranger's card is refused, the resident's
            # signs the hand-over off
            await kp5.send("open", timeout=30, retry=0.5)
            called = await kp5.send("call", timeout=30, retry=0.5)
            assert called["ticket"] == pick
            assert not await window5.card(Card(ident=STRANGER))
            assert window5.log[-1]["reply"]["code"] == "not_your_case"
            assert await window5.card(Card(ident=RESIDENT))
            assert window5.log[-1]["reply"]["state"] == "closed"
    finally:
        kiosk_task.cancel()
        window5_task.cancel()
    [handed] = [r for r in journal(hall) if r.get("action") == "handed_over"]
    assert handed == {**handed, "case": case, "by": "card"}
    everything = json.dumps(journal(hall)) + (hall.tmp / "hub.log").read_text(errors="replace")
    for ident in (RESIDENT, STRANGER):
        assert ident not in everything

