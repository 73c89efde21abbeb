"""The city tier under a simulated 220-centre day (issue 20): ingestion throughput, end-to-
end lag, the city dashboard's queries, and the database's size per centre-year.

    python -m onewindow.tools.bench.bench_city                       # 220 centres, 10x, 30 min
    python -m onewindow.tools.bench.bench_city --sim-minutes 540     # the whole day (54 min)
    python -m onewindow.tools.bench.bench_city --burst 200000        # then as fast as it goes

Every peer is real: a 3-node NATS JetStream cluster (tools/testkit/nats_cluster.py, R3
streams), a private PostgreSQL, and `onewindow city-ingest`'s Ingester in its own process.
No hubs: the centres' records are synthesised as their exporters would send them (the same
subjects, ``Nats-Msg-Id`` and JSON), each published with its acknowledgement awaited.

The day: `--visits` residents per centre between 08:30 and 17:30, arriving on a two-peak
curve (10:00, 14:30); each visit gives `issued`, `called` (wait ~ exponential, mean 12
min), `done` (service ~ 8 min) and, for half of them, a rating; each centre's floor state
(`citylive`) every 2 s of wall time. Fed at `--speed` times real time from `--start`
(default 09:30, the morning peak) for `--sim-minutes`.

Measured: records stored per second (the ingester's own count over the run), lag from the
record's publication to the commit of its row (p50/p99/max), the dashboard's two queries
(every centre's live row; a month's report for the city) timed every second while the
ingest runs (p50/p99), and the partitions' size (tables and indexes) per stored row,
extrapolated to a centre-year of 250 working days.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import multiprocessing as mp
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ...hub.city import citydb, streams
from ...hub.city import subjects as sj
from ...hub.core.measures import percentile
from ..testkit.nats_cluster import ADMIN_PASSWORD, INGEST_PASSWORD, NatsCluster
from ..testkit.testbed import Postgres

DAY = dt.date(2026, 11, 23)
TZ = dt.timezone(dt.timedelta(hours=8))
OPEN_MIN, CLOSE_MIN = 8 * 60 + 30, 17 * 60 + 30


def arrivals(rng: random.Random, visits: int) -> list[float]:
    """Minutes after midnight of `visits` arrivals on a two-peak day."""
    out = []
    while len(out) < visits:
        m = rng.uniform(OPEN_MIN, CLOSE_MIN - 20)
        w = 0.4 + math.exp(-((m - 600) / 60) ** 2) + 0.8 * math.exp(-((m - 870) / 70) ** 2)
        if rng.random() < w / 1.4:
            out.append(m)
    return sorted(out)


def day_events(centre: str, visits: int, seed: int) -> list[tuple[float, dict[str, Any]]]:
    """(simulated minute, city record) of one centre's day, in time order, positions as
    the journal would number them."""
    rng = random.Random(seed)
    events: list[tuple[float, str, dict[str, Any]]] = []
    for i, m in enumerate(arrivals(rng, visits)):
        ticket = f"{DAY:%Y%m%d}-A{i + 1:04d}"
        item = f"ITEM-{rng.randrange(190):03d}"
        wait = rng.expovariate(1 / 12)
        serve = rng.expovariate(1 / 8) + 1
        win = rng.randrange(1, 13)
        events.append((m, "ticket", {"ev": "issued", "ticket": ticket, "item": item,
                                     "priority": "normal", "extra_items": 0, "booked": False,
                                     "resident": f"{rng.getrandbits(96):024x}"}))
        events.append((m + wait, "ticket", {"ev": "called", "ticket": ticket, "item": item,
                                            "window": win, "recall": False,
                                            "wait_min": round(wait, 2)}))
        events.append((m + wait + serve, "ticket", {
            "ev": "done", "ticket": ticket, "window": win, "clerk": f"clerk-{win:02d}",
            "items": item, "start": 0.0, "end": 0.0}))
        if rng.random() < 0.5:
            events.append((m + wait + serve + 0.5, "rating", {
                "ticket": ticket, "score": rng.choice([5, 5, 5, 4, 4, 3, 2, 1]),
                "window": win, "clerk": f"clerk-{win:02d}"}))
    events.sort(key=lambda e: e[0])
    out = []
    for pos, (m, kind, fields) in enumerate(events, start=1):
        out.append((m, {"v": 1, "centre": centre, "pos": pos, "part": 0, "kind": kind,
                        "day": DAY.isoformat(), "at": 0.0, **fields}))
    return out


def summary_record(centre: str, pos: int) -> dict[str, Any]:
    return {"v": 1, "centre": centre, "pos": pos, "part": 0, "kind": "day",
            "day": DAY.isoformat(), "at": 0.0, "tickets": 3000, "served": 2950,
            "no_shows": 50, "waits": 2950, "wait_sum_min": 35400.0, "wait_p90_min": 27.6,
            "one_window": 2900, "one_trip": 2800, "returned": 150, "ratings": 1500,
            "rating_sum": 6300, "satisfied": 1400, "cases": 200}


def _partitions_size(conn: Any) -> float:
    """Bytes of the record tables' partitions (tables, indexes, TOAST)."""
    return float(conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_inherits i ON i.inhrelid = c.oid WHERE c.relkind = 'r' "
        "AND (c.relname LIKE 'ticket_events_%%' OR c.relname LIKE 'ratings_%%' "
        "OR c.relname LIKE 'day_summaries_%%')").fetchone()[0])


