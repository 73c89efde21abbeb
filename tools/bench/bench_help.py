"""Help call → department page latency (窗口吹哨 科室报到, issue 17): a keypad's `help` key
naming a department, to the call in that department's live page feed.

    python -m onewindow.tools.bench.bench_help             # 60 calls
    python -m onewindow.tools.bench.bench_help --calls 200

The real `onewindow hub` process with a private Mosquitto, a keypad over the device
protocol (tools/simdevice.py, `help` with the optional `department`), and logged-in staff
following the live feeds as the department page's EventSource does: the social
department's (`/live/staff-dept/social`, measured), the medical department's and the
supervisors' (`*`) beside it. One call at a time: from sending the keypad's event to the
first frame of the social feed that holds the new call; then the specialist answers,
arrives and resolves it over HTTP (the page's buttons), so the list stays as short as a
working day keeps it. What it leaves out: the browser's own rendering and the sound.
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
from argon2 import PasswordHasher

from ...hub.core.measures import percentile
from ...hub.store.accounts import Accounts
from ...hub.web.livepatch import follow
from ..simdevice import SimDevice
from ..testkit.testbed import HubProcess, Mosquitto, quiet_port, wait_web, write_config

CENTRE = "bh"
PASSWORD = "bench-pass-1"
STAFF = (("soc1", "specialist", "social"), ("med1", "specialist", "medical"),
         ("sup", "supervisor", None))


async def _login(url: str, user: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=url, timeout=10)
    await http.get("/login")
    token = http.cookies["ow_csrf"]
    r = await http.post("/login", data={"username": user, "password": PASSWORD,
                                        "csrf": token}, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"login {user}: {r.status_code} {r.text[:200]}")
    http.headers["X-CSRF-Token"] = token
    return http


async def _follow(http: httpx.AsyncClient, feed: str, seen: dict[int, float],
                  new: asyncio.Event) -> None:
    """A department page's feed: when each call first shows in it."""
    async with http.stream("GET", f"/live/staff-dept/{feed}", timeout=None) as r:
        r.raise_for_status()
        state: Any = None
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                now = time.perf_counter()
                # a delta applies to the state before (hub/web/livepatch.py)
                state = follow(state, event, json.loads(line[5:]))
                for call in state["open"]:
                    if call["request"] not in seen:
                        seen[call["request"]] = now
                        new.set()


async def run(calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-help-") as tmp:
        root = Path(tmp)
        db = root / "hub.db"
        accounts = Accounts(f"sqlite:///{db}",
                            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        try:
            for user, role, dept in STAFF:
                accounts.add(user, PASSWORD, role, department=dept)
        finally:
            accounts.close()
        web_port = quiet_port()
        with Mosquitto(root / "broker") as broker:
            cfg = write_config(root / "centre.toml", CENTRE, broker.port, db, windows=2,
                               devices=[{"id": "kp-1", "role": "keypad", "window": 1}],
                               extra=f"\n[web]\nport = {web_port}\n")
            url = f"http://127.0.0.1:{web_port}"
            hub = HubProcess(cfg, root / "hub.log").start()
            try:
                await wait_web(url, "/login", hub)
                return await _measure(url, broker.port, calls)
            finally:
                hub.stop()


async def _measure(url: str, broker_port: int, calls: int) -> dict[str, Any]:
    soc, med, sup = [await _login(url, u) for u, _, _ in STAFF]
    seen: dict[int, float] = {}
    others: dict[str, dict[int, float]] = {"medical": {}, "*": {}}
    new = asyncio.Event()
    feeds = [asyncio.create_task(_follow(soc, "social", seen, new)),
             asyncio.create_task(_follow(med, "medical", others["medical"], asyncio.Event())),
             asyncio.create_task(_follow(sup, "*", others["*"], asyncio.Event()))]
    ms: list[float] = []
    try:
        async with SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", broker_port,
                             window=1) as kp:
            await kp.send("open", clerk="wang", timeout=30, retry=0.5)
            await asyncio.sleep(0.5)  # the feeds' first (empty) frames are in
            for _ in range(calls):
                before = set(seen)
                new.clear()
                t0 = time.perf_counter()
                await kp.send("help", department="social", timeout=30, retry=0.5)
                while set(seen) == before:
                    await asyncio.wait_for(new.wait(), 30)
                    new.clear()
                (request,) = set(seen) - before
                ms.append((seen[request] - t0) * 1000)
                for step in ("answer", "arrived", "resolved"):
                    r = await soc.post(f"/department/{step}", json={"request": request})
                    r.raise_for_status()
    finally:
        for f in feeds:
            f.cancel()
        await asyncio.gather(*feeds, return_exceptions=True)
        for http in (soc, med, sup):
            await http.aclose()
    return {"n": len(ms), "ms": ms, "medical_saw": len(others["medical"]),
            "supervisors_saw": len(others["*"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=60)
    args = ap.parse_args()
    r = asyncio.run(run(args.calls))
    xs = r["ms"]
    print(f"help call -> department page feed, {r['n']} keypad calls to one department (ms)")
    print(f"{'path':<28} {'p50':>8} {'p99':>8} {'max':>8}")
    print(f"{'keypad help -> dept page':<28} {percentile(xs, 50) or 0.0:>8.1f} "
          f"{percentile(xs, 99) or 0.0:>8.1f} {max(xs):>8.1f}")
    print(f"calls on another department's feed: {r['medical_saw']}; "
          f"on the supervisors' feed: {r['supervisors_saw']}")


if __name__ == "__main__":
    main()
