"""The city features end to end (issue 20): three real centre hubs (each its own process,
Mosquitto and SQLite journal), a real 3-node NATS JetStream cluster and the city's router
as a process.

- A case accepted at centre A for a department whose back office is at B, the result to be
  collected at C: routed while B is down (SIGKILL), taken once B is back, approved there
  while C is down, taken at C on its return, picked up at C by card; its document travels
  with it; every centre ends with the case closed, each version journaled once at each
  centre, nothing lost or doubled.
- Diversion: A's hall screen and phone page show its neighbours' current waits; the
  nearest centre with a free booking slot is found.
- The city's catalog: a bad version refused with the old one kept (journaled, reported to
  the city), a good one put in place at the day's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from onewindow.hub.city import subjects as sj
from onewindow.hub.city.router import publish_catalog
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.files import FileStore
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.nats_cluster import ADMIN_PASSWORD, NatsCluster, centre_password
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    log_in,
    offset_for_local,
    open_page,
    terminate,
    write_config,
)

from .test_notices_e2e import ALL_DAY, until

pytestmark = pytest.mark.timeout(240)
CENTRES = ("ca", "cb", "cc", "cd")
ITEM = "SOC-003"  # promised; approved by its line's department, "social"
TOKEN = "k3y3dcardtoken0000000000000000ab"  # a card's resident token (never a number)
PASSWORD = "s3cret-pass"
HERE = Path(__file__).resolve()


@contextlib.asynccontextmanager
async def back_office(url: str, hub: HubProcess):
    """A supervisor's session on a running hub (the /cases and /city pages)."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await open_page(http, "/login", hub, timeout=60)
        await log_in(http, "li", PASSWORD)
        yield http


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    work = tmp_path_factory.mktemp("city")
    with NatsCluster(work, centres=CENTRES) as cluster:
        log = open(work / "router.log", "ab")  # noqa: SIM115
        router = subprocess.Popen(
            [sys.executable, "-m", "onewindow.hub.cli", "city-router", "--nats",
             ",".join(cluster.urls), "--user", sj.ADMIN_USER,
             *(x for c in CENTRES for x in ("--centre", c))],
            env=dict(os.environ, OW_CITY_PASSWORD=ADMIN_PASSWORD),
            stdout=log, stderr=subprocess.STDOUT)
        try:
            asyncio.run(_router_ready(cluster, router))
            yield cluster
        finally:
            terminate(router)


async def _router_ready(cluster: NatsCluster, router: subprocess.Popen[bytes]) -> None:
    nc = await cluster.connect()
    js = nc.jetstream()
    try:
        async with asyncio.timeout(30):
            while True:
                assert router.poll() is None, "the router exited"
                with contextlib.suppress(Exception):
                    await js.consumer_info(sj.STREAM, "router-xdocs")
                    await js.consumer_info(sj.STREAM_ALL, "all-cd")
                    return
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


