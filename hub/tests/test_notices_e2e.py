"""A remote ticket's notices end to end, across a hub killed between them: the real
`onewindow hub` process, a real Mosquitto (tools/testkit/testbed.py), a button box and a
keypad speaking the device protocol over it (tools/simdevice.py), the phone page's live
feed read as a browser's EventSource reads it, and SMS through SMPP 3.4 to
tools/testkit/smppd.py: a protocol-level SMSC stand-in (no SMSC server can be installed
here; it decodes the PDUs with its own code and joins the parts as a phone would).

The resident takes a number by phone with two people ahead ([notices] near_ahead = 1). One
call later "near" is due: it reaches the gateway and the page once, and both outcomes are
journaled; then the hub is killed with SIGKILL. The restarted hub replays its journal and
sends nothing again; two calls later the ticket is called, and "called" reaches both
channels once. Nothing carries the clear number but the SMPP destination itself."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onewindow.hub.fleet.registry import Fleet
from onewindow.hub.web.livepatch import follow
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.smppd import SmppStandIn
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    offset_for_local,
    open_page,
    quiet_port,
    write_config,
)

CENTRE = "nt"
NUMBER = "13812345678"
DEST = "86" + NUMBER
ALL_DAY = '"00:00-23:59"'  # at a UTC offset where it is noon at start: cannot end meanwhile


def journal(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [json.loads(b) for (b,) in conn.execute("select body from journal order by pos")]


def outcomes(db: Path) -> list[tuple[str, str, str]]:
    return [(r["notice"].split(":")[2], r["channel"], r["outcome"]) for r in journal(db)
            if r["op"] == "notice_outcome"]


class Page:
    """The phone page's live feed (/live/ticket/{id}) as EventSource reads it: every
    snapshot, and the notice ids each one lists."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()

    async def follow(self, base: str, ticket: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=None) as client, \
                client.stream("GET", f"/live/ticket/{ticket}") as r:
            assert r.status_code == 200
            data: list[str] = []
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    # a delta applies to the state before (hub/web/livepatch.py)
                    last = copy.deepcopy(self.snapshots[-1]) if self.snapshots else None
                    async with self.changed:
                        self.snapshots.append(follow(last, event, json.loads("\n".join(data))))
                        self.changed.notify_all()
                    data = []

    def seen(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for s in self.snapshots for n in s.get("notices", [])}

    async def until(self, kinds: set[str], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            while {n["kind"] for n in self.seen().values()} != kinds:
                await self.changed.wait()


async def until(check, timeout: float = 20.0, hub: HubProcess | None = None) -> None:
    """Poll `check` (the journal, a file: nothing to await on) until true."""
    async with asyncio.timeout(timeout):
        while not check():
            if hub is not None and hub.proc is not None and hub.proc.poll() is not None:
                pytest.fail(f"the hub exited ({hub.proc.returncode})")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def web(url: str, hub: HubProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the remote-take page's cookies, once the hub's web answers."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await open_page(http, "/remote", hub)
        yield http


async def test_near_and_called_reach_sms_and_the_page_once_each_across_a_sigkill(tmp_path):
    web_port = quiet_port()
    db = tmp_path / "hub.db"
    Fleet(f"sqlite:///{db}").secret(create=True)  # the centre secret that seals numbers
    async with SmppStandIn() as gateway:
        extra = (f"\n[web]\nport = {web_port}\n"
                 f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
                 "\n[remote]\nenabled = true\nstop_minutes_before_close = 0\n"
                 "\n[notices]\nnear_ahead = 1\nnear_minutes = 0\nsignature = \"某中心\"\n"
                 f"\n[notices.smpp]\nhost = \"127.0.0.1\"\nport = {gateway.port}\n"
                 "system_id = \"onewindow\"\npassword = \"secret\"\nsource = \"10690001\"\n")
        devices = [{"id": "box-1", "role": "box"}, {"id": "kp-1", "role": "keypad", "window": 1}]
        with Mosquitto(tmp_path / "broker") as broker:
            cfg = write_config(tmp_path / "centre.toml", CENTRE, broker.port, db, windows=1,
                               devices=devices, extra=extra,
                               utc_offset_minutes=offset_for_local("12:00"))
            url = f"http://127.0.0.1:{web_port}"
            hub = HubProcess(cfg, tmp_path / "hub.log").start()
            box = SimDevice(CENTRE, "box-1", "box", "127.0.0.1", broker.port)
            kp = SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", broker.port, window=1)
            try:
                async with web(url, hub) as http, box, kp:
                    await kp.send("open", timeout=30, retry=0.5)
                    for _ in range(2):
                        await box.take("SOC-001", "A", timeout=30)
                    r = await http.post("/remote/take", json={"item": "SOC-001",
                                                              "phone": NUMBER})
                    assert r.status_code == 200, r.text
                    ticket = r.json()["id"]
                    assert r.json()["ahead"] == 2 and r.json()["phone"] == "138****5678"
                    page = Page()
                    follow = asyncio.create_task(page.follow(url, ticket))
                    await kp.send("call", timeout=30, retry=0.5)  # one ahead: near
                    await page.until({"near"})
                    await until(lambda: sorted(outcomes(db)) == [
                        ("near", "page", "sent"), ("near", "sms", "sent")], hub=hub)
                    await gateway.wait_for(lambda: len(gateway.messages) == 1)
                    follow.cancel()
                hub.kill()  # SIGKILL after "near" went out and was journaled

                hub.start()
                async with web(url, hub) as http, box, kp:
                    page2 = Page()
                    follow = asyncio.create_task(page2.follow(url, ticket))
                    await page2.until({"near"})  # the page still lists it, once
                    await kp.send("call", timeout=30, retry=0.5)  # nobody ahead now
                    await kp.send("call", timeout=30, retry=0.5)  # the remote ticket
                    await page2.until({"near", "called"})
                    await until(lambda: len(outcomes(db)) == 4, hub=hub)
                    await gateway.wait_for(lambda: len(gateway.messages) >= 2)
                    follow.cancel()
            finally:
                assert hub.stop() is not None
    log = (tmp_path / "hub.log").read_text()
    assert sorted(outcomes(db)) == sorted([
        ("near", "page", "sent"), ("near", "sms", "sent"),
        ("called", "page", "sent"), ("called", "sms", "sent")]), log
    notices = [r for r in journal(db) if r["op"] == "notice"]
    assert [(n["kind"], n["ticket"]) for n in notices] == [("near", ticket), ("called", ticket)]
    texts = [(m.dest, m.text) for m in gateway.messages]
    number = ticket.split("-")[1]
    assert texts == [
        (DEST, f"【某中心】您的{number}号快到了：前面还有1人，预计约{notices[0]['minutes']}"
               "分钟，请回到大厅留意叫号。"),
        (DEST, f"【某中心】请{number}号到1号窗口办理业务。")], texts
    assert [s.dest for s in gateway.submits] == [DEST, DEST]  # no part sent twice
    kinds = sorted(n["kind"] for n in page2.seen().values())
    assert kinds == ["called", "near"] and len(page.seen()) == 1
    stored = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("hub.db-*"))
    assert NUMBER.encode() not in stored and NUMBER not in log
