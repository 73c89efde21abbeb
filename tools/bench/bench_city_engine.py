"""Which engine between the centres and the city (issue 20): NATS JetStream (3 nodes, R3)
against Mosquitto bridges (a centre's Mosquitto bridged to one city Mosquitto), measured the
same way on this machine.

    python -m onewindow.tools.bench.bench_city_engine            # 3000 messages each
    python -m onewindow.tools.bench.bench_city_engine --n 10000

For each engine, one centre publishes `--n` numbered messages at `--rate` per second
(QoS 1 to its own broker for the bridge; a JetStream publish awaiting the stream's ack for
NATS), and a city reader (a persistent QoS 1 MQTT session; a durable JetStream consumer)
counts what arrives. At a third of the way a city server is SIGKILLed: the city broker
(restarted 1 s later, persistence on, autosave every second) / one of the three NATS nodes
(left down). Reported: publish->city-receipt latency p50/p99, messages lost and
duplicated at the city, and the time the city went without receiving anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

from ...hub.city import streams
from ...hub.city import subjects as sj
from ...hub.core.measures import percentile
from ..testkit.nats_cluster import NatsCluster
from ..testkit.ports import quiet_port
from ..testkit.testbed import Mosquitto


def _report(name: str, n: int, sent_at: dict[int, float], got: list[tuple[int, float]],
            kill_at: float) -> dict[str, Any]:
    seqs = [s for s, _ in got]
    lat = sorted(t - sent_at[s] for s, t in got if s in sent_at)
    times = sorted(t for _, t in got)
    gap = max((b - a for a, b in itertools.pairwise(times) if b > kill_at - 0.5),
              default=0.0)
    return {"engine": name, "sent": n, "received_distinct": len(set(seqs)),
            "lost": n - len(set(seqs)), "duplicates": len(seqs) - len(set(seqs)),
            "latency_p50_ms": round(1000 * percentile(lat, 50), 2),
            "latency_p99_ms": round(1000 * percentile(lat, 99), 2),
            "longest_gap_after_kill_s": round(gap, 2)}


async def mosquitto_bridge(work: Path, n: int, rate: float) -> dict[str, Any]:
    city_port = quiet_port()
    city_conf = (f"persistence true\npersistence_location {work}/city-mq/\n"
                 "autosave_interval 1\n")
    (work / "city-mq").mkdir(parents=True, exist_ok=True)
    city = Mosquitto(work / "city-mq", port=city_port, extra_conf=city_conf).start()
    centre = Mosquitto(work / "centre-mq", extra_conf=(
        f"connection city\naddress 127.0.0.1:{city_port}\ntopic city/# out 1\n"
        "cleansession false\nremote_clientid bridge-c01\nrestart_timeout 1 1\n"
        "max_queued_messages 100000\n")).start()
    sent_at: dict[int, float] = {}
    got: list[tuple[int, float]] = []
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            try:
                async with aiomqtt.Client("127.0.0.1", city_port, identifier="city-reader",
                                          clean_session=False) as c:
                    await c.subscribe("city/#", qos=1)
                    async for m in c.messages:
                        got.append((json.loads(m.payload)["seq"], time.time()))
                        if len({s for s, _ in got}) >= n:
                            done.set()
                            return
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    r = asyncio.create_task(reader())
    await asyncio.sleep(1.0)  # the bridge and the reader connected
    kill_at = 0.0
    async with aiomqtt.Client("127.0.0.1", centre.port, identifier="hub-c01") as pub:
        t0 = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            sent_at[i] = time.time()
            await pub.publish("city/c01/ticket", json.dumps({"seq": i}), qos=1)
            if i == n // 3:
                city.proc.kill()  # type: ignore[union-attr]
                city.proc.wait()  # type: ignore[union-attr]
                kill_at = time.time()
                await asyncio.sleep(1.0)
                city = Mosquitto(work / "city-mq", port=city_port, extra_conf=city_conf).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 20)
    done.set()
    r.cancel()
    await asyncio.gather(r, return_exceptions=True)
    centre.stop()
    city.stop()
    return _report("mosquitto bridge (1 city broker)", n, sent_at, got, kill_at)


async def nats_jetstream(work: Path, n: int, rate: float) -> dict[str, Any]:
    cluster = NatsCluster(work / "nats", centres=["c01"]).start()
    sent_at: dict[int, float] = {}
    got: list[tuple[int, float]] = []
    try:
        admin = await cluster.connect()
        js = admin.jetstream()
        await streams.ensure_streams(js, replicas=3)
        sub = await js.pull_subscribe("city.>", durable="bench", stream=sj.STREAM)
        done = asyncio.Event()

        async def reader() -> None:
            while not done.is_set():
                try:
                    msgs = await sub.fetch(500, timeout=0.5)
                except Exception:
                    continue
                now = time.time()
                for m in msgs:
                    got.append((json.loads(m.data)["seq"], now))
                    await m.ack()
                if len({s for s, _ in got}) >= n:
                    done.set()

        r = asyncio.create_task(reader())
        nc = await cluster.connect_centre("c01")
        cjs = nc.jetstream(timeout=5)
        kill_at = 0.0
        pending: set[asyncio.Task[Any]] = set()

        async def one(i: int) -> None:
            while True:
                try:
                    await cjs.publish(sj.record("c01", sj.TICKET), json.dumps(
                        {"seq": i}).encode(), headers={"Nats-Msg-Id": sj.msg_id("c01", i)})
                    return
                except Exception:
                    await asyncio.sleep(0.2)

        t0 = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            sent_at.setdefault(i, time.time())
            t = asyncio.create_task(one(i))
            pending.add(t)
            t.add_done_callback(pending.discard)
            if i == n // 3:
                cluster.stop_node(0, kill=True)
                kill_at = time.time()
        await asyncio.gather(*pending)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        done.set()
        r.cancel()
        await asyncio.gather(r, return_exceptions=True)
        await nc.close()
        await admin.close()
    finally:
        cluster.stop()
    return _report("NATS JetStream (3 nodes, R3)", n, sent_at, got, kill_at)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="ow-bench-engine-"))
    return [await mosquitto_bridge(work, args.n, args.rate),
            await nats_jetstream(work, args.n, args.rate)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=500.0)
    args = ap.parse_args()
    for r in asyncio.run(run(args)):
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
