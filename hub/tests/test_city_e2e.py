"""The city tier end to end (issue 20), on one machine, every peer real: ten centre hubs
(processes, each with its own Mosquitto and SQLite journal) and their exporters, a 3-node
NATS JetStream cluster, a PostgreSQL, the ingester and the city web (processes).

Scripted traffic at every centre; one centre's uplink to the city is cut while its hub
keeps serving, then restored; one city node is SIGKILLed mid-run. Then: every ticket each
hub acknowledged is in the city database exactly once (issued, and served where it was),
nothing of another kind doubled either, and the city dashboard shows every centre's queue
as its hub has it within a few seconds."""

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

import aiomqtt
import httpx
import pytest

from onewindow.hub.city import citydb, dashboard
from onewindow.hub.city.export import Exporter, Options
from onewindow.hub.config import load as load_config
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.nats_cluster import INGEST_PASSWORD, NatsCluster
from onewindow.tools.testkit.ports import quiet_port
from onewindow.tools.testkit.tcpcut import CuttableLink
from onewindow.tools.testkit.testbed import (
    HubProcess,
    Mosquitto,
    Postgres,
    offset_for_local,
    terminate,
    write_config,
)

CENTRES = [f"c{i:02d}" for i in range(1, 11)]
CUT = "c10"
PROC = "c09"  # its exporter is the `onewindow city-export` command, killed and restarted
WINDOWS = 2
TAKES = 6  # per centre and phase
DISTRICT = {c: ("east" if i % 2 == 0 else "west") for i, c in enumerate(CENTRES)}  # c01 east


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


async def _hub_ready(centre: str, port: int, timeout: float = 60.0) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe(proto.hub_topic(centre), qos=1)
        async with asyncio.timeout(timeout):
            async for m in sub.messages:
                if json.loads(m.payload).get("state") == "ready":
                    return


async def _consumers_ready(cluster: NatsCluster, timeout: float = 60.0) -> None:
    """Until the ingester has made the streams and its durable consumers."""
    nc = await cluster.connect()
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await nc.jetstream().consumer_info("CITY_LIVE", "city-ingest-live")
                    return
                except Exception:  # not yet
                    await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def _stream_msg_ids(cluster: NatsCluster) -> list[str]:
    """Every message's Nats-Msg-Id in stream CITY, read through an ephemeral consumer."""
    nc = await cluster.connect()
    try:
        js = nc.jetstream()
        total = (await js.stream_info("CITY")).state.messages
        sub = await js.pull_subscribe("city.>", stream="CITY")
        ids: list[str] = []
        async with asyncio.timeout(30):
            while len(ids) < total:
                try:
                    msgs = await sub.fetch(500, timeout=1.0)
                except Exception:  # nothing in this second: fetch again
                    continue
                for m in msgs:
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


async def _converge(http: httpx.AsyncClient, centres: list[Centre], since: float,
                    limit: float) -> dict[str, float]:
    """Poll the city dashboard until it shows each of `centres` as its hub has it (queue,
    tickets issued today, served); the seconds after `since` at which each first did."""
    want = {c.name: (c.waiting, len(c.taken), c.done) for c in centres}
    first: dict[str, float] = {}
    seen: dict[str, tuple[int, int, int]] = {}
    deadline = since + limit
    while len(first) < len(want) and time.monotonic() < deadline:
        live = (await http.get("/city/api/live")).json()
        seen = {r["centre"]: (r["waiting"], r["issued"], r["served"])
                for r in live["centres"]}
        for c, w in want.items():
            if seen.get(c) == w:
                first.setdefault(c, round(time.monotonic() - since, 2))
        if len(first) < len(want):
            await asyncio.sleep(0.1)
    assert len(first) == len(want), {c: (seen.get(c), w) for c, w in want.items()
                                     if c not in first}
    return first