# ---- the ingester, in its own process -------------------------------------------------------
def _ingest_proc(servers: list[str], db_url: str, out: Any, stop_ev: Any) -> None:
    import gc

    from ...hub.city.ingest import Ingester, IngestOptions

    lags: list[float] = []
    # Per committed batch: (commit wall time, records, fetch -> commit s, acks s, max lag,
    # mean lag, records over 1 s, oldest record's wait before the fetch returned, max
    # stream -> commit s: the rest of the lag is publish -> stored in the stream).
    batches: list[tuple[float, ...]] = []
    gcs: list[tuple[float, int, float]] = []  # (wall time, generation, s) of each > 20 ms
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        elif (d := time.perf_counter() - gc_t0[0]) > 0.02:
            gcs.append((time.time(), info["generation"], d))

    gc.callbacks.append(on_gc)

    def on_commit(recs: list[dict[str, Any]], now: float) -> None:
        ls = [now - r["sent"] for r in recs if "sent" in r]
        lags.extend(ls)
        if ls:
            store = ing.stats.last_store_s
            stream = ing.stats.lags[-len(recs):]  # this batch's, from the stream's time
            batches.append((now, len(ls), store, time.time() - now, max(ls),
                            sum(ls) / len(ls), sum(1 for x in ls if x > 1.0),
                            max(ls) - store, max(stream, default=0.0)))

    ing = Ingester(IngestOptions(servers=servers, user=sj.INGEST_USER,
                                 password=INGEST_PASSWORD, db_url=db_url, batch=2000,
                                 create_streams=False), on_commit=on_commit)

    async def main() -> None:
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop_ev.is_set():
                await asyncio.sleep(0.2)
            stop.set()

        await asyncio.gather(ing.run(stop), watch())
        out.put({"stored": ing.stats.stored, "fetched": ing.stats.fetched,
                 "batches": ing.stats.batches, "live": ing.stats.live, "lags": lags,
                 "batch_log": batches, "gc": gcs})

    asyncio.run(main())


def stall_episodes(batches: list[tuple[float, ...]], over: float = 1.0, join: float = 2.0
                   ) -> list[dict[str, Any]]:
    """Runs of committed batches whose slowest record waited more than `over` seconds
    (batches closer than `join` s in one episode): when (wall time), how long, how many
    records waited more than 1 s, the worst lag, and the batches' store (fetch -> commit)
    and wait-before-fetch times."""
    eps: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for now, _n, store, acks, lmax, _mean, n_over, pre, *rest in batches:
        if lmax <= over:
            continue
        if cur is None or now - cur["end"] > join:
            cur = {"start": now - lmax, "end": now, "batches": 0, "records_over_1s": 0,
                   "lag_max_s": 0.0, "store_max_s": 0.0, "store_sum_s": 0.0,
                   "acks_max_s": 0.0, "wait_before_fetch_max_s": 0.0,
                   "stream_to_commit_max_s": 0.0}
            eps.append(cur)
        cur["end"] = now
        cur["batches"] += 1
        cur["records_over_1s"] += int(n_over)
        cur["lag_max_s"] = max(cur["lag_max_s"], lmax)
        cur["store_max_s"] = max(cur["store_max_s"], store)
        cur["store_sum_s"] += store
        cur["acks_max_s"] = max(cur["acks_max_s"], acks)
        cur["wait_before_fetch_max_s"] = max(cur["wait_before_fetch_max_s"], pre)
        if rest:
            cur["stream_to_commit_max_s"] = max(cur["stream_to_commit_max_s"], rest[0])
    return eps


