"""The city tier end to end (issue 20), on one machine, every peer real, driven by the
simulator for a day: ten centre hubs (processes, each with its own Mosquitto and SQLite
journal, the real `serve` on an accelerated clock: tools/bench/soakhub.py) and their
exporters, a 3-node NATS JetStream cluster, the city's router, a PostgreSQL, the ingester
and the city web (processes).

Each centre carries the simulator's day (hub/sim, through tools/demo's Simulation: its
residents' arrivals, its clerks' calls, services and ratings, acted out by simulated devices
over MQTT, as the soak does; only the clock runs faster, SPEED simulated seconds a real
second). Within that day:

- a case accepted at centre A (c01) for a department whose back office is at B (c02) is
  routed there, approved at B, and picked up at C (c03), where the resident chose;
- centre c10 is cut off from the city (its uplink, a TCP link the test cuts) for two
  simulated hours while it serves, then catches up;
- one city node is SIGKILLed mid-day (and so are one centre's exporter, the real
  `onewindow city-export`, and the ingester, both started again);
- the city dashboard follows the centres within a few seconds, mid-day and at the end;
- a card tapped at c07's kiosk (MQTT `pickup` by card) is answered with its open case at
  c05 from the city's index (token only, never a name or number).

At the end every centre's counts in the city database equal what its hub journaled and what
the simulator produced, exactly: tickets issued, served, ratings; nothing lost, nothing
doubled."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiomqtt
import httpx
import pytest
from argon2 import PasswordHasher

from onewindow.hub.city import citydb, dashboard
from onewindow.hub.city import subjects as sj
from onewindow.hub.city.export import Exporter, Options
from onewindow.hub.config import load as load_config
from onewindow.hub.core.model import TicketState, WindowState
from onewindow.hub.sim.model import ArrivalModel
from onewindow.hub.store.accounts import Accounts
from onewindow.protocol import ow_protocol as proto
from onewindow.tools import demo
from onewindow.tools.bench.soak import Accepted, Following, Mirror, engine_outcomes, journal_ops
from onewindow.tools.bench.soakhub import SoakClock, open_gate
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.nats_cluster import ADMIN_PASSWORD, INGEST_PASSWORD, NatsCluster
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.tcpcut import CuttableLink
from onewindow.tools.testkit.testbed import Mosquitto, Postgres, log_in, open_page, terminate

pytestmark = pytest.mark.timeout(420)

CENTRES = [f"c{i:02d}" for i in range(1, 11)]
A, B, C = "c01", "c02", "c03"  # the case: accepted at A, approved at B, picked up at C
CUT = "c10"
PROC = "c09"  # its exporter is the `onewindow city-export` command, killed and restarted
DISTRICT = {c: ("east" if i % 2 == 0 else "west") for i, c in enumerate(CENTRES)}  # c01 east
DAY = dt.date(2026, 11, 2)  # a Monday, a working day
WINDOWS = 2
VISITS = 30  # residents a centre (the simulator's ~74 for two windows, fewer: 2 cores)
SPEED = 420.0  # simulated seconds per real second: 08:50 to the last service in ~75 s
CUT_AT, RESTORE_AT = dt.time(10, 0), dt.time(12, 0)  # c10's uplink down
KILL_AT, NODE_BACK_AT = dt.time(11, 0), dt.time(12, 30)  # city node 1 down
LAG_AT = dt.time(14, 0)  # the dashboard against the centres, mid-day
CARD = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"  # one resident's card token, at every centre
CASE_ITEM = "SOC-003"  # promised (15 working days); department "social", at B
PASSWORD = "s3cret-pass"
DEVICE_TOTAL = 4 + 2 * WINDOWS + 1  # the demo's fleet and the test's own kiosk-2


RESIDENT = "f00dfeedf00dfeedf00dfeed"


def _staff_month() -> list[dict]:
    """A month (2025-03) of two centres' services, ratings, cases and bookings (18 records):
    x1's alice 10 standard minutes in 10, rated 5, two cases (one returned, decided in
    time; one decided late), bob 3 standard minutes in 5, rated 2, one case never decided;
    x1's bookings of the 3rd sent twice (the newer counts win); x2's carol one service."""
    tz = dt.timezone(dt.timedelta(hours=8))

    def at(d: int, h: int = 10) -> float:
        return dt.datetime(2025, 3, d, h, tzinfo=tz).timestamp()

    out: list[dict] = []

    def add(centre: str, kind: str, d: int, when: float, **f) -> None:
        out.append({"v": 1, "centre": centre, "day": f"2025-03-{d:02d}", "pos": len(out),
                    "part": 0, "kind": kind, "at": when, **f})

    t0 = at(3)
    for c, tk, item, clerk, minutes in (("x1", "T1", "SOC-2", "alice", 10),
                                         ("x1", "T2", "MED-1", "bob", 5),
                                         ("x2", "T9", "SOC-1", "carol", 5)):
        add(c, "ticket", 3, t0 - 60, ev="issued", ticket=tk, item=item, resident=RESIDENT)
        add(c, "ticket", 3, t0 + 60 * minutes, ev="done", ticket=tk, window=1, clerk=clerk,
            start=t0, end=t0 + 60 * minutes)
    add("x1", "rating", 3, t0 + 700, ticket="T1", score=5, window=1, clerk="alice")
    add("x1", "rating", 3, t0 + 700, ticket="T2", score=2, window=1, clerk="bob")
    add("x2", "rating", 3, t0 + 700, ticket="T9", score=4, window=1, clerk="carol")
    # SOC-2: 5 working days (due the 10th); CIV-1: 10 (due the 17th)
    add("x1", "case", 3, t0 + 600, case="T1", action="accepted", item="SOC-2", by="alice")
    add("x1", "case", 4, at(4), case="T1", action="returned", by="dept")
    add("x1", "case", 6, at(6), case="T1", action="approved", by="dept")
    add("x1", "case", 3, t0 + 900, case="T5", action="accepted", item="SOC-2", by="alice")
    add("x1", "case", 12, at(12), case="T5", action="closed", by="dept")
    add("x1", "case", 3, t0 + 300, case="T4", action="accepted", item="CIV-1", by="bob")
    add("x1", "booking", 3, t0, booked=5, checked_in=3, no_show=1)
    add("x1", "booking", 3, at(4), booked=6, checked_in=4, no_show=2)
    add("x1", "booking", 4, at(4), booked=2, checked_in=2, no_show=0)
    return out


async def _hub_ready(centre: str, port: int, timeout: float = 90.0) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe(proto.hub_topic(centre), qos=1)
        async with asyncio.timeout(timeout):
            async for m in sub.messages:
                if json.loads(m.payload).get("state") == "ready":
                    return


async def _nats_ready(cluster: NatsCluster, checks: list[tuple[str, str]],
                      procs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    """Until each (stream, durable consumer) exists: the ingester's and the router's."""
    nc = await cluster.connect()
    try:
        js = nc.jetstream()
        async with asyncio.timeout(timeout):
            for stream, consumer in checks:
                while True:
                    assert all(p.poll() is None for p in procs), "a city process exited"
                    try:
                        await js.consumer_info(stream, consumer)
                        break
                    except Exception:  # not yet
                        await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def _stream_msg_ids(cluster: NatsCluster) -> list[str]:
    """Every record's Nats-Msg-Id in stream CITY (the city features' own kinds left out),
    read through an ephemeral consumer."""
    nc = await cluster.connect()
    try:
        js = nc.jetstream()
        total = (await js.stream_info("CITY")).state.messages
        sub = await js.pull_subscribe("city.>", stream="CITY")
        ids: list[str] = []
        seen = 0
        async with asyncio.timeout(30):
            while seen < total:
                try:
                    msgs = await sub.fetch(500, timeout=1.0)
                except Exception:  # nothing in this second: fetch again
                    continue
                for m in msgs:
                    seen += 1
                    if m.subject.rsplit(".", 1)[-1] in citydb.KIND_TABLE:
                        ids.append((m.headers or {}).get("Nats-Msg-Id", ""))
                    await m.ack()
        return ids
    finally:
        await nc.close()


async def _login(port: int, user: str, password: str) -> httpx.Cookies:
    """The city web's session for `user` (once the process serves, however long it takes
    to start on a busy machine)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    r = await http.post("/city/login", data={"username": user,
                                                              "password": password})
                    assert r.status_code == 303, r.text
                    return r.cookies
                await asyncio.sleep(0.1)


