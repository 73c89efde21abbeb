"""Storage and broker faults under load, with real peers: the hub process, Mosquitto,
PostgreSQL (or SQLite on a small tmpfs), and simulated button boxes sending takes.

    python -m onewindow.tools.bench.fault_hub                 # the table for docs/benchmarks.md
    python -m onewindow.tools.bench.fault_hub --outages 5,15 --faults pg-stop

For each outage: takes sent, acknowledged (a `res` reached the box), lost (acknowledged but
not in the journal afterwards: must be 0), doubles (a take that got two tickets, or a ticket
number issued twice: must be 0), how long the hub said it was not ready, and the time from
storage returning to the hub's retained status saying `ready` again.

The pieces (HubWatch, TakeLoad, verdict) are also what hub/tests/test_storage_faults.py uses.

Why one module of 423 lines: the pieces and the long run are one scenario: the table's lost and
doubles columns are the same `verdict` hub/tests/test_storage_faults.py asserts, on the same
`TakeLoad` and `HubWatch`, so the benchmark and the test judge an outage by code read in one
place.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from ...protocol import ow_protocol as proto
from ..simdevice import DeviceError, SimDevice

CENTRE = "fault"


class HubWatch:
    """Every retained hub status the hub publishes, in order, with when it arrived."""

    def __init__(self, centre: str, port: int) -> None:
        self.centre, self.port = centre, port
        self.states: list[tuple[float, str, str | None]] = []  # (monotonic, state, boot)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def state(self) -> str | None:
        return self.states[-1][1] if self.states else None

    async def __aenter__(self) -> HubWatch:
        self._task = asyncio.create_task(self._run(), name="hub-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # Reconnects by itself: the broker-freeze fault stalls this client too.
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, keepalive=5) as sub:
                    await sub.subscribe(proto.hub_topic(self.centre), qos=1)
                    async for m in sub.messages:
                        msg = json.loads(bytes(m.payload))  # type: ignore[arg-type]
                        self.states.append((time.monotonic(), msg["state"], msg.get("boot")))
                        self._changed.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)  # broker away: try again

    async def until(self, pred: Callable[[HubWatch], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()

    def went(self, state: str, after: float) -> float | None:
        """When the hub first said `state` at or after monotonic time `after`."""
        return next((t for t, s, _ in self.states if s == state and t >= after), None)


@dataclass
class Take:
    dev: str
    seq: int
    sent: float
    sent_while: str | None  # the hub's status when the box pressed
    ticket: str | None = None
    answered: float | None = None


@dataclass
class TakeLoad:
    """Button boxes taking tickets back to back; each take is retried with the same seq
    every `retry` s until the hub answers, as the firmware does."""

    port: int
    watch: HubWatch
    items: list[str]
    boxes: list[str] = field(default_factory=lambda: ["box-1", "box-2", "box-3"])
    pause: float = 0.02
    retry: float = 0.5
    takes: list[Take] = field(default_factory=list)

    async def __aenter__(self) -> TakeLoad:
        self._stop = asyncio.Event()
        self._extra: list[SimDevice] = []  # boxes that pressed once (press)
        self._answered = asyncio.Event()  # set on each answer
        self._devices = [await self._connect(b, 0) for b in self.boxes]
        rng = random.Random(13)
        self._flows = [asyncio.create_task(self._flow(i, rng))
                       for i in range(len(self._devices))]
        return self

    async def _connect(self, dev: str, seq: int, old: SimDevice | None = None) -> SimDevice:
        # A persistent session, as the firmware's: commands sent while it was away wait.
        box = SimDevice(self.watch.centre, dev, "box", "127.0.0.1", self.port, seq=seq,
                        persistent=True, resume=old)
        await box.__aenter__()
        return box

    async def _reconnect(self, i: int) -> SimDevice:
        """The broker dropped box i (e.g. frozen past its keepalive): connect again as the
        firmware does, keeping its seq and the command ids it has already applied."""
        old = self._devices[i]
        with contextlib.suppress(Exception):
            await old.__aexit__(None, None, None)
        while True:
            try:
                box = await self._connect(old.dev, old.seq, old)
                break
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)  # the broker is not taking connections yet
        self._devices[i] = box
        return box

    async def _flow(self, i: int, rng: random.Random) -> None:
        box = self._devices[i]
        while not self._stop.is_set():
            seq = box.seq + 1
            payload = proto.encode("evt", proto.event(box.dev, seq, "take",
                                                      item=rng.choice(self.items)))
            take = Take(box.dev, seq, time.monotonic(), self.watch.state)
            self.takes.append(take)
            while True:
                try:
                    res = await box.send_raw(payload, seq, timeout=120, retry=self.retry)
                    break
                except DeviceError as e:
                    raise AssertionError(f"{box.dev} seq {seq} refused: {e.reply}") from e
                except aiomqtt.MqttError:
                    box = await self._reconnect(i)  # then the same take, same seq
            take.ticket, take.answered = res["ticket"], time.monotonic()
            self._answered.set()
            await asyncio.sleep(rng.uniform(0, self.pause))

    async def press(self, dev: str) -> Take:
        """One take from another box (registered, not in `boxes`): e.g. pressed mid-outage."""
        take = Take(dev, 1, time.monotonic(), self.watch.state)
        self.takes.append(take)
        async with SimDevice(self.watch.centre, dev, "box", "127.0.0.1", self.port) as box:
            res = await box.send("take", item=self.items[0], timeout=120, retry=self.retry)
            take.ticket, take.answered = res["ticket"], time.monotonic()
            async with asyncio.timeout(10):  # its print command, as the others'
                await box.next_command("print")
            self._extra.append(box)
        return take

    def acked(self) -> list[Take]:
        return [t for t in self.takes if t.ticket is not None]

    async def until_acked(self, n: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.acked()) < n:
                self._answered.clear()
                await self._answered.wait()

    async def stop(self, timeout: float = 120) -> None:
        """Let every take in flight be answered, then disconnect the boxes."""
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.gather(*self._flows), timeout)
        finally:
            for d in self._devices:
                await d.__aexit__(None, None, None)

    def printed(self) -> dict[str, list[str]]:
        return {d.dev: [p["ticket"] for p in d.printed] for d in self._devices + self._extra}

    async def __aexit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            with contextlib.suppress(Exception):
                await self.stop(10)


@dataclass
class Verdict:
    sent: int
    acked: int
    lost: list[str]
    doubles: list[str]


def verdict(load: TakeLoad, journal_takes: list[tuple[str, int, str]]) -> Verdict:
    """`journal_takes`: (dev, seq, ticket number) of every take in the journal afterwards."""
    acked = load.acked()
    stored = {(d, s): n for d, s, n in journal_takes}
    lost = [f"{t.dev}#{t.seq} {t.ticket}" for t in acked if stored.get((t.dev, t.seq)) != t.ticket]
    per_take = Counter((d, s) for d, s, _ in journal_takes)
    per_number = Counter(n for _, _, n in journal_takes)
    answered = Counter(t.ticket for t in acked)
    doubles = sorted({f"{d}#{s}" for (d, s), k in per_take.items() if k > 1}
                     | {n for n, k in per_number.items() if k > 1}
                     | {n for n, k in answered.items() if k > 1})
    return Verdict(len(load.takes), len(acked), lost, doubles)


def journal_takes(config: Path, url: str) -> list[tuple[str, int, str]]:
    """(dev, seq, ticket number) of each take the journal holds, read back by replaying it
    into the real core, as a restarted hub would: the number is the core's. A take record
    journaled twice for one (dev, seq) shows up twice."""
    from ...hub import config as hub_config
    from ...hub.runner import build_app
    from ...hub.store.journal import Journal

    j = Journal(url)
    try:
        app = build_app(hub_config.load(config), j)
        issued = [(t.source or "", t.request or 0, t.number)
                  for t in app.centre.tickets.values() if t.request is not None]
        records = Counter((r.dev, r.seq) for r in j.read() if r.op == "take")
    finally:
        j.close()
    for key, k in records.items():  # a second record for one press, even if refused
        issued += [(str(key[0]), int(key[1] or 0), "second record")] * (k - 1)
    return issued


@contextlib.contextmanager
def small_disk(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root only): a disk that can be filled."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> Path:
    """Fill the file system of `disk` to the last byte; the filler file to delete later."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to fail on close
        for size in (65536, 4096, 512, 1):  # the tail a bigger write could not take
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    return filler