class Centre:
    """One centre: its broker, journal, files, hub process and web address."""

    def __init__(self, tmp: Path, name: str, city: NatsCluster, extra_city: str = "",
                 extra: str = "", offset: int | None = None,
                 servers: list[str] | None = None) -> None:
        self.name, self.dir = name, tmp / name
        self.dir.mkdir()
        self.db = self.dir / "hub.db"
        self.web_port = quiet_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        accounts = Accounts(f"sqlite:///{self.db}", PasswordHasher(time_cost=1, memory_cost=8,
                                                                    parallelism=1))
        accounts.add("li", PASSWORD, "supervisor", "李科长")
        accounts.close()
        self.broker = Mosquitto(self.dir / "broker").start()
        servers_ = ", ".join(json.dumps(u) for u in servers or city.urls)
        conf = (f"\n[web]\nport = {self.web_port}\n"
                f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
                "\n[pickup]\nitem = \"GEN-099\"\n" + extra +
                f"\n[city]\nservers = [{servers_}]\nuser = \"{sj.centre_user(name)}\"\n"
                f"password = \"{centre_password(name)}\"\n"
                f"public_url = \"http://{name}.example\"\nwaits_every_s = 0.5\n" + extra_city)
        devices = [{"id": "box-1", "role": "box"}, {"id": "kp-1", "role": "keypad", "window": 1}]
        self.cfg = write_config(self.dir / "centre.toml", name, self.broker.port, self.db,
                                windows=1, devices=devices, extra=conf,
                                utc_offset_minutes=offset if offset is not None
                                else offset_for_local("12:00"))
        self.hub = HubProcess(self.cfg, self.dir / "hub.log").start()
        self.files = FileStore(self.dir / "hub-files")

    def device(self, dev: str, role: str, window: int | None = None) -> SimDevice:
        return SimDevice(self.name, dev, role, "127.0.0.1", self.broker.port, window=window)

    def journal(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            return [json.loads(b) for (b,) in conn.execute("select body from journal "
                                                           "order by pos")]

    def ops(self, op: str) -> list[dict[str, Any]]:
        return [r for r in self.journal() if r["op"] == op]

    def stop(self) -> None:
        self.hub.stop()
        self.broker.stop()


async def status(http) -> dict[str, Any]:
    r = await http.get("/city/status")
    assert r.status_code == 200, r.text
    return r.json()


def catalog_versions() -> tuple[dict[str, Any], dict[str, Any]]:
    """(bad, good): the sample catalog without the pick-up item centre cd hands results out
    with; and with a new item, GEN-100."""
    data = json.loads((HERE.parents[1] / "catalog" / "sample_catalog.json").read_text())
    bad = {**data, "items": [i for i in data["items"] if i["id"] != "GEN-099"]}
    gen = next(i for i in data["items"] if i["id"] == "GEN-099")
    good = {**data, "items": [*data["items"], {**gen, "id": "GEN-100", "zh": "城市新事项",
                                               "en": "A new city item", "zh_tw": ""}]}
    return bad, good


@pytest.fixture(scope="module")
def catalog_centre(city, tmp_path_factory):
    """Centre cd, started first, at a UTC offset where its local midnight (the day's close)
    comes 15-75 s later: the city publishes a bad and a good catalog at once, and the day
    closes while the case test runs (a centre's day closes only by its clock)."""
    t0 = time.time()
    local = "23:59" if 60 - t0 % 60 >= 15 else "23:58"
    midnight = t0 - t0 % 60 + (60 if local == "23:59" else 120)
    d = Centre(tmp_path_factory.mktemp("catalog"), "cd", city,
               offset=offset_for_local(local, t0))
    bad, good = catalog_versions()

    async def publish() -> dict[str, Any]:
        nc = await city.connect()
        try:
            async with back_office(d.url, d.hub) as http:
                async with asyncio.timeout(20):
                    while True:
                        if (await status(http))["connected"]:
                            break
                        await asyncio.sleep(0.1)
                js = nc.jetstream()
                await publish_catalog(js, "2026.2", bad, check=False)
                path = d.dir / "city-catalog-2026.3.json"  # the city's command does this one
                path.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
                cmd = [sys.executable, "-m", "onewindow.hub.cli", "city-catalog", "publish",
                       "--nats", ",".join(city.urls), "--user", sj.ADMIN_USER]
                env = dict(os.environ, OW_CITY_PASSWORD=ADMIN_PASSWORD)
                refused = await asyncio.create_subprocess_exec(  # not a catalog: not sent
                    *cmd, str(d.dir / "centre.toml"), "--version", "2026.9", env=env,
                    stderr=asyncio.subprocess.PIPE)
                _, err = await refused.communicate()
                assert refused.returncode == 2 and err.decode().count("\n") == 1, err
                done = await asyncio.create_subprocess_exec(
                    *cmd, str(path), "--version", "2026.3", env=env,
                    stdout=asyncio.subprocess.PIPE)
                out, _ = await done.communicate()
                assert done.returncode == 0 and out == b"catalog 2026.3 published\n"
                async with asyncio.timeout(20):
                    while True:
                        st = await status(http)
                        if st["catalog_pending"] == "2026.3":
                            break
                        await asyncio.sleep(0.1)
                async with d.device("box-1", "box") as box:  # not before the day's close
                    with pytest.raises(DeviceError) as unknown:
                        await box.send("take", item="GEN-100")
                    assert unknown.value.code == "unknown_item"
                return st
        finally:
            await nc.close()

    before = asyncio.run(publish())
    assert time.time() < midnight - 2, "published too late: the day closed meanwhile"
    try:
        yield d, before, midnight
    finally:
        d.stop()


async def test_case_accepted_at_a_approved_at_b_collected_at_c_across_outages(
        city, catalog_centre, tmp_path):
    neighbours = ('neighbours = [{ id = "cb", km = 2.0 }, { id = "cc", km = 3.5 }]\n'
                  'departments = { social = "cb" }\n')
    # A reaches the city through one node only: stopping it cuts A off (the others go on).
    a = Centre(tmp_path, "ca", city, neighbours, extra="\n[booking]\ncapacity = { social = 0 }\n",
               servers=city.urls[:1])
    b = Centre(tmp_path, "cb", city)
    c = Centre(tmp_path, "cc", city)
    try:
        # -- accepted at A: a promised item, by card; a document stored with it --------------
        async with back_office(a.url, a.hub) as http_a, a.device("box-1", "box") as box, \
                a.device("kp-1", "keypad", 1) as kp:
            await box.send("take", item=ITEM, resident=TOKEN)
            for typ in ("open", "call", "start", "complete"):
                await kp.send(typ, timeout=30, retry=0.5)
            [mine] = await cases_of(http_a)
            case = mine["case"]
            assert (mine["state"], mine["approver"], mine["pickup"]) == ("open", "ca", "ca")
            doc = b"%PDF-1.4 the application form, signed\n" * 2000  # ~76 kB
            sha = hashlib.sha256(doc).hexdigest()
            a.files.save(case, doc, "pdf", "application/pdf", kind="page")

            # -- A is cut off from the city and B is down (SIGKILL) when A routes the case to
            # B's back office: journaled at A, sent when A is back in touch -----------------
            b.hub.kill()
            city.stop_node(0, kill=True)
            async with asyncio.timeout(20):
                while True:
                    if not (await status(http_a))["connected"]:
                        break
                    await asyncio.sleep(0.1)
            page = (await http_a.get(f"/cases/{case}?lang=en")).text
            assert 'id="city-route-send"' in page and '<option value="cc">' in page
            r = await http_a.post("/city/route", json={"case": case, "pickup": "cc"})
            assert r.status_code == 200, r.text
            assert r.json() == {"key": f"ca/{case}", "approver": "cb", "pickup": "cc",
                                "documents": 1}
            key = f"ca/{case}"
            assert (await status(http_a))["unsent"] == [key] and a.ops("city_sent") == []
            city.start_node(0)
            city.wait_ready()
            await until(lambda: any(x["key"] == key and x["version"] == 1
                                    for x in a.ops("city_sent")), hub=a.hub)
            assert "Routed to: cb" in (await http_a.get(f"/cases/{case}?lang=en")).text
            # A's back office cannot approve what is now B's
            r = await http_a.post(f"/cases/{case}/approved", json={})
            assert r.status_code in (400, 409) and r.json()["code"] == "city_elsewhere", r.text

            # -- diversion: A's hall and phone page show C's waits (B is down) ------------
            async with asyncio.timeout(20):
                while True:
                    near = (await http_a.get("/city/nearby?lang=en")).json()
                    if "cc" in {n["centre"] for n in near["centres"]}:
                        break
                    await asyncio.sleep(0.2)
            assert near["title"] == "Nearby centres now"
            assert [(n["centre"], n["km"]) for n in near["centres"]][-1] == ("cc", 3.5)
            hall = (await http_a.get("/hall?lang=en")).text
            assert 'id="city-nearby"' in hall and 'data-centre="cc"' in hall
            assert "Nearby centres now" in hall
            phone = (await http_a.get(f"/t/{case}?lang=zh-CN")).text
            assert 'data-centre="cc"' in phone and "附近中心当前等候" in phone
            kiosk = (await http_a.get("/kiosk?device=box-1&lang=zh-TW")).text
            assert 'data-centre="cc"' in kiosk and "附近中心當前等候" in kiosk

        # -- B returns: it takes the case once, with its document --------------------------
        b.hub.start()
        async with back_office(b.url, b.hub) as http_b:
            await until(lambda: len(b.ops("city_arrive")) == 1, timeout=30, hub=b.hub)
            [at_b] = await cases_of(http_b)
            local_b = at_b["case"]
            assert (at_b["key"], at_b["state"], at_b["pickup"]) == (key, "open", "cc")
            await until(lambda: any(f.sha256 == sha for f in b.files.list(local_b)), hub=b.hub)
            assert b.files.path_of(next(f for f in b.files.list(local_b)
                                        if f.sha256 == sha)).read_bytes() == doc
            # -- B returns it for correction (补正): back to A, where the resident brings
            # the corrected material; A's window adds it and resubmits --------------------
            r = await http_b.post(f"/cases/{local_b}/returned",
                                  json={"reason": "复印件不清晰", "materials": [1]})
            assert r.status_code == 200, r.text
            r = await http_b.post(f"/cases/{local_b}/resubmitted", json={})
            assert r.json()["code"] == "city_elsewhere", r.text  # A's to resubmit now
            await until(lambda: any(x["version"] == 2 for x in a.ops("city_arrive")),
                        hub=a.hub)
            fixed = b"%PDF-1.4 the corrected copy\n" * 500
            sha2 = hashlib.sha256(fixed).hexdigest()
            a.files.save(case, fixed, "pdf", "application/pdf", kind="page")
            await until(lambda: bool(a.ops("city_documents")), hub=a.hub)
            async with back_office(a.url, a.hub) as http_a:
                r = await http_a.post(f"/cases/{case}/resubmitted", json={})
                assert r.status_code == 200, r.text
            await until(lambda: any(x["version"] == 3 for x in b.ops("city_arrive")),
                        hub=b.hub)
            await until(lambda: {f.sha256 for f in b.files.list(local_b)} == {sha, sha2},
                        hub=b.hub)
            # -- C is down when B's back office approves ---------------------------------
            await until(lambda: any(x["version"] == 3 for x in c.ops("city_arrive")),
                        hub=c.hub)
            c.hub.kill()
            r = await http_b.post(f"/cases/{local_b}/approved", json={})
            assert r.status_code == 200, r.text
            await until(lambda: any(x["version"] == 4 for x in b.ops("city_sent")), hub=b.hub)
        await until(lambda: any(x["version"] == 4 for x in a.ops("city_arrive")), hub=a.hub)
        # -- seen at any centre by card: D, not involved, finds it ready (token only) ------
        d = catalog_centre[0]
        async with back_office(d.url, d.hub) as http_d:
            assert await cases_of(http_d) == []
            await until_city(http_d, lambda rows: [(x["key"], x["state"], x["pickup"])
                                                   for x in rows] == [(key, "ready", "cc")])

        # -- C returns: the case is there, ready; the card picks it up at C -----------------
        c.hub.start()
        async with back_office(c.url, c.hub) as http_c, c.device("box-1", "box") as box, \
                c.device("kp-1", "keypad", 1) as kp:
            await until(lambda: len(c.ops("city_arrive")) == 4, timeout=30, hub=c.hub)
            [at_c] = await cases_of(http_c)
            local_c = at_c["case"]
            assert (at_c["key"], at_c["state"]) == (key, "ready")
            assert {f.sha256 for f in c.files.list(local_c)} == {sha, sha2}
            await box.send("pickup", resident=TOKEN)
            await kp.send("open", timeout=30, retry=0.5)
            await kp.send("call", timeout=30, retry=0.5)
            await kp.send("card", resident=TOKEN, timeout=30, retry=0.5)
            await until(lambda: any(x["version"] == 5 for x in c.ops("city_sent")), hub=c.hub)

        # -- everyone ends with the case closed: each version once at each centre -----------
        for n in (a, b):
            await until(lambda n=n: any(x["version"] == 5 for x in n.ops("city_arrive")),
                        timeout=30, hub=n.hub)
        arrived = {n.name: sorted(x["version"] for x in n.ops("city_arrive"))
                   for n in (a, b, c)}
        assert arrived == {"ca": [2, 4, 5], "cb": [1, 3, 5], "cc": [1, 2, 3, 4]}
        sent = {n.name: sorted(x["version"] for x in n.ops("city_sent")) for n in (a, b, c)}
        assert sent == {"ca": [1, 3], "cb": [2, 4], "cc": [5]}
        assert [len(x["documents"]) for x in a.ops("city_documents")] == [2]
        for n in (a, b, c):
            async with back_office(n.url, n.hub) as http:
                st = await status(http)
                assert st["unsent"] == [] and st["links"] == 1
                assert await cases_of(http) == []
        async with back_office(d.url, d.hub) as http_d:
            await until_city(http_d, lambda rows: rows == [])
        # the nearest centre with a free booking slot of the social line: not A (none), B
        async with back_office(a.url, a.hub) as http_a:
            async with asyncio.timeout(20):
                while True:
                    best = (await http_a.get("/city/book?line=social")).json()
                    if best.get("found") and best["centre"] == "cb":
                        break
                    await asyncio.sleep(0.2)
            assert best["km"] == 2.0 and best["url"] == "http://cb.example"
            page = (await http_a.get("/book?lang=en")).text
            assert 'data-line="social" data-centre="cb"' in page
    finally:
        for n in (a, b, c):
            n.stop()


async def until_city(http, check, timeout: float = 20.0) -> None:
    """Until the city-wide index's answer for the card (GET /city/cases: `city`) passes."""
    async with asyncio.timeout(timeout):
        while True:
            r = await http.get(f"/city/cases?resident={TOKEN}")
            assert r.status_code == 200, r.text
            rows = r.json()["city"]
            if rows is not None and check(rows):
                return
            await asyncio.sleep(0.2)


async def cases_of(http) -> list[dict[str, Any]]:
    """The card's open cases at a centre (GET /city/cases by its token)."""
    r = await http.get(f"/city/cases?resident={TOKEN}")
    assert r.status_code == 200, r.text
    return list(r.json()["cases"])


async def test_city_catalog_bad_refused_good_applied_at_the_days_close(city, catalog_centre):
    d, before, midnight = catalog_centre
    # Before the close: the bad version refused (the old catalog kept), the good one waits.
    assert before["catalog_version"] == "file"
    assert before["catalog_refused"][0] == "2026.2"
    assert "GEN-099" in before["catalog_refused"][1]
    offers = [(r["version"], r["op"]) for r in d.ops("catalog_offer")]
    assert offers == [("2026.2", "catalog_offer"), ("2026.3", "catalog_offer")]
    await asyncio.sleep(max(0.0, midnight - time.time() + 0.5))  # the centre's day closes
    async with d.device("box-1", "box") as box, back_office(d.url, d.hub) as http:
        await box.send("take", item="GEN-099")  # the first operation of the new day
        st = await status(http)
        assert (st["catalog_version"], st["catalog_pending"]) == ("2026.3", None)
        await box.send("take", item="GEN-100")  # the new version's item: a ticket
        kiosk = (await http.get("/kiosk/line/general?device=box-1&lang=en")).text
        assert "A new city item" in kiosk  # the kiosk lists it without a restart
        assert [r["item"] for r in d.ops("take")][-2:] == ["GEN-099", "GEN-100"]
    # Killed and started again: the city's version is still the one in place (the
    # snapshot holds it; the journal replays to it), not centre.toml's file.
    d.hub.kill()
    d.hub.start()
    async with d.device("box-1", "box") as box, back_office(d.url, d.hub) as http:
        st = await status(http)
        assert (st["catalog_version"], st["catalog_refused"][0]) == ("2026.3", "2026.2")
        await box.send("take", item="GEN-100")
        assert [r["item"] for r in d.ops("take")][-3:] == ["GEN-099", "GEN-100", "GEN-100"]
    # The city hears which version each centre runs (and what it refused).
    nc = await city.connect()
    try:
        js = nc.jetstream()
        async with asyncio.timeout(20):
            while True:
                last = json.loads((await js.get_last_msg(sj.STREAM, "city.cd.catalog")).data)
                if last["version"] == "2026.3":
                    break
                await asyncio.sleep(0.2)
        assert last["refused"][0] == "2026.2" and last["pending"] is None
    finally:
        await nc.close()
