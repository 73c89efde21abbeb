"""Storage and broker faults under load, with real peers: the hub process, Mosquitto,
PostgreSQL (or SQLite on a small tmpfs), and simulated button boxes sending takes.

    python -m onewindow.tools.fault_hub                 # the table for docs/benchmarks.md
    python -m onewindow.tools.fault_hub --outages 5,15 --faults pg-stop

For each outage: takes sent, acknowledged (a `res` reached the box), lost (acknowledged but
not in the journal afterwards: must be 0), doubles (a take that got two tickets, or a ticket
number issued twice: must be 0), how long the hub said it was not ready, and the time from
storage returning to the hub's retained status saying `ready` again.

The pieces (HubWatch, TakeLoad, verdict) are also what hub/tests/test_storage_faults.py uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from ..protocol import ow_protocol as proto
from .simdevice import DeviceError, SimDevice

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
        self._devices = [SimDevice(self.watch.centre, b, "box", "127.0.0.1", self.port)
                         for b in self.boxes]
        for d in self._devices:
            await d.__aenter__()
        rng = random.Random(13)
        self._flows = [asyncio.create_task(self._flow(d, rng)) for d in self._devices]
        return self

    async def _flow(self, box: SimDevice, rng: random.Random) -> None:
        while not self._stop.is_set():
            take = Take(box.dev, box.seq + 1, time.monotonic(), self.watch.state)
            self.takes.append(take)
            try:
                res = await box.send("take", item=rng.choice(self.items), timeout=120,
                                     retry=self.retry)
            except DeviceError as e:
                raise AssertionError(f"{box.dev} seq {take.seq} refused: {e.reply}") from e
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
    from ..hub import config as hub_config
    from ..hub.runner import build_app
    from ..hub.store.journal import Journal

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
    chunk = b"\0" * 65536
    with open(filler, "wb") as f:
        while True:
            try:
                f.write(chunk)
                f.flush()
            except OSError:
                break
        for size in (4096, 512, 1):  # the tail a 64 KiB write could not take
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
                    f.flush()
    return filler


__all__ = ["CENTRE", "HubWatch", "Take", "TakeLoad", "Verdict", "fill", "journal_takes",
           "small_disk", "verdict"]