async def _live(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await http.get(f"/city/api/live?day={DAY.isoformat()}")
    assert r.status_code == 200, r.text
    return {row["centre"]: row for row in r.json()["centres"]}


async def _converge(http: httpx.AsyncClient, centres: list[Centre], since: float,
                    limit: float) -> dict[str, float]:
    """Poll the city dashboard until it shows each of `centres` as its hub has it (queue,
    tickets issued today, served); the seconds after `since` at which each first did."""
    want = {c.name: c.floor() for c in centres}
    first: dict[str, float] = {}
    seen: dict[str, tuple[int, int, int]] = {}
    deadline = since + limit
    while len(first) < len(want) and time.monotonic() < deadline:
        seen = {c: (r["waiting"], r["issued"], r["served"]) for c, r in (await _live(http)).items()}
        for c, w in want.items():
            if seen.get(c) == w:
                first.setdefault(c, round(time.monotonic() - since, 2))
        if len(first) < len(want):
            await asyncio.sleep(0.1)
    assert len(first) == len(want), {c: (seen.get(c), w) for c, w in want.items()
                                     if c not in first}
    return first


async def _follows(http: httpx.AsyncClient, centres: list[Centre], limit: float
                   ) -> dict[str, float]:
    """Mid-day, traffic going on: each centre's tickets and services as its journal holds
    them now; the seconds until the dashboard shows at least as many for each."""
    since = time.monotonic()
    want = {c.name: c.floor()[1:] for c in centres}
    first: dict[str, float] = {}
    seen: dict[str, tuple[int, int]] = {}
    while len(first) < len(want) and time.monotonic() < since + limit:
        seen = {c: (r["issued"], r["served"]) for c, r in (await _live(http)).items()}
        for c, w in want.items():
            if c in seen and seen[c][0] >= w[0] and seen[c][1] >= w[1]:
                first.setdefault(c, round(time.monotonic() - since, 2))
        if len(first) < len(want):
            await asyncio.sleep(0.1)
    assert len(first) == len(want), {c: (seen.get(c), w) for c, w in want.items()
                                     if c not in first}
    return first


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # strings, numbers, lists: valid TOML


def centre_toml(name: str, broker: int, db: Path, web: int, plan: demo.Plan,
                servers: list[str], password: str) -> str:
    """The demo's centre (its layout's windows, a keypad and an LED board at each, two
    boxes, a kiosk, a hall board; the test's own kiosk-2), on its own broker and journal,
    with its web pages and the city's features: department `social` approves at B, results
    are picked up at the general item GEN-099."""
    raw = demo.demo_config(plan.layout, broker, db)
    # Periods of the hub's clock that SPEED would shrink below real latencies: a rating
    # given up to 10 minutes after the service (1.4 real s here), a snapshot every 10
    # minutes.
    lines = ["[centre]", f"id = {_toml(name)}", "", "[policy]", "rating_window = 7200", "",
             "[store]", f"url = {_toml(f'sqlite:///{db}')}", "snapshot_minutes = 600", "",
             "[broker]",
             f"url = {_toml(f'mqtt://127.0.0.1:{broker}')}", "", "[web]", f"port = {web}",
             "", "[pickup]", 'item = "GEN-099"', "", "[city]",
             f"servers = {_toml(servers)}", f"user = {_toml(sj.centre_user(name))}",
             f"password = {_toml(password)}", f"public_url = {_toml(f'http://{name}.example')}",
             "waits_every_s = 1", 'departments = { social = "c02" }',
             'neighbours = [{ id = "c02", km = 2.0 }, { id = "c03", km = 3.5 }]', ""]
    for w in raw["windows"]:
        lines += ["[[windows]]", *(f"{k} = {_toml(v)}" for k, v in w.items()), ""]
    for d in [*raw["devices"], {"id": "kiosk-2", "role": "kiosk"}]:
        lines += ["[[devices]]", *(f"{k} = {_toml(v)}" for k, v in d.items()), ""]
    return "\n".join(lines)


class Centre:
    """One centre: its broker, journal, hub process (on the shared simulated clock), its
    devices, and the simulator's day acted out on them."""

    def __init__(self, name: str, tmp: Path, plan: demo.Plan, servers: list[str],
                 password: str) -> None:
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir()
        self.db = self.dir / "hub.db"
        self.web_port = quiet_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        accounts = Accounts(f"sqlite:///{self.db}", PasswordHasher(time_cost=1, memory_cost=8,
                                                                    parallelism=1))
        accounts.add("li", PASSWORD, "supervisor", "李科长")
        accounts.close()
        self.broker = Mosquitto(self.dir / "broker").start()
        self.config = self.dir / "centre.toml"
        self.config.write_text(centre_toml(name, self.broker.port, self.db, self.web_port,
                                           plan, servers, password), encoding="utf-8")
        self.hubconf = load_config(self.config)
        self.hub: subprocess.Popen[bytes] | None = None
        self.mirror: Mirror | None = None
        self.devices: dict[str, SimDevice] = {}
        self.sim: demo.Simulation | None = None
        self.accepted: Accepted | None = None
        self.extra_tickets = 0  # tickets of the test's own (the case's resident), not the sim's

    def start(self, epoch: float, gate: Path) -> None:
        """The hub process, its clock held at `epoch` until the test opens `gate`."""
        with open(self.dir / "hub.log", "ab") as log:
            self.hub = subprocess.Popen(
                [sys.executable, "-m", "onewindow.tools.bench.soakhub", "--config",
                 str(self.config), "--epoch", repr(epoch), "--wall-file", str(gate),
                 "--speed", repr(SPEED)],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    async def connect(self, stack: contextlib.AsyncExitStack) -> None:
        for d in self.hubconf.devices:
            self.devices[d.id] = await stack.enter_async_context(
                SimDevice(self.name, d.id, d.role, "127.0.0.1", self.broker.port,
                          window=d.window))
        self.mirror = Mirror(self.hubconf, f"sqlite:///{self.db}")
        self.mirror.catch_up()

    async def day(self, clock: SoakClock, plan: demo.Plan, seed: int) -> None:
        """The simulator's day at this centre, to its end."""
        assert self.mirror is not None
        following = {k: Following(v, self.mirror) for k, v in self.devices.items()
                     if k != "kiosk-2"}
        clerks = demo.clerk_names(WINDOWS, random.Random(seed))
        self.sim = demo.Simulation(cast(Any, SimpleNamespace(app=self.mirror.app)),
                                   cast(Any, clock), plan, cast(Any, following), seed, clerks)
        self.accepted = Accepted(self.sim.engine.act)
        self.sim.engine.act = self.accepted
        self.sim.start()
        closing = plan.at(plan.options.close_at)
        try:
            # To the engine's end, or until every window closed after the hall's closing
            # time: nobody is left then, and the engine would only wait out its hard stop
            # (19:00; about 17 real seconds here) before it ends.
            while not self.sim.day_over:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.sim.finished(), 0.2)
                if clock() > closing and self.closed():
                    break
        finally:
            await self.sim.stop()

    def closed(self) -> bool:
        """Every window closed, as the hub's journal has it."""
        assert self.mirror is not None
        self.mirror.catch_up()
        return all(w.state == WindowState.CLOSED
                   for w in self.mirror.app.centre.windows.values())

    def floor(self) -> tuple[int, int, int]:
        """(waiting, tickets issued today, served) as the hub's journal has them."""
        assert self.mirror is not None
        self.mirror.catch_up()
        tickets = self.mirror.app.centre.tickets.values()
        return (sum(1 for t in tickets if t.state == TicketState.WAITING), len(tickets),
                len(self.mirror.app.services))

    def ops(self, op: str) -> list[dict[str, Any]]:
        assert self.mirror is not None
        return [r.body for r in self.mirror.journal.read(0) if r.body["op"] == op]

    def stop(self) -> None:
        if self.hub is not None:
            terminate(self.hub)
        if self.mirror is not None:
            self.mirror.close()
        self.broker.stop()


async def _back_office(c: Centre) -> httpx.AsyncClient:
    """A supervisor's session on a centre's hub (its /cases and /city pages)."""
    http = httpx.AsyncClient(base_url=c.url, timeout=10)
    await open_page(http, "/login", timeout=60)
    await log_in(http, "li", PASSWORD)
    return http


class Office:
    """A supervisor at a centre's back office (its /cases and /city pages). Sessions end on
    the hub's clock, which runs SPEED times faster than the test's: a 401 logs in again."""

    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self.http: httpx.AsyncClient | None = None

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        for _ in range(3):
            if self.http is None:
                self.http = await _back_office(self.centre)
            r = await self.http.request(method, url, **kw)
            if r.status_code != 401:
                return r
            await self.aclose()
        return r

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None


async def _until(check, timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll `check` (a journal, a page: nothing to await on) until it gives a truthy value."""
    async with asyncio.timeout(timeout):
        while True:
            got = check()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return got
            await asyncio.sleep(every)


async def _card_cases(office: Office) -> list[dict[str, Any]]:
    r = await office.request("GET", f"/city/cases?resident={CARD}")
    assert r.status_code == 200, r.text
    return list(r.json()["cases"])


@pytest.fixture
def city_tier(tmp_path, small_catalog_file):
    plan = demo.plan(DAY, WINDOWS, "comprehensive")
    plan = replace(plan, scale=VISITS / ArrivalModel().base_daily)
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(Postgres())
        cluster = stack.enter_context(NatsCluster(tmp_path / "nats", centres=CENTRES))
        # c10 reaches the city through links the test cuts: its exporter and its hub both
        links = [CuttableLink(n.port) for n in cluster.nodes]
        cut_urls = [f"nats://127.0.0.1:{ln.port}" for ln in links]
        centres: list[Centre] = []
        stack.callback(lambda: [c.stop() for c in centres])
        for name in CENTRES:
            centres.append(Centre(name, tmp_path, plan,
                                  cut_urls if name == CUT else cluster.urls,
                                  cluster.centres[name]))
        # One clock for every hub and every centre's simulated people: held at 08:50
        # until the test opens the gate (all started), then SPEED x real time.
        gate = tmp_path / "clock-gate"
        for c in centres:
            c.start(plan.at(demo.START), gate)
        web_port = quiet_port()
        env = dict(os.environ, OW_CITY_WEB_SECRET="s3cret", PYTHONUNBUFFERED="1")
        with open(tmp_path / "web.log", "wb") as log:
            web = subprocess.Popen([sys.executable, "-m", "onewindow.hub.cli", "city-web",
                                    "--db", pg.url, "--port", str(web_port), "--catalog",
                                    str(small_catalog_file)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        stack.callback(terminate, web)
        spawned: list[subprocess.Popen[bytes]] = []
        stack.callback(lambda: [terminate(p) for p in spawned])

        def spawn(cmd: list[str], env: dict[str, str], log) -> subprocess.Popen[bytes]:
            """A command of the city tier as its own process, stopped at the end."""
            with open(log, "ab") as out:
                spawned.append(subprocess.Popen(cmd, env=env, stdout=out,
                                                stderr=subprocess.STDOUT))
            return spawned[-1]

        yield SimpleNamespace(pg=pg, cluster=cluster, links=links, centres=centres,
                              web_port=web_port, spawn=spawn, gate=gate, plan=plan)


async def test_ten_centres_carry_a_simulated_day_through_outages(city_tier, tmp_path):
    t0 = time.monotonic()
    tier = city_tier
    pg, cluster, centres, plan = tier.pg, tier.cluster, tier.centres, tier.plan
    by_name = {c.name: c for c in centres}
    # Ten simulated days step in worker threads, each blocking on its hub's answers, and
    # the exporters read their journals in threads too: more than the default pool's six.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=48))
    links = [await ln.start() for ln in tier.links]
    with citydb.connect(pg.url) as conn:
        citydb.create(conn)
        for c in CENTRES:
            conn.execute("INSERT INTO city_centres (centre, name, district) VALUES "
                         "(%s, %s, %s)", (c, f"中心 {c}", DISTRICT[c]))
        dashboard.set_user(conn, "city", "pw-city", "city", None)
        dashboard.set_user(conn, "east", "pw-east", "district", "east")
    stop = asyncio.Event()
    ingest_cmd = [sys.executable, "-m", "onewindow.hub.cli", "city-ingest", "--nats",
                  ",".join(cluster.urls), "--db", pg.url]
    ingest_env = dict(os.environ, OW_CITY_PASSWORD=INGEST_PASSWORD, PYTHONUNBUFFERED="1")
    ingest_log = tmp_path / "city-ingest.log"
    ingest_proc = tier.spawn(ingest_cmd, ingest_env, ingest_log)
    router = tier.spawn([sys.executable, "-m", "onewindow.hub.cli", "city-router", "--nats",
                         ",".join(cluster.urls), "--user", sj.ADMIN_USER,
                         *(x for c in CENTRES for x in ("--centre", c))],
                        dict(os.environ, OW_CITY_PASSWORD=ADMIN_PASSWORD),
                        tmp_path / "router.log")
    proc_centre = by_name[PROC]
    exporter_cmd = [sys.executable, "-m", "onewindow.hub.cli", "city-export", "-c",
                    str(proc_centre.config), "--nats", ",".join(cluster.urls), "--state",
                    str(proc_centre.dir / "city-export"), "--snapshot-every", "0.3"]
    exporter_env = dict(os.environ, OW_CITY_PASSWORD=cluster.centres[PROC],
                        OW_CITY_TOKEN_KEY="city-key", PYTHONUNBUFFERED="1")
    exporter_log = proc_centre.dir / "city-export.log"
    exporter_proc = tier.spawn(exporter_cmd, exporter_env, exporter_log)
    await asyncio.gather(*(_hub_ready(c.name, c.broker.port) for c in centres))
    print(f"{time.monotonic() - t0:.1f} s: ten hubs ready", flush=True)
    await _nats_ready(cluster, [("CITY_LIVE", "city-ingest-live"), (sj.STREAM, "router-xdocs"),
                                (sj.STREAM_ALL, f"all-{CENTRES[-1]}")], [ingest_proc, router])
    tasks: list[asyncio.Task[None]] = []
    exporters = {}
    for c in centres:
        if c.name == PROC:
            continue
        servers = ([f"nats://127.0.0.1:{ln.port}" for ln in links] if c.name == CUT
                   else cluster.urls)
        exporters[c.name] = Exporter(c.hubconf, Options(
            servers=servers, user=f"centre-{c.name}", password=cluster.centres[c.name],
            state_dir=c.dir / "city-export", token_key=b"city-key", live_every=0.5,
            poll=0.05))
        tasks.append(asyncio.create_task(exporters[c.name].run(stop)))
    cookies = await _login(tier.web_port, "city", "pw-city")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{tier.web_port}", cookies=cookies)
    offices: dict[str, Office] = {}
    report: dict[str, Any] = {}

    def step(what: str) -> None:
        """The case's steps and the simulated time of each, printed as they happen."""
        at = dt.datetime.fromtimestamp(clock(), dt.timezone(dt.timedelta(hours=8)))
        report.setdefault("steps", []).append((what, f"{at:%H:%M}"))
        print(f"{at:%H:%M} {what}", flush=True)

    async def until_sim(t: dt.time) -> None:
        await asyncio.sleep(max(0.0, clock.real_until(plan.at(t))))

    def rows_of(centre: str) -> int:
        with citydb.connect(pg.url) as conn:
            return int(conn.execute("SELECT count(*) FROM ticket_events WHERE centre = %s",
                                    (centre,)).fetchone()[0])

    async def outages() -> None:
        """The city's bad day, on the simulated clock."""
        nonlocal exporter_proc, ingest_proc
        await until_sim(CUT_AT)
        for ln in links:  # c10 cut off: it serves on, nothing of it crosses
            ln.cut()
        await asyncio.sleep(1.0)  # what was in flight lands or fails
        report["cut_rows"] = await asyncio.to_thread(rows_of, CUT)
        report["cut_hub_before"] = by_name[CUT].floor()[1]
        await until_sim(KILL_AT)
        # A city node SIGKILLed (its streams' leaders with it: an election follows), and
        # one centre's exporter (the real command) and the ingester with it: what the
        # ingester stored but had not acknowledged comes again, and is dropped.
        cluster.stop_node(1, kill=True)
        exporter_proc.kill()
        ingest_proc.kill()
        await asyncio.to_thread(exporter_proc.wait)
        await asyncio.to_thread(ingest_proc.wait)
        exporter_proc = tier.spawn(exporter_cmd, exporter_env, exporter_log)
        ingest_proc = tier.spawn(ingest_cmd, ingest_env, ingest_log)
        await until_sim(RESTORE_AT)
        # Two simulated hours cut off: the hub served and journaled, none of it crossed.
        report["cut_rows_after"] = await asyncio.to_thread(rows_of, CUT)
        report["cut_hub_tickets"] = by_name[CUT].floor()[1]
        for ln in links:
            ln.restore()
        await until_sim(NODE_BACK_AT)
        cluster.start_node(1)
        await asyncio.to_thread(cluster.wait_ready)
        await until_sim(LAG_AT)
        report["lag"] = await _follows(http, centres, 15.0)
        step("the dashboard followed every centre")

    async def card_takes() -> None:
        """The same resident (one card) at every centre: a promised item at A and at
        c05, an ordinary one elsewhere; the simulated clerks serve them as their own."""
        await until_sim(dt.time(9, 5))
        for c in centres:
            item = CASE_ITEM if c.name in (A, "c05") else "SOC-001"
            await c.devices["kiosk-2"].send("take", item=item, resident=CARD, timeout=30)
            c.extra_tickets += 1
        step("the card took a ticket at every centre")

    async def the_case() -> None:
        """Accepted at A, routed to B's back office with pick-up at C, approved at B, picked
        up at C by card, handed over there: each centre ends with the case closed."""
        a, b, cc = by_name[A], by_name[B], by_name[C]
        for c in (a, b, cc):
            offices[c.name] = Office(c)

        def accepted_at_a() -> str | None:
            assert a.mirror is not None
            a.mirror.catch_up()
            return next((k.id for k in a.mirror.app.centre.cases.values()
                         if k.resident == CARD), None)

        case = await _until(accepted_at_a, timeout=90)
        step(f"case {case} accepted at {A}")
        r = await offices[A].request("POST", "/city/route", json={"case": case, "pickup": C})
        assert r.status_code == 200, r.text
        key = f"{A}/{case}"
        assert r.json()["key"] == key and r.json()["approver"] == B
        [at_b] = await _until(lambda: _card_cases(offices[B]), timeout=60)
        assert (at_b["key"], at_b["state"], at_b["pickup"]) == (key, "open", C)
        step(f"case at {B} as {at_b['case']}")
        r = await offices[B].request("POST", f"/cases/{at_b['case']}/approved",
                                   json={})
        assert r.status_code == 200, r.text
        step(f"approved at {B}")

        async def ready_at_c() -> dict[str, Any] | None:
            rows = await _card_cases(offices[C])
            return rows[0] if rows and rows[0]["state"] == "ready" else None

        at_c = await _until(ready_at_c, timeout=60)
        assert at_c["key"] == key
        res = await cc.devices["kiosk-2"].send("pickup", resident=CARD, timeout=30)
        cc.extra_tickets += 1
        report["pickup_ticket"] = res["ticket"]
        step(f"ready at {C}: pick-up ticket {res['ticket']}")

        def served_at_c() -> bool:
            assert cc.mirror is not None
            cc.mirror.catch_up()
            t = cc.mirror.app.centre.by_number.get(res["ticket"])
            return t is not None and t.state in (TicketState.SERVING, TicketState.DONE)

        await _until(served_at_c, timeout=90)  # a simulated clerk called and served it
        step(f"pick-up ticket served at {C}")
        r = await offices[C].request("POST", f"/cases/{at_c['case']}/handed_over",
                                   json={})
        assert r.status_code == 200, r.text
        step(f"handed over at {C}")
        for c in (a, b):
            await _until(lambda c=c: any(x["key"] == key and x["version"] == 3
                                         for x in c.ops("city_arrive")), timeout=60)
        step(f"closed at {A} and {B}")
        report["case"] = key

    async def card_tap() -> None:
        """The card tapped at c07's kiosk (MQTT, the node's `pickup` by card): nothing of
        it is ready here, and the answer lists its open cases elsewhere in the city."""
        await until_sim(dt.time(15, 0))
        with pytest.raises(DeviceError) as refused:
            await by_name["c07"].devices["kiosk-2"].send("pickup", resident=CARD, timeout=30)
        report["tap"] = refused.value.reply
        step("the card tapped at c07's kiosk")

    script: list[asyncio.Task[None]] = []
    try:
        async with contextlib.AsyncExitStack() as devices:
            for c in centres:
                await c.connect(devices)
            # Everything up: the day begins, at the same instant for every hub and for the
            # simulated people (the same formula from the same three numbers).
            wall = time.time() + 0.2
            open_gate(tier.gate, wall)
            clock = SoakClock(plan.at(demo.START), wall, SPEED)
            ready_at = time.monotonic() - t0
            script += [asyncio.create_task(outages()), asyncio.create_task(card_takes()),
                       asyncio.create_task(the_case()), asyncio.create_task(card_tap())]
            print(f"{ready_at:.1f} s: the city tier and the devices up: the day begins",
                  flush=True)
            days = [asyncio.create_task(c.day(clock, plan, seed=i + 1))
                    for i, c in enumerate(centres)]
            await asyncio.gather(*days)
            step(f"the simulated day over at every centre ({time.monotonic() - t0:.1f} s)")
            await asyncio.gather(*script)
            traffic_end = time.monotonic()
            last_sim = clock()
            first = await _converge(http, centres, traffic_end, 15.0)
        converged = max(first.values())
        for task in tasks:  # the exporters ran through it all
            assert not task.done(), task
        assert exporter_proc.poll() is None and ingest_proc.poll() is None
        assert router.poll() is None
        live = await _live(http)
        assert {r["devices_total"] for r in live.values()} == {DEVICE_TOTAL}, live
        cst = dt.timezone(dt.timedelta(hours=8))
        print(f"day {DAY}: everything up after {ready_at:.1f} s; the simulated day "
              f"08:50-{dt.datetime.fromtimestamp(last_sim, cst):%H:%M} in "
              f"{traffic_end - t0 - ready_at:.1f} s; mid-day lag (s): {report['lag']}")
        print("after the last service, each centre showed in (s):", first)
        # A district account sees its district only.
        http.cookies = await _login(tier.web_port, "east", "pw-east")
        east = (await http.get(f"/city/api/live?day={DAY}")).json()["centres"]
        assert {r["centre"] for r in east} == {c for c in CENTRES if DISTRICT[c] == "east"}
        page = await http.get("/city")
        assert page.status_code == 200 and "全市中心看板" in page.text
    finally:
        for t in script:
            t.cancel()
        await http.aclose()
        for o in offices.values():
            await o.aclose()
    try:
        assert converged < 5.0, f"the city dashboard took {converged:.1f} s"
        assert max(report["lag"].values()) < 5.0, report["lag"]
        # The cut-off centre: nothing crossed while cut, though it served all the while.
        assert report["cut_rows_after"] == report["cut_rows"], report
        assert report["cut_hub_tickets"] > report["cut_hub_before"], report  # it served

        # The case: each version once at each centre; closed everywhere.
        key = report["case"]
        arrived = {c: sorted(x["version"] for x in by_name[c].ops("city_arrive")
                             if x["key"] == key) for c in (A, B, C)}
        sent = {c: sorted(x["version"] for x in by_name[c].ops("city_sent")
                          if x["key"] == key) for c in (A, B, C)}
        assert arrived == {A: [2, 3], B: [1, 3], C: [1, 2]}, arrived
        assert sent == {A: [1], B: [2], C: [3]}, sent

        # The card tap at c07's kiosk: refused (nothing ready there), with the card's open
        # case at c05 (its promised item, accepted there) from the city's index; A's case,
        # closed, not; no token, no name, no number in it.
        tap = report["tap"]
        c05 = by_name["c05"].mirror
        assert c05 is not None
        [open_at_c05] = [k for k in c05.app.centre.cases.values() if k.resident == CARD]
        assert tap["code"] == "no_ready_case", tap
        assert [(r["key"], r["item"], r["state"], r["due_day"]) for r in tap["city"]] == [
            (f"c05/{open_at_c05.id}", CASE_ITEM, "open", open_at_c05.due_day)], tap
        assert CARD not in json.dumps(tap)

        # Nothing lost, nothing doubled: each centre's day in the city database is what its
        # hub journaled and what the simulator produced.
        counts: dict[str, dict[str, int]] = {}
        with citydb.connect(pg.url) as conn:
            for c in centres:
                assert c.mirror is not None and c.sim is not None and c.accepted is not None
                rows = conn.execute(
                    "SELECT ticket, ev FROM ticket_events WHERE centre = %s AND day = %s",
                    (c.name, DAY)).fetchall()
                rated = conn.execute("SELECT ticket FROM ratings WHERE centre = %s AND day = %s",
                                     (c.name, DAY)).fetchall()
                hub_ops, _ = journal_ops(c.mirror.journal, 0, DAY)
                sim = engine_outcomes(c.sim.result())
                tickets = c.mirror.app.centre.tickets
                issued = [t for t, ev in rows if ev == "issued"]
                done = [t for t, ev in rows if ev == "done"]
                counts[c.name] = {
                    "sim_tickets": sim["tickets"], "sim_served": sim["served"],
                    "sim_takes": c.accepted.ops["take"], "adopted": len(c.sim.day.adopted),
                    "hub_tickets": len(tickets), "hub_served": len(c.mirror.app.services),
                    "hub_ratings": hub_ops["rate"], "sim_ratings": c.accepted.ops["rate"],
                    "city_issued": len(issued), "city_served": len(done),
                    "city_ratings": len(rated)}
                n = counts[c.name]
                print(c.name, n, flush=True)
                assert not c.sim.errors, (c.name, c.sim.errors)
                # tickets: the simulator's residents' takes, and the test's own (the card's,
                # the pick-up's), which the simulated clerks served as theirs ("adopted")
                assert n["sim_takes"] > 10 and n["adopted"] == c.extra_tickets, n
                assert hub_ops["take"] == n["sim_takes"] + 1, n  # + the card's take
                assert n["sim_tickets"] == n["sim_takes"] + n["adopted"] == n["hub_tickets"] \
                    == n["city_issued"] == len(set(issued)), n
                assert set(issued) == set(tickets), c.name
                # served: every service the simulated clerks gave, as the hub recorded it
                assert n["sim_served"] == n["hub_served"] == n["city_served"], n
                assert Counter(done) == Counter(s["ticket"] for s in c.mirror.app.services)
                # ratings: each one the simulated residents gave, as the hub accepted it
                assert n["sim_ratings"] == n["hub_ratings"] == n["city_ratings"] \
                    == len(set(rated)), n
            # Residents cross as the city's tokens only: never the hub's own value, the
            # same resident the same token at every centre; the city's retention
            # (onewindow city-purge) removes them.
            tokens = conn.execute("SELECT centre, ticket, resident FROM ticket_events "
                                  "WHERE ev = 'issued' AND day = %s", (DAY,)).fetchall()
            own = {t.resident for c in centres for t in c.mirror.app.centre.tickets.values()
                   if t.resident}
            crossed = {r for _, _, r in tokens if r}
            assert all(len(r) == 24 and r not in own for r in crossed)
            assert len(crossed) == len(own)
            card = {r for centre, ticket, r in tokens
                    if by_name[centre].mirror.app.centre.tickets[ticket].resident == CARD}
            assert len(card) == 1, card  # the card at ten centres: one token
            later = DAY + dt.timedelta(days=2)
            assert citydb.forget_residents(conn, later) == sum(1 for *_, r in tokens if r)
            assert conn.execute("SELECT count(*) FROM ticket_events WHERE resident IS NOT "
                                "NULL").fetchone()[0] == 0
        # Every record the stream holds is in the database once: the distinct
        # Nats-Msg-Ids of the stream are the database's rows. (The stream itself may hold
        # a repeat: its dedupe window can miss one sent across a leader change; the
        # database's key is the guarantee.)
        ids = await _stream_msg_ids(cluster)
        with citydb.connect(pg.url) as conn:
            stored = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                         for t in ("ticket_events", "ratings", "case_events", "bookings",
                                   "day_summaries"))
        assert len(set(ids)) == stored
        print(f"stream: {len(ids)} records, {len(set(ids))} distinct, database: {stored} rows")
        await _redelivered_and_report(pg, tier.web_port)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        for ln in links:
            await ln.close()
    print(f"city e2e: {time.monotonic() - t0:.1f} s, dashboard converged in "
          f"{converged:.2f} s after the last service")


async def _redelivered_and_report(pg: Postgres, web_port: int) -> None:
    # A redelivered batch (an ingester crashed between its commit and its acks)
    # changes nothing: not the rows, not the dashboard's counters.
    with citydb.connect(pg.url) as conn:
        cur = conn.execute("SELECT centre, day, pos, part, at, ev, ticket, item, win, "
                           "wait_min FROM ticket_events WHERE centre = 'c01'")
        again = [{"v": 1, "centre": r[0], "day": r[1].isoformat(), "pos": r[2],
                  "part": r[3], "at": r[4], "kind": "ticket", "ev": r[5], "ticket": r[6],
                  "item": r[7], "window": r[8], "wait_min": r[9]} for r in cur]
        counts = conn.execute("SELECT * FROM city_day_counts ORDER BY 1, 2").fetchall()
        assert again and citydb.write(conn, again, set(), set()) == 0
        assert conn.execute("SELECT * FROM city_day_counts ORDER BY 1, 2"
                            ).fetchall() == counts
        # The monthly report from day summaries (two centres of the east, one of the
        # west; one summary delivered twice), for the city and for a district: in a
        # month of their own (2025-04), so that nothing the live hubs sent counts.
        day = "2025-04-15"
        summaries = [{"v": 1, "centre": c, "day": day, "pos": 10_000 + k, "part": 0,
                      "kind": "day", "at": 0.0, "tickets": 100, "served": 90,
                      "no_shows": 10, "waits": 90, "wait_sum_min": 900.0 * (k + 1),
                      "wait_p90_min": 20.0, "one_window": 80, "one_trip": 81,
                      "returned": 5, "ratings": 50, "rating_sum": 200,
                      "satisfied": 45 - k, "cases": 3}
                     for k, c in enumerate(["c01", "c03", "c02"])]
        assert citydb.write(conn, summaries + summaries[:1], set(), set()) == 3
        assert citydb.write(conn, _staff_month(), set(), set()) == 18
        for c, district in (("x1", "east"), ("x2", "west")):
            conn.execute("UPDATE city_centres SET name = %s, district = %s "
                         "WHERE centre = %s", (f"中心 {c}", district, c))
    month = day[:7]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}") as http:
        http.cookies = await _login(web_port, "city", "pw-city")
        rep = (await http.get(f"/city/report?month={month}&format=json")).json()
        by = {r["centre"]: r for r in rep["centres"]}
        assert {c for c, r in by.items() if r["days"]} == {"c01", "c02", "c03"}
        assert by["c01"]["avg_wait"] == 10.0 and by["c01"]["one_trip"] == 0.9
        assert by["c03"]["satisfaction"] == 0.88
        dist = {r["district"]: r for r in rep["districts"]}
        assert dist["*"]["tickets"] == 300 and dist["east"]["tickets"] == 200
        assert dist["east"]["avg_wait"] == round((900 + 1800) / 180, 1)
        html_page = await http.get(f"/city/report?month={month}&lang=zh-TW")
        assert "全市月報" in html_page.text
        # Staff five dimensions, cases and bookings of a month (2025-03: two centres'
        # records only), by centre and district, with no resident in them.
        r = await http.get("/city/report?month=2025-03&format=json")
        assert RESIDENT not in r.text and "resident" not in r.text
        rep = r.json()
        by = {r["centre"]: r for r in rep["centres"]}
        assert set(by) == {"x1", "x2"} and by["x1"]["tickets"] == 0
        assert by["x1"]["staff"] == {"clerks": 2, "quantity": 2, "efficiency": 0.867,
                                     "value": 2.0, "rating": 0.5, "quality": 0.667}
        alice, bob = by["x1"]["staff_clerks"]
        assert alice["clerk"] == "alice" and alice["rank"] == 1
        assert (alice["efficiency"], alice["rating"], alice["quality"]) == (1.0, 1.0, 0.5)
        assert (bob["efficiency"], bob["rating"], bob["quality"]) == (0.6, 0.0, 1.0)
        assert {k: by["x1"][k] for k in dashboard.EXTRA} == {
            "cases_accepted": 3, "cases_in_time": 1, "cases_overdue": 2,
            "bookings_booked": 8, "bookings_checked_in": 6, "bookings_no_show": 2}
        assert by["x2"]["staff"]["efficiency"] == 1.0 and by["x2"]["cases_accepted"] == 0
        dist = {r["district"]: r for r in rep["districts"]}
        assert dist["*"]["staff"] == {"clerks": 3, "quantity": 3, "efficiency": 0.9,
                                      "value": 3.0, "rating": 0.667, "quality": 0.667}
        assert dist["east"]["cases_overdue"] == 2 and dist["west"]["bookings_booked"] == 0
        html_page = await http.get("/city/report?month=2025-03&lang=zh-TW")
        assert "人員五維" in html_page.text and "按時辦結" in html_page.text
        assert "<tr data-centre='x1'><td>中心 x1</td><td>2</td><td>2</td><td>0.867" \
               in html_page.text
        http.cookies = await _login(web_port, "east", "pw-east")
        rep = (await http.get(f"/city/report?month={month}&format=json")).json()
        assert {r["centre"] for r in rep["centres"] if r["days"]} == {"c01", "c03"}
        rep = (await http.get("/city/report?month=2025-03&format=json")).json()
        assert [r["centre"] for r in rep["centres"]] == ["x1"]