def pg_log_events(path: Path) -> list[dict[str, Any]]:
    """Autovacuum/autoanalyze runs and checkpoints from a PostgreSQL log (its default
    prefix: the time first), each with its end time (wall) and duration."""
    import re

    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    lines = path.read_text(errors="replace").splitlines()
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\w+)")
    for i, line in enumerate(lines):
        m = stamp.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(f"{m[1]} {m[2]}".replace(" UTC", " +0000"),
                                 "%Y-%m-%d %H:%M:%S.%f %z").timestamp()
        what = None
        if "automatic vacuum of table" in line or "automatic analyze of table" in line:
            what = re.search(r"automatic (\w+) of table \"([^\"]+)\"", line)
            kind, name = (what[1], what[2]) if what else ("?", "?")
        elif "checkpoint complete" in line:
            kind, name = "checkpoint", ""
        elif "checkpoint starting" in line:
            kind, name = "checkpoint-start", line.split("checkpoint starting:")[-1].strip()
        else:
            continue
        tail = " ".join(lines[i:i + 14])
        el = re.search(r"elapsed: ([\d.]+) s", tail) if kind != "checkpoint" else \
            re.search(r"total=([\d.]+) s", line)
        out.append({"end": t, "kind": kind, "table": name,
                    "s": float(el[1]) if el else 0.0})
    return out


