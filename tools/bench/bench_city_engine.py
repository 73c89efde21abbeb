"""Which engine between the centres and the city (issue 20): NATS JetStream (3 nodes, R3)
against Mosquitto bridges (a centre's Mosquitto bridged to one city Mosquitto), measured the
same way on this machine.

    python -m onewindow.tools.bench.bench_city_engine            # 3000 messages each
    python -m onewindow.tools.bench.bench_city_engine --n 10000

One centre publishes `--n` numbered messages at `--rate` per second; a city reader counts
what arrives. The first third is the steady state (its latency, publish -> city receipt, is
reported); then the reader goes away (an ingester restarting: the city holds a backlog);
at two thirds a city server's machine is lost — process killed, its data folder gone — and
a replacement is started on the same address 2 s later; then the reader returns. Reported:
messages lost and duplicated at the city.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
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
            steady: int, outage: tuple[float, float]) -> dict[str, Any]:
    """`steady`: the first messages, sent while the reader was there and nothing failed:
    their latency is the engine's; `outage`: (lost at, replacement up at)."""
    seqs = [s for s, _ in got]
    first: dict[int, float] = {}
    for s, t in got:
        first.setdefault(s, t)
    lat = sorted(first[s] - sent_at[s] for s in range(steady) if s in first)
    return {"engine": name, "sent": n, "received_distinct": len(set(seqs)),
            "lost": n - len(set(seqs)), "duplicates": len(seqs) - len(set(seqs)),
            "steady_latency_p50_ms": round(1000 * percentile(lat, 50), 2),
            "steady_latency_p99_ms": round(1000 * percentile(lat, 99), 2),
            "replacement_after_s": round(outage[1] - outage[0], 2)}


async def mosquitto_bridge(work: Path, n: int, rate: float) -> dict[str, Any]:
    """A centre's Mosquitto bridged (QoS 1, persistent bridge session) to one city
    Mosquitto (persistence on, saved every second); the city reader a persistent QoS 1
    session. At n/3 the reader goes away (the ingester restarting); at 2n/3 the city
    broker's machine is lost: killed, its persistence file gone, a replacement broker
    started on the same address 2 s later; at the end the reader returns."""
    city_port = quiet_port()
    city_dir = work / "city-mq"

    def city_broker() -> Mosquitto:
        city_dir.mkdir(parents=True, exist_ok=True)
        return Mosquitto(city_dir, port=city_port, extra_conf=(
            f"persistence true\npersistence_location {city_dir}/\nautosave_interval 1\n"
            "max_queued_messages 100000\n")).start()

    city = city_broker()
    centre = Mosquitto(work / "centre-mq", extra_conf=(
        f"connection city\naddress 127.0.0.1:{city_port}\ntopic city/# out 1\n"
        "cleansession false\nremote_clientid bridge-c01\nrestart_timeout 1 1\n"
        "max_queued_messages 100000\n")).start()
    sent_at: dict[int, float] = {}
    got: list[tuple[int, float]] = []
    away = asyncio.Event()
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            if away.is_set():
                await asyncio.sleep(0.05)
                continue
            try:
                async with aiomqtt.Client("127.0.0.1", city_port, identifier="city-reader",
                                          clean_session=False) as c:
                    await c.subscribe("city/#", qos=1)
                    async for m in c.messages:
                        got.append((json.loads(m.payload)["seq"], time.time()))
                        if away.is_set() or len({s for s, _ in got}) >= n:
                            break
                if len({s for s, _ in got}) >= n:
                    done.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    r = asyncio.create_task(reader())
    await asyncio.sleep(1.0)  # the bridge and the reader connected
    outage = (0.0, 0.0)
    async with aiomqtt.Client("127.0.0.1", centre.port, identifier="hub-c01") as pub:
        t0 = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            sent_at[i] = time.time()
            await pub.publish("city/c01/ticket", json.dumps({"seq": i}), qos=1)
            if i == n // 3:
                away.set()
            if i == 2 * n // 3:
                city.proc.kill()  # type: ignore[union-attr]
                city.proc.wait()  # type: ignore[union-attr]
                lost_at = time.time()
                shutil.rmtree(city_dir)
                await asyncio.sleep(2.0)
                city = city_broker()
                outage = (lost_at, time.time())
    await asyncio.sleep(2.0)  # the bridge hands over what it still holds
    away.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 15)
    done.set()
    r.cancel()
    await asyncio.gather(r, return_exceptions=True)
    centre.stop()
    city.stop()
    return _report("mosquitto bridge (1 city broker)", n, sent_at, got, n // 3, outage)


async def nats_jetstream(work: Path, n: int, rate: float) -> dict[str, Any]:
    """The same with the 3-node cluster: the centre publishes awaiting the R3 stream's
    ack (retrying on failure, same Nats-Msg-Id); the reader is a durable pull consumer;
    at 2n/3 one node's machine is lost (killed, its JetStream folder gone), a
    replacement node with an empty folder started 2 s later."""
    cluster = NatsCluster(work / "nats", centres=["c01"]).start()
    sent_at: dict[int, float] = {}
    got: list[tuple[int, float]] = []
    outage = (0.0, 0.0)
    try:
        admin = await cluster.connect()
        js = admin.jetstream()
        await streams.ensure_streams(js, replicas=3)
        sub = await js.pull_subscribe("city.>", durable="bench", stream=sj.STREAM)
        away = asyncio.Event()
        done = asyncio.Event()

        async def reader() -> None:
            while not done.is_set():
                if away.is_set():
                    await asyncio.sleep(0.05)
                    continue
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
            sent_at[i] = time.time()
            t = asyncio.create_task(one(i))
            pending.add(t)
            t.add_done_callback(pending.discard)
            if i == n // 3:
                away.set()
            if i == 2 * n // 3:
                cluster.stop_node(0, kill=True)
                lost_at = time.time()
                shutil.rmtree(cluster.nodes[0].store_dir)
                await asyncio.sleep(2.0)
                cluster.start_node(0)
                outage = (lost_at, time.time())
        await asyncio.gather(*pending)
        away.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        done.set()
        r.cancel()
        await asyncio.gather(r, return_exceptions=True)
        await nc.close()
        await admin.close()
    finally:
        cluster.stop()
    return _report("NATS JetStream (3 nodes, R3)", n, sent_at, got, n // 3, outage)


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
