"""Hub benchmarks (stage 1). Prints a table; results go in docs/benchmarks.md.

    python -m onewindow.tools.bench.bench_hub            # everything, ~1 minute
    python -m onewindow.tools.bench.bench_hub --quick    # smaller counts
    python -m onewindow.tools.bench.bench_hub --only calls        # 3. at ~300 calls/s only
    python -m onewindow.tools.bench.bench_hub --only hub-calls    # ... the hub's row alone

1. core: dispatch operations per second, in memory (take / call / start / complete mix)
2. durable: the hub's app layer + journal, one commit per operation and group commits of 64,
   SQLite synchronous=NORMAL (survives a killed process) and FULL (fsync per commit); and
   one call's own work timed back to back and with the hub idle between calls (`bench_gap`)
3. call latency: a keypad's "call" event published -> the window's display state received,
   through a real Mosquitto and a hub process, 30 windows calling concurrently; beside it
   the broker's own publish -> receive round trip measured by the same client in the same run
   and a do-nothing relay process; for the relay and the hub also their CPU time per call
   (/proc, over the call phase): what one call costs the process the display waits for
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiomqtt

from ...hub.app import HubApp
from ...hub.catalog import load_catalog
from ...hub.core import commands as c
from ...hub.core.centre import Centre
from ...hub.core.centre_config import CentreConfig, WindowSpec
from ...hub.core.rejected import Rejected
from ...hub.devices import DeviceSpec, Registry
from ...hub.mqtt.broker import NO_DELAY
from ...hub.store.journal import Journal
from ...protocol import ow_protocol as proto
from ..testkit.testbed import HubProcess, Mosquitto, write_config

CENTRE = "bench"
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def _centre(windows: int) -> Centre:
    cat = load_catalog()
    cfg = CentreConfig(CENTRE, tuple(WindowSpec(n) for n in range(1, windows + 1)))
    core = Centre(cat, cfg)
    for n in range(1, windows + 1):
        core.apply(c.OpenWindow(n, f"clerk{n}"), T0)
    return core


def _items(core: Centre) -> list[str]:
    return sorted(i.id for i in core.catalog.items.values() if "comprehensive" in i.window_kinds)


def bench_core(n_ops: int, windows: int = 30) -> dict[str, float]:
    """A steady queue (~60 waiting): for every ticket taken one is called, started, done."""
    core = _centre(windows)
    items = _items(core)
    now = T0
    for i in range(60):
        core.apply(c.TakeTicket(items[i % len(items)]), now)
    ops = 0
    started = time.perf_counter()
    i = 0
    while ops < n_ops:
        now += 0.5
        w = i % windows + 1
        core.apply(c.TakeTicket(items[(i * 7) % len(items)],
                                priority="priority" if i % 10 == 0 else "normal"), now)
        try:
            core.apply(c.CallNext(w), now)
            core.apply(c.Start(w), now)
            core.apply(c.Complete(w), now)
            ops += 4
        except Rejected:
            ops += 1
        i += 1
    elapsed = time.perf_counter() - started
    return {"ops": ops, "seconds": elapsed, "ops_per_s": ops / elapsed}


def _app(windows: int, journal: Journal) -> HubApp:
    core = _centre(windows)
    devices = [DeviceSpec("box-1", "box")] + [
        DeviceSpec(f"kp-{n}", "keypad", n) for n in range(1, windows + 1)]
    app = HubApp(core, Registry(devices), "bench")
    app.pos = journal.last_pos()
    return app


def bench_durable(n_ops: int, fsync: bool, batch: int, windows: int = 30) -> dict[str, float]:
    """Device events through HubApp.handle (decode, dedupe, core, render) and the journal."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db", fsync=fsync)
        app = _app(windows, journal)
        items = _items(app.centre)
        seqs = {f"kp-{n}": 0 for n in range(1, windows + 1)}
        box_seq = 0
        now = T0
        pending: list = []
        done = 0
        started = time.perf_counter()
        i = 0
        while done < n_ops:
            now += 0.2
            if i % 2 == 0:
                box_seq += 1
                topic = proto.device_topic(CENTRE, "box-1", "evt")
                payload = proto.encode("evt", proto.event("box-1", box_seq, "take",
                                                          item=items[i % len(items)]))
            else:
                dev = f"kp-{(i // 2) % windows + 1}"
                seqs[dev] += 1
                topic = proto.device_topic(CENTRE, dev, "evt")
                payload = proto.encode("evt", proto.event(dev, seqs[dev], "call"))
            step = app.handle(topic, payload, now)
            pending += step.records
            done += 1
            if done % batch == 0:
                journal.append(pending)
                pending = []
            i += 1
        journal.append(pending)
        elapsed = time.perf_counter() - started
        rows = journal.last_pos()
        journal.close()
    return {"ops": done, "seconds": elapsed, "ops_per_s": done / elapsed, "rows": rows}


