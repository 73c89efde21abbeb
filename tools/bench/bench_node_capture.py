"""Benchmark: document camera capture → page stored at the hub, p50/p99.

    python -m onewindow.tools.bench.bench_node_capture [--n 30] [--frame 1920x1080] [--format jpeg]

A hub runs in this process (embedded broker, SQLite, the HTTP API on a free port); a
simulated button box takes a ticket over MQTT; then `n` synthetic photographed pages (each a
different form, angle and desk: node/tests/pages.py) go through the node's real path:
FakeSource capture → find the page → flatten and turn upright → encode → HTTP upload → the
hub has fsynced and renamed the file and answered 201. Each step is timed per capture.

Node and hub share this machine and its CPU here; on a Raspberry Pi the image steps take
longer (see docs/benchmarks.md), while the upload step adds the LAN's round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path

from ...hub import config as hub_config
from ...hub.serve import serve
from ...node.camera import FakeSource, capture_document
from ...node.upload import upload
from ..simdevice import SimDevice
from ..testkit.testbed import write_config

CENTRE = "bench"
TOKEN = "bench-node-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


async def run(n: int, frame: tuple[int, int], fmt: str) -> dict[str, list[float]]:
    from ...node.tests.pages import photograph, render_page

    photos = [photograph(render_page(i), angle=((i * 37) % 50 - 25) + (i % 4) * 90,
                         scale=0.6 + (i % 5) * 0.07, skew=0.03, seed=i, size=frame).image
              for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="ow-bench-capture-") as tmp:
        mqtt_port = _free_port()
        devices = [{"id": "box-1", "role": "box"},
                   {"id": "node-1", "role": "node", "window": 1, "token": TOKEN}]
        cfg_path = write_config(Path(tmp) / "centre.toml", CENTRE, None, Path(tmp) / "hub.db",
                                windows=1, devices=devices,
                                extra=f"\n[broker]\nembedded_port = {mqtt_port}\n"
                                      '\n[web]\nhost = "127.0.0.1"\nport = 0\n')
        cfg = hub_config.load(cfg_path)
        stop = asyncio.Event()
        runners: list = []
        hub = asyncio.create_task(serve(cfg, stop, ready=runners.append))
        while not (runners and runners[0].connected.is_set()):
            if hub.done():
                hub.result()
            await asyncio.sleep(0.01)
        runner = runners[0]
        item = next(iter(runner.app.centre.catalog.items))
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mqtt_port) as box:
            number = (await box.send("take", item=item))["ticket"]
        ticket = runner.app.centre.find_ticket(number).id
        steps: dict[str, list[float]] = {k: [] for k in
                                         ("capture", "detect", "encode", "upload", "total")}
        try:
            for img in photos:
                t0 = time.perf_counter()
                doc = await capture_document(FakeSource([img]), fmt=fmt)
                t1 = time.perf_counter()
                await upload(runner.web.url, ticket, f"page.{doc.ext}", doc.data,
                             doc.content_type, token=TOKEN)
                t2 = time.perf_counter()
                for k in ("capture", "detect", "encode"):
                    steps[k].append(doc.timings[k])
                steps["upload"].append(t2 - t1)
                steps["total"].append(t2 - t0)
            assert len(runner.web.files.list(ticket)) == n
        finally:
            stop.set()
            await hub
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="captures")
    ap.add_argument("--frame", default="1920x1080", help="camera frame size, WxH")
    ap.add_argument("--format", default="jpeg", choices=("jpeg", "pdf"))
    args = ap.parse_args()
    w, h = (int(v) for v in args.frame.lower().split("x"))
    steps = asyncio.run(run(args.n, (w, h), args.format))
    print(f"capture → page stored at the hub: {args.n} captures, {w}x{h} frames, "
          f"{args.format}, page long side 1600 px")
    print(f"{'step':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for k, xs in steps.items():
        ms = [x * 1000 for x in xs]
        print(f"{k:<10} {statistics.median(ms):8.1f} {_pct(ms, 99):8.1f} {max(ms):8.1f}")


if __name__ == "__main__":
    main()
