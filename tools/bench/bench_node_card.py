"""Benchmark: a resident taps a card at a kiosk -> the ticket's bytes are at the printer.

    python -m onewindow.tools.bench.bench_node_card [--n 30]

Real parts throughout: pcscd with the vpcd virtual reader and our virtual card
(tools/testkit/vcard.py), the node's PcscReader, the kiosk NodeApp and NodeLink, a private Mosquitto
and the `onewindow hub` process (which renders the ticket). Each tap is a different resident.
Two clocks per tap:

* tap -> printed: `VirtualCard.insert()` to the last ticket byte handed to the printer.
* card read -> printed: the reader's `inserted` event (ATR, UID and identifier read) to the
  printer. The difference is pcscd noticing the card: it polls the *virtual* reader every
  400 ms, while a USB reader reports a card at once.

pcscd must be running with vpcd (`tools/dev.sh test` installs both); if none answers, one is
started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ...node.app import Inputs, NodeApp
from ...node.card import PcscReader, resident_token
from ...node.config import from_dict
from ...node.link import NodeLink
from ..testkit.testbed import HubProcess, Mosquitto, write_config
from ..testkit.vcard import VirtualCard

SECRET = b"bench-centre-secret-0123456789"


def _vpcd_reader() -> str | None:
    from smartcard.System import readers

    try:
        return next((str(r) for r in readers() if "Virtual PCD" in str(r)), None)
    except Exception:  # no pcscd
        return None


def _ensure_pcscd() -> subprocess.Popen[bytes] | None:
    if _vpcd_reader():
        return None
    proc = subprocess.Popen([shutil.which("pcscd") or "/usr/sbin/pcscd", "--foreground"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while not _vpcd_reader():
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("pcscd did not come up with the vpcd reader")
        time.sleep(0.05)
    return proc


class Printer:
    """The kiosk's printer: records when each ticket's bytes arrived."""

    def __init__(self) -> None:
        self.jobs: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.jobs.append((time.monotonic(), data))


async def run(n: int) -> dict[str, list[float]]:
    pcscd = _ensure_pcscd()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            with Mosquitto(tmp / "broker") as broker:
                devices = [{"id": "kiosk-1", "role": "kiosk"}]
                conf = write_config(tmp / "centre.toml", "bench", broker.port, tmp / "hub.db",
                                    windows=4, devices=devices)
                hub = HubProcess(conf, tmp / "hub.log").start()
                try:
                    return await _taps(n, broker.port, tmp)
                finally:
                    hub.stop()
    finally:
        if pcscd is not None:
            pcscd.terminate()
            pcscd.wait()


async def _taps(n: int, port: int, tmp: Path) -> dict[str, list[float]]:
    cfg = from_dict({"node": {"id": "kiosk-1", "centre": "bench", "role": "kiosk",
                              "secret": SECRET.decode(), "state_dir": str(tmp / "kiosk")},
                     "broker": {"host": "127.0.0.1", "port": port},
                     "kiosk": {"item": "SOC-001"}})
    reader_name = _vpcd_reader()
    assert reader_name is not None
    printer = Printer()
    reader = PcscReader(readers=[reader_name])
    await reader.start()
    read_at: list[float] = []

    async def cards():  # the reader's events, timestamped as the app receives them
        async for ev in reader:
            if ev.kind == "inserted":
                read_at.append(time.monotonic())
            yield ev

    link = NodeLink(cfg)
    app = NodeApp(cfg, link, Inputs(cards=cards(), printer=printer,
                                    token=lambda ident: resident_token(SECRET, ident)))
    task = asyncio.create_task(app.run())
    try:
        while not link.online():
            await asyncio.sleep(0.05)
        tap, read, noticed = [], [], []
        for i in range(n):
            card = VirtualCard(uid=i.to_bytes(7, "big"), ident=f"3101011990010{i:05d}")
            jobs = len(printer.jobs)
            t0 = time.monotonic()
            card.insert()
            while len(printer.jobs) == jobs:
                await asyncio.sleep(0.002)
            printed = printer.jobs[-1][0]
            tap.append(printed - t0)
            read.append(printed - read_at[-1])
            noticed.append(read_at[-1] - t0)
            card.remove()
            await asyncio.sleep(0.5)  # the card leaves the reader before the next resident
        return {"tap": tap, "read": read, "noticed": noticed}
    finally:
        task.cancel()
        await reader.close()


def _row(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return (f"p50 {statistics.median(xs) * 1000:.0f} / p99 {p99 * 1000:.0f} / "
            f"max {xs[-1] * 1000:.0f} ms ({len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    r = asyncio.run(run(ap.parse_args().n))
    rows = [("card tapped (virtual card inserted) -> ticket bytes at the printer", _row(r["tap"])),
            ("card read by the node (ATR, UID, identifier) -> ticket bytes at the printer",
             _row(r["read"])),
            ("card tapped -> the node's `inserted` event, identifier read (pcscd polling)",
             _row(r["noticed"]))]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    main()