def bench_gap(n_calls: int, gap: float, windows: int = 30) -> dict[str, float]:
    """One call's own work in the hub (HubApp.handle, then its record's journal commit; the
    wait predictor's learning from it, which the runner does once the messages are out, is
    timed apart), timed per call with 1,000 waiting: back to back (`gap` 0), or with the
    thread asleep `gap` s before each, as the hub sits idle between the calls of 30 windows at
    ~300/s.
    On this shared 2-core VM the same work costs ~3x after a few ms idle (caches and
    predictors gone cold: a 3 ms busy loop instead of the sleep costs the same), which is
    where the hub's ~1 ms of CPU per call in the latency rows comes from."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db")
        app = _app(windows, journal)
        now = T0
        recs = []
        for i in range(1, n_calls + 1000):  # a ticket for each call, 1,000 left waiting
            now += 0.05
            recs += app.handle(proto.device_topic(CENTRE, "box-1", "evt"), proto.encode(
                "evt", proto.event("box-1", i, "take", item="SOC-001")), now).records
        journal.append(recs)
        seqs = dict.fromkeys(range(1, windows + 1), 0)
        took: list[float] = []
        after: list[float] = []  # the wait predictor learning from it, after its messages
        for i in range(n_calls):
            n = i % windows + 1
            seqs[n] += 1
            topic = proto.device_topic(CENTRE, f"kp-{n}", "evt")
            payload = proto.encode("evt", proto.event(f"kp-{n}", seqs[n], "call"))
            now += 0.0033
            if gap:
                time.sleep(gap)
            t = time.perf_counter()
            journal.append(app.handle(topic, payload, now).records)
            t1 = time.perf_counter()
            app.settle_waits()  # as the runner does once the call's messages are out
            took.append((t1 - t) * 1000)
            after.append((time.perf_counter() - t1) * 1000)
        journal.close()
    return {"p50": statistics.median(took), "p99": _pct(took, 99),
            "after_p50": statistics.median(after), "after_p99": _pct(after, 99)}


def bench_replay(n_records: int, windows: int = 30) -> dict[str, float]:
    """Start-up cost: rebuild state from a journal of n records."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db")
        app = _app(windows, journal)
        items = _items(app.centre)
        now, recs = T0, []
        for i in range(n_records):
            now += 0.2
            cmd = c.TakeTicket(items[i % len(items)]) if i % 2 == 0 else c.CallNext(
                (i // 2) % windows + 1)
            with contextlib.suppress(Rejected):
                recs += app.operate(cmd, now).records
        journal.append(recs)
        fresh = _app(windows, journal)
        fresh.pos = 0
        started = time.perf_counter()
        n = fresh.replay(journal.read())
        elapsed = time.perf_counter() - started
        assert fresh.centre.to_dict() == app.centre.to_dict()
        journal.close()
    return {"records": n, "seconds": elapsed, "records_per_s": n / elapsed}


async def _relay(port: int) -> None:
    """The floor: a do-nothing aiomqtt process that answers each call with a display state.
    Same client library, same topics, no core, no journal."""
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NO_DELAY,
                              max_inflight_messages=1000) as client:
        client.pending_calls_threshold = 10**6
        await client.subscribe(f"ow/{CENTRE}/dev/+/evt", qos=1)
        await client.publish(proto.hub_topic(CENTRE), proto.encode("hub", {"state": "ready"}),
                             qos=1, retain=True)
        pending: set[asyncio.Future[None]] = set()
        async for m in client.messages:
            dev = m.topic.value.split("/")[3]
            if dev.startswith("kp-"):
                n = int(dev[3:])
                msg = {"window": n, "rev": 1, "state": "calling", "ticket": "A001"}
                task = asyncio.ensure_future(client.publish(
                    proto.display_topic(CENTRE, n), proto.encode("display", msg), qos=1))
                pending.add(task)
                task.add_done_callback(pending.discard)


def _cpu_s(pid: int | None) -> float:
    """utime + stime of process `pid` so far (0 for none: the broker mode)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _call_latency(port: int, windows: int, rounds: int, think: float,
                        mode: str, pid: int | None = None) -> tuple[list[float], float]:
    """30 keypads call with exponential think time (mean `think` s) and each waits for its
    window's display to show a call. mode "hub" and "relay" measure keypad -> display through
    that process; mode "broker" measures the keypad's own publish arriving back (one hop).
    Also the CPU seconds process `pid` spent during the calls."""
    import random

    rng = random.Random(1)
    lat: list[float] = []
    waiters: dict[int, asyncio.Future[None]] = {}
    replies = [0]  # the set-up's takes and opens answered (hub mode)
    set_up = asyncio.Event()
    opts = {"socket_options": NO_DELAY, "max_inflight_messages": 1000}
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-pub", **opts) as pub, \
            aiomqtt.Client("127.0.0.1", port, identifier="bench-sub", **opts) as sub:
        pub.pending_calls_threshold = 10**6
        watch = "dev/+/evt" if mode == "broker" else "win/+/display"
        await sub.subscribe(f"ow/{CENTRE}/{watch}", qos=1)
        await sub.subscribe(f"ow/{CENTRE}/dev/+/err", qos=1)
        if mode == "hub":
            await sub.subscribe(f"ow/{CENTRE}/dev/+/res", qos=1)
        seq = {n: 0 for n in range(0, windows + 1)}
        expected = windows * rounds + 2 * windows  # a take per call, and the opens

        async def reader() -> None:
            async for m in sub.messages:
                parts = m.topic.value.split("/")
                if parts[-1] == "err":
                    raise RuntimeError(f"hub refused a benchmark event: {m.payload!r}")
                if parts[-1] == "res":
                    replies[0] += 1
                    if replies[0] == expected:
                        set_up.set()
                    continue
                n = int(parts[3][3:]) if parts[2] == "dev" else int(parts[3])
                if parts[2] == "dev" and not parts[3].startswith("kp-"):
                    continue
                fut = waiters.get(n)
                if fut is not None and not fut.done():
                    fut.set_result(None)

        task = asyncio.create_task(reader())
        if mode == "hub":
            for _ in range(windows * rounds + windows):  # a ticket for every call
                seq[0] += 1
                await pub.publish(proto.device_topic(CENTRE, "box-1", "evt"), proto.encode(
                    "evt", proto.event("box-1", seq[0], "take", item="SOC-001")), qos=1)
            for n in range(1, windows + 1):
                seq[n] += 1
                await pub.publish(proto.device_topic(CENTRE, f"kp-{n}", "evt"), proto.encode(
                    "evt", proto.event(f"kp-{n}", seq[n], "open")), qos=1)
            # Calls are timed once the hub has answered the set-up (a fixed pause let a
            # loaded machine's first calls queue behind the last takes), and the calls'
            # replies are not counted.
            await asyncio.wait_for(set_up.wait(), 120)
            await sub.unsubscribe(f"ow/{CENTRE}/dev/+/res")

        async def keypad(n: int) -> None:
            for _ in range(rounds):
                if think:
                    await asyncio.sleep(rng.expovariate(1 / think))
                seq[n] += 1
                payload = proto.encode("evt", proto.event(f"kp-{n}", seq[n], "call"))
                fut = asyncio.get_running_loop().create_future()
                waiters[n] = fut
                t = time.perf_counter()
                await pub.publish(proto.device_topic(CENTRE, f"kp-{n}", "evt"), payload, qos=1)
                await asyncio.wait_for(fut, 10)
                lat.append((time.perf_counter() - t) * 1000)

        cpu0 = _cpu_s(pid)
        await asyncio.gather(*(keypad(n) for n in range(1, windows + 1)))
        cpu = _cpu_s(pid) - cpu0
        task.cancel()
    return lat, cpu


def _stats(lat: list[float], cpu: float = 0.0) -> dict[str, float]:
    return {"n": len(lat), "p50": statistics.median(lat), "p99": _pct(lat, 99),
            "max": max(lat), "cpu_ms": cpu / len(lat) * 1000}


def bench_latency(windows: int, rounds: int, think: float, fsync: bool,
                  modes: tuple[str, ...] = ("broker", "relay", "hub")) -> dict[str, dict]:
    """The three measurements share one Mosquitto and one harness, run back to back."""
    import subprocess
    import sys

    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Mosquitto(root / "broker") as broker:
            for mode in modes:
                if mode == "broker":
                    out[mode] = _stats(*asyncio.run(
                        _call_latency(broker.port, windows, rounds, think, mode)))
                    continue
                if mode == "relay":
                    proc = subprocess.Popen([sys.executable, "-m",
                                             "onewindow.tools.bench.bench_hub",
                                             "--relay", str(broker.port)])
                else:
                    devices = [{"id": "box-1", "role": "box"}] + [
                        {"id": f"kp-{n}", "role": "keypad", "window": n}
                        for n in range(1, windows + 1)]
                    cfg = write_config(root / "centre.toml", CENTRE, broker.port,
                                       root / "hub.db", windows=windows, devices=devices)
                    if fsync:
                        cfg.write_text(cfg.read_text().replace("[store]\n",
                                                               "[store]\nfsync = true\n"))
                    proc = HubProcess(cfg, root / "hub.log").start().proc  # type: ignore[assignment]
                try:
                    asyncio.run(_wait_ready(broker.port))
                    out[mode] = _stats(*asyncio.run(
                        _call_latency(broker.port, windows, rounds, think, mode, proc.pid)))
                finally:
                    proc.terminate()
                    proc.wait()
                asyncio.run(_clear_retained(broker.port))
    return out


async def _wait_ready(port: int) -> None:
    for _ in range(200):
        try:
            async with aiomqtt.Client("127.0.0.1", port) as sub:
                await sub.subscribe(proto.hub_topic(CENTRE), qos=1)
                async with asyncio.timeout(1):
                    async for m in sub.messages:
                        if json.loads(m.payload)["state"] == "ready":  # type: ignore[arg-type]
                            return
        except (TimeoutError, aiomqtt.MqttError):
            await asyncio.sleep(0.05)
    raise TimeoutError("hub did not come up")


async def _clear_retained(port: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(proto.hub_topic(CENTRE), b"", qos=1, retain=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("calls", "hub-calls"),
                    help="calls: only the call latency at ~300 calls/s (broker, relay, hub); "
                         "hub-calls: only the hub's row of it (to compare hub variants)")
    ap.add_argument("--rounds", type=int, help="calls per window (default 40, --quick 8)")
    ap.add_argument("--relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.relay:
        asyncio.run(_relay(args.relay))
        return
    k = 0.2 if args.quick else 1.0
    rounds = args.rounds or max(5, int(40 * k))
    if args.only:
        _print(_call_rows(rounds, 0.1, ("hub",) if args.only == "hub-calls"
                          else ("broker", "relay", "hub")))
        return
    rows: list[tuple[str, str]] = []

    core = bench_core(int(200_000 * k))
    rows.append(("core dispatch, in memory (take/call/start/complete)",
                 f"{core['ops_per_s']:,.0f} ops/s"))
    for fsync in (False, True):
        for batch in (1, 64):
            n = int((20_000 if not fsync or batch > 1 else 3_000) * k)
            r = bench_durable(n, fsync=fsync, batch=batch)
            mode = "FULL (fsync per commit)" if fsync else "NORMAL (WAL)"
            rows.append((f"durable hub: app + SQLite {mode}, commit every {batch}",
                         f"{r['ops_per_s']:,.0f} ops/s"))
    for gap in (0.0, 0.0033):
        g = bench_gap(int(1_200 * k), gap)
        when = ("back to back" if not gap
                else f"one every {gap * 1000:.1f} ms (the hub idle between, as at ~300/s)")
        rows.append((f"a call's own work (handle + journal commit), {when}",
                     f"p50 {g['p50']:.3f} / p99 {g['p99']:.3f} ms (then the wait predictor's "
                     f"learning, after the messages: p50 {g['after_p50']:.3f} / "
                     f"p99 {g['after_p99']:.3f})"))
    rp = bench_replay(int(50_000 * k))
    rows.append((f"journal replay at start-up ({rp['records']:,} records)",
                 f"{rp['records_per_s']:,.0f} records/s"))
    rows += _call_rows(rounds, 0.1) + _call_rows(rounds, 0.0)
    r = bench_latency(30, rounds, 0.1, fsync=True, modes=("hub",))["hub"]
    rows.append(("30 windows every ~0.1 s: hub with fsync per commit: call -> display",
                 f"p50 {r['p50']:.2f} / p99 {r['p99']:.2f} / max {r['max']:.2f} ms "
                 f"({r['n']} calls; {r['cpu_ms']:.2f} ms CPU per call)"))
    _print(rows)


_LABELS = {0.1: "30 windows, each calling every ~0.1 s (~300 calls/s)",
           0.0: "30 windows calling back to back (saturation)"}
_WHAT = {"broker": "broker alone: publish -> receive, one hop",
         "relay": "do-nothing aiomqtt relay: call -> display",
         "hub": "hub (WAL NORMAL journal): call -> display"}


def _call_rows(rounds: int, think: float, modes: tuple[str, ...] = ("broker", "relay", "hub"),
               ) -> list[tuple[str, str]]:
    """The call-latency rows at one think time, `modes` measured back to back in one run."""
    res = bench_latency(30, rounds, think, fsync=False, modes=modes)
    rows = []
    for mode in modes:
        r = res[mode]
        cpu = f"; {r['cpu_ms']:.2f} ms CPU per call" if mode != "broker" else ""
        rows.append((f"{_LABELS[think]}: {_WHAT[mode]}",
                     f"p50 {r['p50']:.2f} / p99 {r['p99']:.2f} / max {r['max']:.2f} ms "
                     f"({r['n']} calls{cpu})"))
    return rows


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"| {'benchmark'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
