"""Hall screen latency (stage 4): a clerk's keypad "call" published over MQTT -> the hall
page in Chromium has painted the new call. Prints p50/p90/p99.

    python -m onewindow.tools.bench_web              # 30 windows, 200 waiting, 100 calls
    python -m onewindow.tools.bench_web --calls 30   # quicker

Set-up: a private Mosquitto, the hub as its own process with [web], 30 comprehensive windows
each with a keypad (all open), 200 residents waiting (tickets taken at button box box-1),
and one headless Chromium (Debian's `chromium` through Playwright) showing /hall. Each call
is pressed on a keypad (round-robin over the windows, one at a time); the time is taken just
before the event is published (`Date.now()`-compatible epoch ms, same machine clock). The
page's hall.js records `Date.now()` in the requestAnimationFrame after it rendered a new call
(window.__owRenders): the frame that paints it. The path measured: MQTT -> hub -> journal
commit -> SSE snapshot -> the browser's DOM update and next frame.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ..hub.mqtt.broker import free_port
from .simdevice import SimDevice
from .testbed import HubProcess, Mosquitto, write_config

CENTRE = "benchweb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def _wait_http(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise TimeoutError("hub web did not start")


async def run(windows: int, waiting: int, calls: int, gap: float) -> dict[str, float]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        port = free_port()
        cfg = write_config(Path(tmp) / "centre.toml", CENTRE, broker.port, Path(tmp) / "hub.db",
                           windows=windows, extra=f"\n[web]\nport = {port}\n")
        hub = HubProcess(cfg, Path(tmp) / "hub.log").start()
        try:
            await _wait_http(port)
            host = "127.0.0.1"
            async with SimDevice(CENTRE, "box-1", "box", host, broker.port) as box:
                for _ in range(waiting):
                    await box.send("take", item="SOC-001")
            pads = [SimDevice(CENTRE, f"kp-{n}", "keypad", host, broker.port, window=n)
                    for n in range(1, windows + 1)]
            for kp in pads:
                await kp.__aenter__()
            try:
                for kp in pads:
                    await kp.send("open")
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                      args=["--no-sandbox"])
                    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
                    await page.goto(f"http://{host}:{port}/hall?voice=off")
                    await page.wait_for_function("window.__owRenders !== undefined")
                    await asyncio.sleep(1.0)  # the SSE stream is open
                    lat: list[float] = []
                    for i in range(calls):
                        kp = pads[i % windows]
                        t0 = time.time() * 1000.0
                        reply = await kp.send("call")
                        ticket, window = reply["ticket"], kp.window
                        found = await page.wait_for_function(
                            """([t, w]) => window.__owRenders.find(
                                   (r) => r.ticket === t && r.window === w)""",
                            arg=[ticket, window], timeout=10000)
                        at = (await found.json_value())["at"]
                        lat.append(at - t0)
                        await asyncio.sleep(gap)
                    await browser.close()
            finally:
                for kp in pads:
                    await kp.__aexit__(None, None, None)
        finally:
            hub.stop()
    return {"n": len(lat), "p50": _pct(lat, 50), "p90": _pct(lat, 90), "p99": _pct(lat, 99),
            "max": max(lat), "mean": statistics.fmean(lat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=30)
    ap.add_argument("--waiting", type=int, default=200)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between calls")
    a = ap.parse_args()
    assert os.path.exists(CHROMIUM), "chromium is not installed: apt-get install chromium"
    r = asyncio.run(run(a.windows, a.waiting, a.calls, a.gap))
    print(f"hall screen: keypad call published -> hall page painted the call "
          f"({a.windows} windows, {a.waiting} waiting, {r['n']} calls, headless Chromium)")
    print(f"  p50 {r['p50']:.1f} ms   p90 {r['p90']:.1f} ms   p99 {r['p99']:.1f} ms   "
          f"max {r['max']:.1f} ms   mean {r['mean']:.1f} ms")


if __name__ == "__main__":
    main()
