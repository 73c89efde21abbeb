"""Notice latency from the triggering call (issue 16): a keypad's `call` to the "called"
notice at the SMS gateway and on the ticket's phone page.

    python -m onewindow.tools.bench.bench_notice               # 40 remote tickets
    python -m onewindow.tools.bench.bench_notice --tickets 100

The real `onewindow hub` process with a private Mosquitto, a keypad over the device
protocol (tools/simdevice.py), SMS over SMPP 3.4 to the protocol-level stand-in
tools/testkit/smppd.py (in this process: its receive times share this clock) and one live
feed per ticket read as the phone page's EventSource reads it. `--tickets` residents take
a number by phone (from several loopback addresses: the page allows 10 a minute per
address); then each ticket is called in turn, one at a time. Per call: from sending the
keypad's event to the whole SMS at the gateway, and to the notice in the page's feed. The
path measured: the hub journals the call and the due notice in one commit, the dispatcher
sends it (SMS) or journals its outcome (page: the feed shows it after that commit, and the
"ticket" feed is paced at one snapshot per 0.5 s, hub/web/phone.py PACE_S, which dominates
the page's figure). What it leaves out: a real gateway's and the carrier's delay, and the
phone's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ...hub.core.measures import percentile
from ...hub.fleet.registry import Fleet
from ...hub.web.livepatch import follow
from ..simdevice import SimDevice
from ..testkit.smppd import SmppStandIn
from ..testkit.testbed import HubProcess, Mosquitto, quiet_port, wait_web, write_config

CENTRE = "bn"
ALL_DAY = '"00:00-23:59"'


async def _follow(base: str, ticket: str, seen: dict[str, float],
                  shown: asyncio.Event) -> None:
    """The ticket's live feed: when its "called" notice first shows."""
    async with httpx.AsyncClient(base_url=base, timeout=None) as client, \
            client.stream("GET", f"/live/ticket/{ticket}") as r:
        snap: Any = None
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and ticket not in seen:
                # a delta applies to the state before (hub/web/livepatch.py)
                snap = follow(snap, event, json.loads(line[5:]))
                if any(n["kind"] == "called" for n in snap.get("notices", [])):
                    seen[ticket] = time.perf_counter()
                    shown.set()


async def run(tickets: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-notice-") as tmp:
        root = Path(tmp)
        db = root / "hub.db"
        Fleet(f"sqlite:///{db}").secret(create=True)
        web_port = quiet_port()
        async with SmppStandIn() as gateway:
            extra = (f"\n[web]\nport = {web_port}\n"
                     f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
                     "\n[remote]\nenabled = true\nstop_minutes_before_close = 0\n"
                     f"\n[notices.smpp]\nhost = \"127.0.0.1\"\nport = {gateway.port}\n"
                     "system_id = \"onewindow\"\npassword = \"secret\"\n"
                     "source = \"10690001\"\n")
            with Mosquitto(root / "broker") as broker:
                cfg = write_config(root / "centre.toml", CENTRE, broker.port, db, windows=1,
                                   devices=[{"id": "kp-1", "role": "keypad", "window": 1}],
                                   extra=extra)
                url = f"http://127.0.0.1:{web_port}"
                hub = HubProcess(cfg, root / "hub.log").start()
                try:
                    await wait_web(url, "/remote", hub)
                    return await _measure(url, gateway, broker.port, tickets)
                finally:
                    hub.stop()


async def _measure(url: str, gateway: SmppStandIn, broker_port: int,
                   tickets: int) -> dict[str, Any]:
    ids: list[tuple[str, str]] = []  # (ticket id, SMPP destination)
    for i in range(tickets):
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + i // 10}")
        async with httpx.AsyncClient(base_url=url, timeout=10, transport=transport) as http:
            await http.get("/remote")
            http.headers["X-CSRF-Token"] = http.cookies["ow_csrf"]
            number = f"1391234{i:04d}"
            r = await http.post("/remote/take", json={"item": "SOC-001", "phone": number})
            r.raise_for_status()
            ids.append((r.json()["id"], "86" + number))
    page: dict[str, float] = {}
    shown = {t: asyncio.Event() for t, _ in ids}
    feeds = [asyncio.create_task(_follow(url, t, page, shown[t])) for t, _ in ids]
    sms_ms, page_ms = [], []
    try:
        async with SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", broker_port,
                             window=1) as kp:
            await kp.send("open", timeout=30, retry=0.5)
            for ticket, dest in ids:
                t0 = time.perf_counter()
                await kp.send("call", timeout=30, retry=0.5)

                def arrived(dest: str = dest) -> bool:
                    return any(m.dest == dest and "窗口" in m.text for m in gateway.messages)
                await gateway.wait_for(arrived, 30)
                sms = next(m.completed for m in gateway.messages
                           if m.dest == dest and "窗口" in m.text)
                await asyncio.wait_for(shown[ticket].wait(), 30)
                sms_ms.append((sms - t0) * 1000)
                page_ms.append((page[ticket] - t0) * 1000)
    finally:
        for f in feeds:
            f.cancel()
        await asyncio.gather(*feeds, return_exceptions=True)
    return {"n": len(ids), "sms": sms_ms, "page": page_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=40)
    args = ap.parse_args()
    r = asyncio.run(run(args.tickets))
    print(f"notice latency from a keypad's call, {r['n']} remote tickets (ms)")
    print(f"{'channel':<12} {'p50':>8} {'p99':>8} {'max':>8}")
    for label in ("sms", "page"):
        xs = r[label]
        print(f"{label:<12} {percentile(xs, 50) or 0.0:>8.1f} "
              f"{percentile(xs, 99) or 0.0:>8.1f} {max(xs):>8.1f}")


if __name__ == "__main__":
    main()