class Centre:
    def __init__(self, name: str, tmp, catalog) -> None:
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir()
        self.broker = Mosquitto(self.dir / "broker").start()
        self.config = write_config(self.dir / "centre.toml", name, self.broker.port,
                                   self.dir / "hub.db", windows=WINDOWS, catalog=catalog,
                                   utc_offset_minutes=offset_for_local("12:00"))
        self.hub = HubProcess(self.config, self.dir / "hub.log").start()
        self.taken: list[str] = []  # ticket numbers the hub acknowledged
        self.done = 0
        self.called = 0

    async def traffic(self, rng: random.Random, takes: int) -> None:
        port = self.broker.port
        async with SimDevice(self.name, "box-1", "box", "127.0.0.1", port) as box, \
                SimDevice(self.name, "kp-1", "keypad", "127.0.0.1", port, window=1) as kp:
            if not self.taken:
                await kp.send("open", timeout=30)
            for _ in range(takes):
                # The hub's keyed card hash (the same resident at every centre: the first
                # take of each run), never a card number.
                k = len(self.taken)
                res = await box.send("take", item=rng.choice(["SOC-1", "MED-1", "CIV-1"]),
                                     resident=f"card-{k}" if k in (0, TAKES) else
                                     f"card-{self.name}-{k}", timeout=30)
                self.taken.append(res["ticket"])
            for _ in range(takes // 2):  # half served, half left waiting
                try:
                    await kp.send("call", timeout=30)
                except DeviceError as e:
                    assert e.code == "queue_empty", e.reply
                    break
                self.called += 1
                await kp.send("start", timeout=30)
                await kp.send("complete", timeout=30)
                self.done += 1

    @property
    def waiting(self) -> int:
        return len(self.taken) - self.called

    def stop(self) -> None:
        self.hub.stop()
        self.broker.stop()


@pytest.fixture
def city_tier(tmp_path, small_catalog_file):
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(Postgres())
        cluster = stack.enter_context(NatsCluster(tmp_path / "nats", centres=CENTRES))
        web_port = quiet_port()
        env = dict(os.environ, OW_CITY_WEB_SECRET="s3cret", PYTHONUNBUFFERED="1")
        with open(tmp_path / "web.log", "wb") as log:
            web = subprocess.Popen([sys.executable, "-m", "onewindow.hub.cli", "city-web",
                                    "--db", pg.url, "--port", str(web_port), "--catalog",
                                    str(small_catalog_file)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        stack.callback(terminate, web)
        centres: list[Centre] = []
        stack.callback(lambda: [c.stop() for c in centres])
        for c in CENTRES:
            centres.append(Centre(c, tmp_path, small_catalog_file))
        spawned: list[subprocess.Popen[bytes]] = []
        stack.callback(lambda: [terminate(p) for p in spawned])

        def spawn(cmd: list[str], env: dict[str, str], log) -> subprocess.Popen[bytes]:
            """A command of the city tier as its own process, stopped at the end."""
            with open(log, "ab") as out:
                spawned.append(subprocess.Popen(cmd, env=env, stdout=out,
                                                stderr=subprocess.STDOUT))
            return spawned[-1]

        yield pg, cluster, centres, web_port, spawn


async def test_ten_centres_a_cut_off_centre_and_a_killed_city_node(city_tier, tmp_path):
    pg, cluster, centres, web, spawn = city_tier
    t0 = time.monotonic()
    await asyncio.gather(*(_hub_ready(c.name, c.broker.port) for c in centres))
    with citydb.connect(pg.url) as conn:
        citydb.create(conn)
        for c in CENTRES:
            conn.execute("INSERT INTO city_centres (centre, name, district) VALUES "
                         "(%s, %s, %s)", (c, f"中心 {c}", DISTRICT[c]))
    stop = asyncio.Event()
    # The ingester: the real command, its own process (SIGKILLed mid-run below).
    ingest_cmd = [sys.executable, "-m", "onewindow.hub.cli", "city-ingest", "--nats",
                  ",".join(cluster.urls), "--db", pg.url]
    ingest_env = dict(os.environ, OW_CITY_PASSWORD=INGEST_PASSWORD, PYTHONUNBUFFERED="1")
    ingest_log = tmp_path / "city-ingest.log"
    ingest_proc = await asyncio.to_thread(spawn, ingest_cmd, ingest_env, ingest_log)
    await _consumers_ready(cluster)  # it made the streams and its consumers
    tasks: list[asyncio.Task[None]] = []
    links = [await CuttableLink(n.port).start() for n in cluster.nodes]
    exporters = {}
    proc_centre = next(c for c in centres if c.name == PROC)
    exporter_cmd = [sys.executable, "-m", "onewindow.hub.cli", "city-export", "-c",
                    str(proc_centre.config), "--nats", ",".join(cluster.urls), "--state",
                    str(proc_centre.dir / "city-export"), "--snapshot-every", "0.3"]
    exporter_env = dict(os.environ, OW_CITY_PASSWORD=cluster.centres[PROC],
                        OW_CITY_TOKEN_KEY="city-key", PYTHONUNBUFFERED="1")
    exporter_log = proc_centre.dir / "city-export.log"
    exporter_proc = await asyncio.to_thread(spawn, exporter_cmd, exporter_env, exporter_log)
    for c in centres:
        if c.name == PROC:
            continue
        servers = ([f"nats://127.0.0.1:{ln.port}" for ln in links] if c.name == CUT
                   else cluster.urls)
        exporters[c.name] = Exporter(load_config(c.config), Options(
            servers=servers, user=f"centre-{c.name}", password=cluster.centres[c.name],
            state_dir=c.dir / "city-export", token_key=b"city-key", live_every=0.5,
            poll=0.05))
        tasks.append(asyncio.create_task(exporters[c.name].run(stop)))
    web_port = web
    try:
        with citydb.connect(pg.url) as conn:
            from onewindow.hub.city.dashboard import set_user

            set_user(conn, "city", "pw-city", "city", None)
            set_user(conn, "east", "pw-east", "district", "east")
        cookies = await _login(web_port, "city", "pw-city")
        rng = random.Random(20)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", cookies=cookies)
        # Phase 1: traffic everywhere; the cut centre's uplink down; a city node SIGKILLed
        # in the middle of it (its streams' leaders with it: an election follows).
        for ln in links:
            ln.cut()
        phase1 = asyncio.gather(*(c.traffic(rng, TAKES) for c in centres))
        await asyncio.sleep(0.3)
        cluster.stop_node(1, kill=True)
        # One centre's exporter (the real command) SIGKILLed in the middle too, and
        # started again: its replica comes back from its snapshot and the journal.
        exporter_proc.kill()
        ingest_proc.kill()  # and the ingester: what it stored but had not acknowledged
        await asyncio.to_thread(exporter_proc.wait)  # comes again, and is dropped
        await asyncio.to_thread(ingest_proc.wait)
        exporter_proc = await asyncio.to_thread(spawn, exporter_cmd, exporter_env,
                                                exporter_log)
        ingest_proc = await asyncio.to_thread(spawn, ingest_cmd, ingest_env, ingest_log)
        await phase1
        t1 = time.monotonic()
        others = [c for c in centres if c.name != CUT]
        after_kill = await _converge(http, others, t1, 30.0)
        # The cut-off centre served all the while; nothing of it reached the city.
        cut = next(c for c in centres if c.name == CUT)
        assert len(cut.taken) == TAKES and cut.done == TAKES // 2
        with citydb.connect(pg.url) as conn:
            n_cut = conn.execute("SELECT count(*) FROM ticket_events WHERE centre = %s",
                                 (CUT,)).fetchone()[0]
        assert n_cut == 0, "the cut-off centre's records crossed a cut link"
        # Phase 2: the node back, the link back, more traffic everywhere: the cut centre
        # catches up while it goes on, and the dashboard follows every centre.
        cluster.start_node(1)
        cluster.wait_ready()
        for ln in links:
            ln.restore()
        await asyncio.gather(*(c.traffic(rng, TAKES // 2) for c in centres))
        traffic_end = time.monotonic()
        first = await _converge(http, centres, traffic_end, 15.0)
        converged = max(first.values())
        for task in tasks:  # the exporters and the ingester ran through it all
            assert not task.done(), task
        assert exporter_proc.poll() is None and ingest_proc.poll() is None
        # Device health came through too: each centre's fleet (6 devices in its config).
        live = (await http.get("/city/api/live")).json()["centres"]
        assert {r["devices_total"] for r in live} == {6}, live
        print("after the node's kill, each centre showed in (s):", after_kill)
        print("after the last traffic, each centre showed in (s):", first)
        try:
            # A district account sees its district only.
            http.cookies = await _login(web_port, "east", "pw-east")
            east = (await http.get("/city/api/live")).json()["centres"]
            assert {r["centre"] for r in east} == {c for c in CENTRES if DISTRICT[c] == "east"}
            page = await http.get("/city")
            assert page.status_code == 200 and "全市中心看板" in page.text
        finally:
            await http.aclose()
        assert converged < 5.0, f"the city dashboard took {converged:.1f} s"

        # Nothing lost, nothing doubled: each acknowledged ticket issued once in the city.
        with citydb.connect(pg.url) as conn:
            for c in centres:
                rows = conn.execute(
                    "SELECT ticket, ev FROM ticket_events WHERE centre = %s", (c.name,)
                ).fetchall()
                issued = [t for t, ev in rows if ev == "issued"]
                assert len(issued) == len(set(issued)) == len(c.taken), c.name
                assert sorted(t.split("-")[1] for t in issued) == sorted(c.taken), c.name
                assert sum(1 for _, ev in rows if ev == "done") == c.done, c.name
            # Residents cross as the city's tokens only: never the hub's own value, the
            # same resident the same token at every centre; the city's retention
            # (onewindow city-purge) removes them.
            tokens = conn.execute("SELECT centre, ticket, resident FROM ticket_events "
                                  "WHERE ev = 'issued'").fetchall()
            assert all(r and len(r) == 24 and not r.startswith("card") for _, _, r in tokens)
            assert len({r for _, _, r in tokens}) == sum(len(c.taken) for c in centres) - 18
            firsts = {r for (r,) in conn.execute(
                "SELECT DISTINCT ON (centre) resident FROM ticket_events WHERE ev = 'issued' "
                "ORDER BY centre, pos")}
            assert len(firsts) == 1, firsts  # card-0 at ten centres: one token
            later = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
            assert citydb.forget_residents(conn, later) == len(tokens)
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
        print(f"stream: {len(ids)} messages, {len(set(ids))} distinct records, "
              f"database: {stored} rows")

        # A redelivered batch (an ingester crashed between its commit and its acks)
        # changes nothing: not the rows, not the dashboard's counters.
        with citydb.connect(pg.url) as conn:
            cur = conn.execute("SELECT centre, day, pos, part, at, ev, ticket, item, win, "
                               "wait_min FROM ticket_events WHERE centre = 'c01'")
            again = [{"v": 1, "centre": r[0], "day": r[1].isoformat(), "pos": r[2],
                      "part": r[3], "at": r[4], "kind": "ticket", "ev": r[5], "ticket": r[6],
                      "item": r[7], "window": r[8], "wait_min": r[9]} for r in cur]
            counts = conn.execute("SELECT * FROM city_day_counts ORDER BY 1, 2").fetchall()
            assert citydb.write(conn, again, set(), set()) == 0
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
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        for ln in links:
            await ln.close()
    print(f"city e2e: {time.monotonic() - t0:.1f} s, dashboard converged in "
          f"{converged:.2f} s after the traffic")