__all__ = ["CENTRE", "HubWatch", "Take", "TakeLoad", "Verdict", "fill", "journal_takes",
           "small_disk", "verdict"]


# ---- the long version: a table of outages ----------------------------------------------------

@dataclass
class Row:
    fault: str
    outage: float  # s: how long the fault was held (restart: as long as pg_ctl took)
    verdict: Verdict
    unprinted: int  # acknowledged takes whose ticket never reached the box's printer
    across: int  # presses in flight across the fault: sent before it ended, answered after
    #              it began (their boxes retried with the same seq meanwhile)
    not_ready: float | None  # s the hub said it was not ready (None: it never did)
    to_ready: float | None  # s from the fault's end to the hub saying ready again


async def run_fault(fault: str, hold: float, workdir: Path) -> Row:
    """One fault under load with fresh peers; `fault`: pg-restart, pg-stop, sqlite-full,
    broker-freeze or hub-freeze (the hub process stopped with SIGSTOP, as a long GC pause or
    a stalled disk would: here the boxes keep retrying the same seq; the firmware's offline
    ticket after 5 s is hil-tests/test_hil_stall.py)."""
    from ...hub.catalog import load_catalog
    from ..testkit.testbed import HubProcess, Mosquitto, Postgres, default_devices, write_config

    items = sorted(i.id for i in load_catalog().items.values()
                   if "comprehensive" in i.window_kinds)[:3]
    boxes = [f"box-{n}" for n in range(1, BOXES + 1)]
    devices = default_devices(4) + [{"id": b, "role": "box"} for b in boxes[1:]]
    stack = contextlib.ExitStack()
    with stack:
        broker = stack.enter_context(Mosquitto(workdir / "broker"))
        url = None
        db = workdir / "hub.db"
        if fault.startswith("pg-"):
            pg = stack.enter_context(Postgres())
            url = pg.url
        elif fault == "sqlite-full":
            disk = stack.enter_context(small_disk(workdir / "disk", "16m"))
            db = disk / "hub.db"
        cfg = write_config(workdir / "centre.toml", CENTRE, broker.port, db, devices=devices,
                           database_url=url)
        hub = HubProcess(cfg, workdir / "hub.log").start()
        stack.callback(hub.stop)
        filler: list[Path] = []

        async def breaking() -> None:
            if fault == "pg-restart":
                await asyncio.to_thread(pg.restart)
            elif fault == "pg-stop":
                await asyncio.to_thread(pg.halt)
            elif fault == "sqlite-full":
                filler.append(fill(disk))
            elif fault == "hub-freeze":
                assert hub.proc is not None
                os.kill(hub.proc.pid, signal.SIGSTOP)
            else:
                assert broker.proc is not None
                os.kill(broker.proc.pid, signal.SIGSTOP)

        async def mending() -> None:
            if fault == "pg-stop":
                await asyncio.to_thread(pg.resume)
            elif fault == "sqlite-full":
                filler.pop().unlink()
            elif fault == "broker-freeze":
                assert broker.proc is not None
                os.kill(broker.proc.pid, signal.SIGCONT)
            elif fault == "hub-freeze":
                assert hub.proc is not None
                os.kill(hub.proc.pid, signal.SIGCONT)

        async with HubWatch(CENTRE, broker.port) as watch:
            await watch.until(lambda w: w.state == "ready", 60)
            async with TakeLoad(broker.port, watch, items, boxes) as load:
                await load.until_acked(30, 60)
                broke = time.monotonic()
                await breaking()
                await asyncio.sleep(max(0.0, hold - (time.monotonic() - broke)))  # the fault
                mended = time.monotonic()
                await mending()
                # Ready again, if it ever said otherwise (a short broker freeze may not; a
                # longer one shows up later, as the broker wakes and the hub reconnects).
                await watch.until(lambda w: w.state == "ready" and (
                    w.went("ready", mended) is not None
                    or all(s == "ready" for t, s, _ in w.states if t >= broke)), 60)
                await load.until_acked(len(load.acked()) + 30, 120)
                await load.stop()
                await asyncio.sleep(1.0)  # print commands trailing their last res
            down = next((t for t, s, _ in watch.states if s != "ready" and t >= broke), None)
            back = watch.went("ready", down) if down is not None else None
        if hub.proc is None or hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited under {fault}: see {workdir / 'hub.log'}")
        hub.stop()
        v = verdict(load, journal_takes(cfg, url or f"sqlite:///{db}"))
        printed = load.printed()
        unprinted = sum(1 for t in load.acked() if t.ticket not in printed.get(t.dev, []))
        across = sum(1 for t in load.acked() if t.sent < mended and t.answered > broke)
        return Row(fault, hold if fault != "pg-restart" else mended - broke, v, unprinted,
                   across,
                   None if down is None or back is None else back - down,
                   None if back is None else max(0.0, back - mended))


