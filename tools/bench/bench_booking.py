"""Booking check-in -> ticket (issue 16): a resident's booking checked in at the kiosk,
from the check-in sent to its ticket answered, beside a plain take measured in the same run.

    python -m onewindow.tools.bench.bench_booking               # 100 of each, each way
    python -m onewindow.tools.bench.bench_booking --rounds 300

The real `onewindow hub` process with a private Mosquitto and [web]; the centre's secret
made as `onewindow broker-config` makes it (booking codes are signed with a key from it).
First `2 x rounds` residents book SOC-001 in the current slot through POST /book (each its
own mobile number; slots of 5 minutes, room for all; the per-address and per-resident
limits raised for the run: one address books them all). Then, alternating, each way:

* MQTT: the kiosk `kiosk-1` (tools/simdevice.py, the device protocol) sends `checkin` with
  the booking's QR text, as its scanner reads it, and waits for the hub's reply with the
  appointment ticket; then a plain `take` from the same kiosk. Event published -> reply
  received.
* HTTP: POST /kiosk/checkin with the QR text over one kept-alive connection, answered with
  the ticket; then POST /kiosk/take on the same connection. Request sent -> whole response
  read.

The path measured: the signed code verified, the core's check-in (an appointment ticket in
its slot), the SQLite commit, the printed ticket and the reply. Nobody is served: the queue
grows by two tickets a round on each path (to 4 x rounds waiting). The centre is open
00:00-23:59 China time: a run started in its last minutes finds no slot of today to check in.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ...hub.core.measures import percentile
from ...hub.fleet.registry import Fleet
from ..simdevice import SimDevice
from ..testkit.testbed import HubProcess, Mosquitto, quiet_port, wait_http, write_config

CENTRE = "bb"
ITEM = "SOC-001"
KIOSK = "kiosk-1"
ALL_DAY = '"00:00-23:59"'
MAX_ROUNDS = 500
ROWS = ("mqtt checkin (kiosk event, booking QR)", "mqtt take (kiosk event)",
        "http checkin (/kiosk/checkin, kept-alive)", "http take (/kiosk/take, kept-alive)")


def _config(root: Path, broker_port: int, web_port: int, rounds: int) -> Path:
    db = root / "hub.db"
    Fleet(f"sqlite:///{db}").secret(create=True)
    many = 10 * rounds + 100  # requests per address: bookings, check-ins and takes
    extra = (f'\n[web]\nhost = "127.0.0.1"\nport = {web_port}\n'
             f"\n[hours]\nweekdays = {ALL_DAY}\nsat = {ALL_DAY}\nsun = {ALL_DAY}\n"
             f"\n[booking]\nslot_minutes = 5\ncapacity = {{ social = {2 * rounds} }}\n"
             "\n[booking.limits]\n"
             f"address = {{ burst = {many}, per_minute = {many} }}\n"
             f"resident = {{ burst = {many}, per_minute = {many} }}\n")
    return write_config(root / "centre.toml", CENTRE, broker_port, db, windows=1,
                        devices=[{"id": KIOSK, "role": "kiosk"},
                                 {"id": "kp-1", "role": "keypad", "window": 1}],
                        extra=extra)


async def _book(http: httpx.AsyncClient, n: int) -> list[str]:
    """n bookings in the slot open now: their QR texts."""
    r = await http.get("/book/slots.json", params={"item": ITEM})
    r.raise_for_status()
    slot = r.json()["slots"][0]["slot"]  # the first slot still open: check-in is open
    codes = []
    for i in range(n):
        r = await http.post("/book", json={"item": ITEM, "slot": slot,
                                           "phone": f"1381234{i:04d}"})
        if r.status_code != 200:
            raise RuntimeError(f"booking {i}: {r.status_code} {r.text}")
        codes.append(r.json()["qr_text"])
    return codes


async def run(rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ROWS}
    with tempfile.TemporaryDirectory(prefix="bench-booking-") as tmp:
        root = Path(tmp)
        web_port = quiet_port()
        with Mosquitto(root / "broker") as broker:
            cfg = _config(root, broker.port, web_port, rounds)
            hub = HubProcess(cfg, root / "hub.log").start()
            try:
                try:
                    await wait_http(web_port)
                except TimeoutError:
                    log = (root / "hub.log").read_text(encoding="utf-8", errors="replace")
                    raise RuntimeError(f"the hub's web did not start:\n{log[-3000:]}") from None
                limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}",
                                             limits=limits, timeout=10) as http, \
                        SimDevice(CENTRE, KIOSK, "kiosk", "127.0.0.1", broker.port) as kiosk:
                    await http.get("/book")
                    http.headers["x-csrf-token"] = http.cookies["ow_csrf"]
                    codes = await _book(http, 2 * rounds)
                    await kiosk.send("take", item=ITEM, timeout=30, retry=0.5)  # warm
                    for i in range(rounds):
                        await _mqtt(kiosk, codes[2 * i], out)
                        await _http(http, codes[2 * i + 1], out)
            finally:
                hub.stop()
    return out


async def _mqtt(kiosk: SimDevice, code: str, out: dict[str, list[float]]) -> None:
    t = time.perf_counter()
    reply = await kiosk.send("checkin", code=code, timeout=10)
    out[ROWS[0]].append((time.perf_counter() - t) * 1000)
    _ticket(reply, "A")
    t = time.perf_counter()
    reply = await kiosk.send("take", item=ITEM, timeout=10)
    out[ROWS[1]].append((time.perf_counter() - t) * 1000)
    _ticket(reply, "A")


async def _http(http: httpx.AsyncClient, code: str, out: dict[str, list[float]]) -> None:
    t = time.perf_counter()
    r = await http.post("/kiosk/checkin", json={"device": KIOSK, "code": code})
    out[ROWS[2]].append((time.perf_counter() - t) * 1000)
    if r.status_code != 200 or r.json().get("late"):
        raise RuntimeError(f"check-in: {r.status_code} {r.text}")
    t = time.perf_counter()
    r = await http.post("/kiosk/take", json={"device": KIOSK, "item": ITEM, "insist": True})
    out[ROWS[3]].append((time.perf_counter() - t) * 1000)
    if r.status_code != 200:
        raise RuntimeError(f"take: {r.status_code} {r.text}")


def _ticket(reply: dict[str, Any], prefix: str) -> None:
    number = reply.get("ticket")
    if not isinstance(number, str) or not number.startswith(prefix):
        raise RuntimeError(f"no ticket in the hub's reply: {reply}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100, help="check-ins and takes each way")
    a = ap.parse_args()
    if not 1 <= a.rounds <= MAX_ROUNDS:
        ap.error(f"--rounds: 1..{MAX_ROUNDS} (a slot holds at most 1,000 bookings)")
    r = asyncio.run(run(a.rounds))
    print(f"booking check-in -> ticket beside a plain take, {a.rounds} each, the hub process, "
          "SQLite journal, Mosquitto (target: HTTP check-in p99 <= 10 ms)")
    print("| path | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, xs in r.items():
        print(f"| {name} | {len(xs)} | {percentile(xs, 50) or 0.0:.1f} | "
              f"{percentile(xs, 99) or 0.0:.1f} | {max(xs):.1f} |")


if __name__ == "__main__":
    main()
