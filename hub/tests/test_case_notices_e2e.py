"""A promised case's notices end to end, across hubs killed between them: the real
`onewindow hub` process, a real Mosquitto, a keypad speaking the device protocol over it,
the back office acting over HTTP (/cases, a logged-in supervisor), the phone page's live
feed as a browser's EventSource reads it, and SMS through SMPP 3.4 to the stand-in SMSC
(tools/testkit/smppd.py).

A resident takes a number for a promised item by phone (a remote take: the sealed number
reaches the case); the window accepts it. The back office returns it for one material:
"returned for material" reaches the gateway and the page once, both outcomes journaled,
and the hub is killed with SIGKILL. The restarted hub sends nothing again; the case is
resubmitted and approved: "ready for pick-up" (at the pick-up window, 5) goes once; the
hub is killed again and the next one sends nothing either. Nothing stores or logs the
clear number."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from argon2 import PasswordHasher

from onewindow.hub.catalog import load_catalog
from onewindow.hub.fleet.registry import Fleet
from onewindow.hub.store.accounts import Accounts
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.smppd import SmppStandIn
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    log_in,
    quiet_port,
    write_config,
)

from .test_notices_e2e import ALL_DAY, Page, journal, outcomes, until, web

pytestmark = pytest.mark.timeout(180)
CENTRE = "cn"
NUMBER = "13912345678"
DEST = "86" + NUMBER
ITEM = "SOC-003"  # 城乡居民养老金申领: promised, with materials
PASSWORD = "s3cret-pass"


@contextlib.asynccontextmanager
async def back_office(url: str, hub: HubProcess):
    """A supervisor's session on the running hub (the /cases page's actions)."""
    async with web(url, hub) as http:
        await log_in(http, "li", PASSWORD)
        yield http


def case_outcomes(db) -> list[tuple[str, str, str]]:
    return [o for o in outcomes(db) if o[0] in ("case_returned", "ready_for_pickup")]


def case_sms(gateway: SmppStandIn) -> list:
    """The case notices the gateway received ("near" and "called" of the remote ticket left out)."""
    return [m for m in gateway.messages if "办理的" in m.text or "已可领取" in m.text]


async def case_action(http: httpx.AsyncClient, case: str, action: str, **body) -> None:
    r = await http.post(f"/cases/{case}/{action}", json=body)
    assert r.status_code == 200, r.text


async def test_returned_and_ready_notices_go_once_each_across_two_sigkills(tmp_path):
    web_port = quiet_port()
    db = tmp_path / "hub.db"
    Fleet(f"sqlite:///{db}").secret(create=True)  # the centre secret that seals numbers
    accounts = Accounts(f"sqlite:///{db}", PasswordHasher(time_cost=1, memory_cost=8,
                                                           parallelism=1))
    accounts.add("li", PASSWORD, "supervisor", "李科长")
    accounts.close()
    material = load_catalog().items[ITEM].materials[1].name.zh
    async with SmppStandIn() as gateway:
        extra = (f"\n[web]\nport = {web_port}\n"
                 f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
                 "\n[remote]\nenabled = true\nstop_minutes_before_close = 0\n"
                 "\n[pickup]\nitem = \"GEN-099\"\n"
                 "\n[notices]\nsignature = \"某中心\"\n"
                 f"\n[notices.smpp]\nhost = \"127.0.0.1\"\nport = {gateway.port}\n"
                 "system_id = \"onewindow\"\npassword = \"secret\"\nsource = \"10690001\"\n"
                 "\n[[windows]]\nnumber = 5\nkind = \"pickup\"\n")
        devices = [{"id": "kp-1", "role": "keypad", "window": 1}]
        with Mosquitto(tmp_path / "broker") as broker:
            cfg = write_config(tmp_path / "centre.toml", CENTRE, broker.port, db, windows=1,
                               devices=devices, extra=extra)
            url = f"http://127.0.0.1:{web_port}"
            hub = HubProcess(cfg, tmp_path / "hub.log").start()
            kp = SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", broker.port, window=1)
            try:
                async with back_office(url, hub) as http, kp:
                    r = await http.post("/remote/take", json={"item": ITEM, "phone": NUMBER})
                    assert r.status_code == 200, r.text
                    case = r.json()["id"]
                    for typ in ("open", "call", "start", "complete"):
                        await kp.send(typ, timeout=30, retry=0.5)
                    page = Page()
                    follow = asyncio.create_task(page.follow(url, case))
                    await case_action(http, case, "returned", reason="复印件不清晰",
                                      materials=[1])
                    await page.until({"near", "called", "case_returned"})
                    await until(lambda: sorted(case_outcomes(db)) == [
                        ("case_returned", "page", "sent"), ("case_returned", "sms", "sent")],
                                hub=hub)
                    await gateway.wait_for(lambda: len(case_sms(gateway)) == 1)
                    snap = page.snapshots[-1]
                    assert snap["case"]["state"] == "returned"
                    assert [m["zh"] for m in snap["case"]["materials"]] == [material]
                    follow.cancel()
                hub.kill()  # SIGKILL after "returned" went out and was journaled

                hub.start()
                async with back_office(url, hub) as http:
                    page2 = Page()
                    follow = asyncio.create_task(page2.follow(url, case))
                    await page2.until({"near", "called", "case_returned"})  # still listed, once
                    await case_action(http, case, "resubmitted")
                    await case_action(http, case, "approved")
                    await page2.until({"near", "called", "case_returned", "ready_for_pickup"})
                    await until(lambda: len(case_outcomes(db)) == 4, hub=hub)
                    await gateway.wait_for(lambda: len(case_sms(gateway)) >= 2)
                    assert page2.snapshots[-1]["case"]["windows"] == [5]
                    follow.cancel()
                hub.kill()

                hub.start()
                async with web(url, hub) as http:  # a third hub: nothing is due any more
                    page3 = Page()
                    follow = asyncio.create_task(page3.follow(url, case))
                    await page3.until({"near", "called", "case_returned", "ready_for_pickup"})
                    follow.cancel()
            finally:
                assert hub.stop() is not None
    log = (tmp_path / "hub.log").read_text()
    assert sorted(case_outcomes(db)) == sorted([
        ("case_returned", "page", "sent"), ("case_returned", "sms", "sent"),
        ("ready_for_pickup", "page", "sent"), ("ready_for_pickup", "sms", "sent")]), log
    due = [r for r in journal(db) if r["op"] == "case_notice"]
    assert [(n["kind"], n["case"], n["occurrence"]) for n in due] == [
        ("case_returned", case, 0), ("ready_for_pickup", case, 0)]
    number = case.split("-")[1]
    texts = [(m.dest, m.text) for m in case_sms(gateway)]
    assert len(texts) == 2 and all(dest == DEST for dest, _ in texts), texts
    assert texts[0][1].startswith(f"【某中心】{number}号办理的") and material in texts[0][1]
    assert texts[1][1] == f"【某中心】{number}号办理结果已可领取，请到5号窗口领取。"
    # "near" and "called" (the remote ticket's own), the two case notices, no part sent twice
    assert [s.dest for s in gateway.submits] == [DEST] * 4
    stored = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("hub.db-*"))
    assert NUMBER.encode() not in stored and NUMBER not in log
