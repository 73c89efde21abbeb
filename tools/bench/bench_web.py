"""Hall screen latency (stage 4): a clerk's keypad "call" published over MQTT -> the hall
page in Chromium has painted the new call. Prints p50/p90/p99. Then HTTP actions over one
kept-alive connection each: the clerk console's call/start/complete and the kiosk's take,
request sent -> whole response read (p50/p99; target p99 <= 10 ms). Without TCP_NODELAY on
the hub's accepted connections each of these waited ~40 ms for the client's delayed ACK
(headers and body go out in two writes).

    python -m onewindow.tools.bench.bench_web              # 30 windows, 200 waiting, 100 calls
    python -m onewindow.tools.bench.bench_web --calls 30   # quicker
    python -m onewindow.tools.bench.bench_web --http-only  # only the kept-alive HTTP actions

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

from ...hub.mqtt.broker import free_port
from ..simdevice import SimDevice
from ..testkit.testbed import HubProcess, Mosquitto, wait_http, write_config

CENTRE = "benchweb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]




async def run(windows: int, waiting: int, calls: int, gap: float) -> dict[str, float]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        port = free_port()
        cfg = write_config(Path(tmp) / "centre.toml", CENTRE, broker.port, Path(tmp) / "hub.db",
                           windows=windows, extra=f"\n[web]\nport = {port}\n")
        hub = HubProcess(cfg, Path(tmp) / "hub.log").start()
        try:
            await wait_http(port)
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


async def http_actions(rounds: int) -> dict[str, list[float]]:
    """Console actions and kiosk takes, each client on one kept-alive connection."""
    import httpx

    from .bench_live import PASSWORD, _accounts

    out: dict[str, list[float]] = {"console action (call / start / complete)": [],
                                   "kiosk take": []}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        port = free_port()
        db = Path(tmp) / "hub.db"
        cfg = write_config(Path(tmp) / "centre.toml", CENTRE, broker.port, db, windows=2,
                           extra=f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n')
        _accounts(db, 2)
        hub = HubProcess(cfg, Path(tmp) / "hub.log").start()
        try:
            await wait_http(port)
            base = f"http://127.0.0.1:{port}"
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with httpx.AsyncClient(base_url=base, limits=limits) as kiosk, \
                    httpx.AsyncClient(base_url=base, limits=limits) as clerk:
                for cl in (kiosk, clerk):
                    await cl.get("/login")
                    cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
                r = await clerk.post("/login", data={
                    "username": "clerk1", "password": PASSWORD,
                    "csrf": clerk.cookies["ow_csrf"], "next": ""})
                assert r.status_code in (200, 303), r.status_code
                r = await clerk.post("/console/open", json={"window": 1})
                assert r.status_code == 200, r.text
                for _ in range(rounds):
                    t = time.perf_counter()
                    r = await kiosk.post("/kiosk/take", json={"device": "box-1",
                                                              "item": "SOC-001", "insist": True})
                    out["kiosk take"].append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
                    for action in ("call", "start", "complete"):
                        t = time.perf_counter()
                        r = await clerk.post(f"/console/{action}", json={"window": 1})
                        out["console action (call / start / complete)"].append(
                            (time.perf_counter() - t) * 1000)
                        assert r.status_code == 200, (action, r.text)
        finally:
            hub.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=30)
    ap.add_argument("--waiting", type=int, default=200)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between calls")
    ap.add_argument("--rounds", type=int, default=100, help="kiosk takes (x3 console actions)")
    ap.add_argument("--http-only", action="store_true", help="skip the Chromium hall run")
    a = ap.parse_args()
    if not a.http_only:
        assert os.path.exists(CHROMIUM), "chromium is not installed: apt-get install chromium"
        r = asyncio.run(run(a.windows, a.waiting, a.calls, a.gap))
        print(f"hall screen: keypad call published -> hall page painted the call "
              f"({a.windows} windows, {a.waiting} waiting, {r['n']} calls, headless Chromium)")
        print(f"  p50 {r['p50']:.1f} ms   p90 {r['p90']:.1f} ms   p99 {r['p99']:.1f} ms   "
              f"max {r['max']:.1f} ms   mean {r['mean']:.1f} ms")
    h = asyncio.run(http_actions(a.rounds))
    print("\nHTTP over one kept-alive connection: request sent -> response read "
          "(hub process, SQLite journal, target p99 <= 10 ms)")
    print("| action | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, xs in h.items():
        print(f"| {name} | {len(xs)} | {_pct(xs, 50):.1f} | {_pct(xs, 99):.1f} "
              f"| {max(xs):.1f} |")


if __name__ == "__main__":
    main()