# ---- the feed --------------------------------------------------------------------------------
class Feed:
    def __init__(self, js_list: list[Any], inflight: int) -> None:
        self.js = js_list
        self.sem = asyncio.Semaphore(inflight)
        self.sent = 0
        self.retries = 0
        self.pub_lat: list[float] = []
        self.slow_pubs: list[tuple[float, float]] = []  # (wall time, s) of acks over 1 s
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, rec: dict[str, Any]) -> None:
        await self.sem.acquire()
        t = asyncio.create_task(self._one(rec))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _one(self, rec: dict[str, Any]) -> None:
        try:
            js = self.js[hash(rec["centre"]) % len(self.js)]
            subject = sj.record(rec["centre"], rec["kind"])
            while True:
                rec["sent"] = time.time()
                data = json.dumps(rec, separators=(",", ":")).encode()
                try:
                    t0 = time.monotonic()
                    await js.publish(subject, data, headers={
                        "Nats-Msg-Id": sj.msg_id(rec["centre"], rec["pos"], rec["part"])},
                        timeout=10)
                    self.pub_lat.append(d := time.monotonic() - t0)
                    if d > 1.0:
                        self.slow_pubs.append((time.time(), d))
                    break
                except Exception:
                    self.retries += 1
                    await asyncio.sleep(0.2)
            self.sent += 1
        finally:
            self.sem.release()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ow-bench-city-"))
    centres = [f"c{i:03d}" for i in range(1, args.centres + 1)]
    result: dict[str, Any] = {"centres": args.centres, "visits": args.visits,
                              "speed": args.speed, "sim_minutes": args.sim_minutes}
    pg_settings = {"log_autovacuum_min_duration": "0", "log_checkpoints": "on",
                   "log_timezone": "UTC"}
    with Postgres(settings=pg_settings) as pg, \
            NatsCluster(work / "nats", centres=centres) as cluster:
        ncs = [await cluster.connect(sj.ADMIN_USER, ADMIN_PASSWORD) for _ in range(4)]
        await streams.ensure_streams(ncs[0].jetstream(), replicas=3)
        with citydb.connect(pg.url) as conn:
            citydb.create(conn)
            for i, c in enumerate(centres):
                conn.execute("INSERT INTO city_centres VALUES (%s, %s, %s) ON CONFLICT DO "
                             "NOTHING", (c, f"中心 {c}", f"district-{i % 16:02d}"))
            # This month's and the next month's partitions exist before the first row (the
            # ingester makes them ahead too): their empty size is not counted per row.
            citydb.ensure_months(conn, {DAY.replace(day=1)}, set())
            size0 = _partitions_size(conn)
        ctx = mp.get_context("spawn")
        q, stop_ev = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=_ingest_proc, args=(cluster.urls, pg.url, q, stop_ev))
        proc.start()
        feed = Feed([nc.jetstream(timeout=10) for nc in ncs], args.inflight)
        print(f"generating {args.centres} centres x {args.visits} visits ...", flush=True)
        start = args.start_min
        end = start + args.sim_minutes
        todo: list[tuple[float, dict[str, Any]]] = []
        extra: list[dict[str, Any]] = []  # --burst: records from outside the window
        per_day = 0
        per_burst = math.ceil(args.burst / args.centres) if args.burst else 0
        for i, c in enumerate(centres):
            evs = day_events(c, args.visits, i)
            per_day += len(evs)
            todo += [(m, r) for m, r in evs if start <= m < end]
            extra += [r for m, r in evs if not start <= m < end][:per_burst]
        todo.sort(key=lambda e: e[0])
        result["records_fed"] = len(todo)
        result["records_per_centre_day"] = per_day / args.centres
        print(f"{len(todo)} records over {args.sim_minutes} simulated minutes "
              f"({args.sim_minutes / args.speed:.1f} min at {args.speed}x)", flush=True)

        dash_live: list[float] = []
        dash_month: list[float] = []
        stop = asyncio.Event()

        async def dashboard() -> None:
            from ...hub.city.dashboard import live_rows, month_rows

            who = {"role": "city", "district": None}
            conn = citydb.connect(pg.url)
            try:
                while not stop.is_set():
                    t0 = time.monotonic()
                    await asyncio.to_thread(live_rows, conn, who, DAY, time.time())
                    dash_live.append(time.monotonic() - t0)
                    t0 = time.monotonic()
                    await asyncio.to_thread(month_rows, conn, who, DAY.replace(day=1))
                    dash_month.append(time.monotonic() - t0)
                    await asyncio.sleep(1.0)
            finally:
                conn.close()

        async def live() -> None:
            js = feed.js[0]
            while not stop.is_set():
                for c in centres:
                    doc = {"v": 1, "centre": c, "pos": 0, "at": time.time(), "day": "",
                           "waiting": 12, "longest_min": 20.5, "windows_open": 10,
                           "lines": {}, "windows": [],
                           "devices": {"online": 40, "total": 41, "ts": time.time()},
                           "alerts": []}
                    await js.publish(sj.live(c), json.dumps(doc).encode())
                await asyncio.sleep(2.0)

        side = [asyncio.create_task(dashboard()), asyncio.create_task(live())]
        t0 = time.monotonic()
        t0_wall = time.time()
        behind = 0.0
        for m, rec in todo:
            due = t0 + (m - start) * 60.0 / args.speed
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                behind = max(behind, -wait)
            await feed.publish(rec)
        await feed.drain()
        fed_s = time.monotonic() - t0
        result["feed_seconds"] = round(fed_s, 1)
        result["feed_max_behind_s"] = round(behind, 2)
        result["publish_ack_p99_ms"] = round(1000 * percentile(sorted(feed.pub_lat), 99), 1)
        result["publish_ack_max_ms"] = round(1000 * max(feed.pub_lat, default=0.0), 1)
        result["publish_acks_over_1s"] = len(feed.slow_pubs)
        # Then each centre's day summary (one per centre-day).
        for i, c in enumerate(centres):
            await feed.publish(summary_record(c, 10_000_000 + i))
        await feed.drain()
        tb = 0.0
        if args.burst:
            print(f"burst: {args.burst} records as fast as they go", flush=True)
            tb = time.monotonic()
            for rec in extra:
                await feed.publish(rec)
            await feed.drain()
            result["burst_records"] = len(extra)
            result["burst_publish_per_s"] = round(len(extra) / (time.monotonic() - tb))
        # Until the ingester has stored everything published.
        total = feed.sent
        with citydb.connect(pg.url) as conn:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                n = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in ("ticket_events", "ratings", "day_summaries"))
                if n >= total:
                    break
                await asyncio.sleep(0.5)
            result["rows_stored"] = n
            done_s = time.monotonic() - t0
            if args.burst:  # published and stored, from the burst's first publish
                result["burst_stored_per_s"] = round(len(extra) / (time.monotonic() - tb))
            stop.set()
            for t in side:
                t.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            size = _partitions_size(conn) - size0
            shutil.copy(pg.log_path, work / "pg.log")
        stop_ev.set()
        stats = q.get(timeout=60)
        proc.join(30)
        stats["slow_pubs"] = feed.slow_pubs
        report_stalls(stats, work, t0_wall, start, args.speed, result)
        lags = sorted(stats["lags"])
        result["ingest_rows_per_s"] = round(stats["stored"] / done_s)
        result["ingest_stored"] = stats["stored"]
        result["offered_rate_per_s"] = round(len(todo) / fed_s)
        result["lag_p50_ms"] = round(1000 * percentile(lags, 50), 1)
        result["lag_p99_ms"] = round(1000 * percentile(lags, 99), 1)
        result["lag_max_ms"] = round(1000 * lags[-1], 1) if lags else None
        result["dashboard_live_p50_ms"] = round(1000 * percentile(sorted(dash_live), 50), 1)
        result["dashboard_live_p99_ms"] = round(1000 * percentile(sorted(dash_live), 99), 1)
        result["report_month_p50_ms"] = round(1000 * percentile(sorted(dash_month), 50), 1)
        result["report_month_p99_ms"] = round(1000 * percentile(sorted(dash_month), 99), 1)
        per_row = size / max(1, n)
        result["bytes_per_row"] = round(per_row, 1)
        rows_year = result["records_per_centre_day"] * 250 + 250  # + day summaries
        result["mb_per_centre_year"] = round(per_row * rows_year / 1e6, 1)
        result["gb_city_year"] = round(per_row * rows_year * args.centres / 1e9, 1)
        for nc in ncs:
            await nc.close()
    return result