def table(rows: list[Row]) -> str:
    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    out = ["| fault | outage s | takes sent | acknowledged | held across it | lost | doubles "
           "| unprinted | not ready s | ready after fault ends s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r.fault} | {r.outage:.1f} | {r.verdict.sent} | {r.verdict.acked} "
                   f"| {r.across} | {len(r.verdict.lost)} | {len(r.verdict.doubles)} "
                   f"| {r.unprinted} "
                   f"| {s(r.not_ready)} | {s(r.to_ready)} |")
    return "\n".join(out)


BOXES = 8  # each has one press in flight at a time, as a real box
PLAN = {"pg-restart": [0.0], "pg-stop": [5.0, 10.0, 15.0], "sqlite-full": [3.0, 10.0],
        "broker-freeze": [3.0, 16.0], "hub-freeze": [3.0, 8.0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", default=",".join(PLAN), help="comma-separated: " + ", ".join(PLAN))
    ap.add_argument("--outages", help="comma-separated seconds, instead of each fault's own")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ow-fault-") as tmp:
        Path(tmp).chmod(0o755)
        for fault in args.faults.split(","):
            holds = ([float(x) for x in args.outages.split(",")] if args.outages
                     else PLAN[fault])
            for k, hold in enumerate(holds):
                rows.append(asyncio.run(run_fault(fault, hold, Path(tmp) / f"{fault}-{k}")))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    when = dt.datetime.now(dt.UTC)
    print(f"\nFaults, {when:%Y-%m-%d %H:%M} UTC (commit {commit}, {os.cpu_count()} CPUs):\n")
    print(table(rows))
    bad = [r for r in rows if r.verdict.lost or r.verdict.doubles or r.unprinted]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