def report_stalls(stats: dict[str, Any], work: Path, t0: float, start_min: float,
                  speed: float, result: dict[str, Any]) -> None:
    """The batches' log (work/batches.json) and a short summary of the episodes where
    the lag exceeded 1 s, each with the PostgreSQL autovacuum/analyze runs and checkpoints
    and the ingester's GC pauses that overlapped it (printed; counts in `result`)."""
    batches = stats["batch_log"]
    events = pg_log_events(work / "pg.log")
    (work / "batches.json").write_text(json.dumps(
        {"t0": t0, "batches": batches, "gc": stats["gc"], "pg": events,
         "slow_pubs": stats["slow_pubs"]}))
    eps = stall_episodes(batches)
    result["batches"] = len(batches)
    result["stall_episodes"] = len(eps)
    result["stall_records_over_1s"] = sum(e["records_over_1s"] for e in eps)
    result["autovacuums"] = sum(1 for e in events if e["kind"] == "vacuum")
    result["autoanalyzes"] = sum(1 for e in events if e["kind"] == "analyze")
    result["checkpoints"] = sum(1 for e in events if e["kind"] == "checkpoint")
    if batches:
        stores = sorted(b[2] for b in batches)
        result["batch_store_p50_ms"] = round(1000 * percentile(stores, 50), 1)
        result["batch_store_p99_ms"] = round(1000 * percentile(stores, 99), 1)
        result["batch_store_max_ms"] = round(1000 * stores[-1], 1)
    print(f"{len(eps)} episodes with lag > 1 s (log: {work / 'batches.json'})")
    for e in eps[:40]:
        rel = e["start"] - t0
        sim = start_min + rel * speed / 60
        near = [f"{x['kind']} {x['table']} {x['s']:.1f}s" for x in events
                if x["end"] >= e["start"] - 1 and x["end"] - x["s"] <= e["end"] + 1]
        gcs = [f"gc{g} {d:.2f}s" for w, g, d in stats["gc"]
               if e["start"] - 1 <= w <= e["end"] + 1]
        pubs = [d for w, d in stats["slow_pubs"] if e["start"] - 1 <= w <= e["end"] + 1]
        if pubs:
            gcs.append(f"{len(pubs)} publish acks > 1 s (max {max(pubs):.2f}s)")
        print(f"  +{rel:7.1f}s (sim {int(sim) // 60:02d}:{int(sim) % 60:02d}) "
              f"{e['end'] - e['start']:5.1f}s long, {e['records_over_1s']:6d} recs > 1 s, "
              f"lag max {e['lag_max_s']:.2f}s, store max {e['store_max_s']:.2f}s "
              f"(sum {e['store_sum_s']:.2f}s over {e['batches']} batches), acks max "
              f"{e['acks_max_s']:.2f}s, wait before fetch max "
              f"{e['wait_before_fetch_max_s']:.2f}s, stream -> commit max "
              f"{e['stream_to_commit_max_s']:.2f}s; {'; '.join(near + gcs) or '-'}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--centres", type=int, default=220)
    ap.add_argument("--visits", type=int, default=3000)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--start-min", type=float, default=9 * 60 + 30)
    ap.add_argument("--sim-minutes", type=float, default=30.0)
    ap.add_argument("--inflight", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=0)
    args = ap.parse_args()
    res = asyncio.run(run(args))
    print(json.dumps(res, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
