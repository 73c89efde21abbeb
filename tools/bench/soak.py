"""The 30-day soak: the real hub process through a month of simulated working days.

    python -m onewindow.tools.bench.soak [--days 30] [--speed 1000] [--windows 8] [--postgres]

ONLY THE CLOCK IS ACCELERATED. The hub is its own process, the real `serve` of
hub/serve.py (tools/bench/soakhub.py: `serve(config, clock=...)`), with its real journal (SQLite,
or PostgreSQL from tools/testkit/testbed.py with `--postgres`) and a real Mosquitto
(tools/testkit/testbed.py). The people are the simulator's Engine (hub/sim), acting through
simulated devices (tools/simdevice.py) over MQTT exactly as `onewindow demo` does (its
`Simulation` and `Actuator`, imported). Both processes compute simulated time from the same
three numbers, `epoch + max(0, time.time() - wall) * speed`.

Each working day: the hub process starts (a restart: it loads the latest snapshot and
replays the journal after it); the engine's day runs from 08:50 through closing; the first
command of the next day closes the previous one in the core (the hub snapshots at a day's
close); after the day the hub is measured from outside and stopped with SIGTERM; nights and
weekends are skipped by giving the next start the next working morning's epoch. After the
last day, one more start-up the next morning and a keypad's `open` close that last day.

The engine reads the hub's decisions (which ticket a call brought, a number's ticket): in
the demo it reads the hub's Centre in its own process; here the hub is another process, so
the engine reads a mirror, a HubApp that replays the hub's journal (the start-up replay)
after each answer, before the engine sees it. The hub journals before it answers, so the
mirror holds exactly what the hub decided.

Measured per day, from outside the hub: RSS, open file descriptors and threads (/proc: psutil
is not among the project's dependencies), the hub's asyncio task count (SIGUSR1 makes
soakhub write it), each the lowest of ten readings over half a second after the day (a
publish awaiting its PUBACK is a task for a moment; a leak is in every reading), start-up
time (process start to the retained hub status `ready` of the new boot) and what start-up
replayed (its log line). Compared per day: every operation the
engine had accepted against the hub's journal for that day, and the engine's visit outcomes
against the hub's own closed-day summary (history_days: tickets, served, no-shows).

Promises (`check`): counts equal every day; no device error, every hub stop clean; RSS after
each day from day 3 on within +10 % of day 2's (each day's hub is a fresh process, so its
RSS after a day is start-up plus one day's state: 10 % leaves room for the allocator's
arena noise, ~6 MB of a ~60 MB process, while the growth a leak of a day's tickets or a
whole-journal replay would bring is bigger and grows with the days); fds (other than the
SQLite journal's files) and tasks never above the first two days' highest; connections to
the journal never above the engine's pool (hub/store/db.py POOL_SIZE) and the WAL
checkpointer's one; threads never above
the hub's bound (hub/serve.py MAX_THREADS: its worker threads start when two blocking jobs
first overlap, which may be on any day); start-up never more than twice day 2's plus 0.5 s
and never a whole-journal replay after day 1 (the snapshot's tail at most a day of records).

Why one module of 575 lines: it is one measurement, read top to bottom: the hub process and how
it is read from outside, the mirror the engine decides with, the counts, the month's loop, then
the promises `check` holds the rows to, each judged on figures taken a few screens above.
Nothing here serves another module but tools/tests/test_soak.py (a short run of the same
`run_soak` and `check`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiomqtt
from sqlalchemy import select

from ...hub.app import HubApp
from ...hub.catalog import load_catalog
from ...hub.config import HubConfig, from_dict
from ...hub.core import commands as c
from ...hub.core.centre import Centre
from ...hub.devices import Registry
from ...hub.mqtt.broker import LOOPBACK
from ...hub.serve import MAX_THREADS
from ...hub.sim.engine import Rating
from ...hub.sim.metrics import DayResult
from ...hub.sim.model import at_local, day_info
from ...hub.store.db import POOL_SIZE
from ...hub.store.history import days as history_days
from ...hub.store.journal import Journal
from ...protocol import ow_protocol as proto
from .. import demo
from ..simdevice import SimDevice
from ..testkit.testbed import Mosquitto, Postgres, terminate

# The engine's pool, and the journal's WAL checkpointer's own connection (checkpoint.py).
DB_CONNS = POOL_SIZE + 1
START_GRACE = 3.0  # real s the hub's clock holds at 08:50 while the process starts
READY_TIMEOUT = 60.0  # real s for a start-up
STOP_GRACE = 30.0  # real s for a SIGTERM before SIGKILL (a SIGKILL is reported)
RSS_LIMIT = 1.10  # RSS after any day from day 3 on, at most this times day 2's
FIRST_DAY = dt.date(2026, 11, 2)  # a Monday
# The engine's commands as the hub journals them.
ENGINE_OPS = ("take", "open", "close", "call", "recall", "start", "complete", "skip",
              "transfer", "pause", "resume", "rate")
STARTUP_LINE = re.compile(r"state from the snapshot at position (\d+).*?and (\d+) journal "
                          r"records|no usable snapshot: replayed all (\d+) journal records")


def working_days(first: dt.date, n: int) -> list[dt.date]:
    out, d = [], first
    while len(out) < n:
        if day_info(d).open:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def day_key(d: dt.date) -> str:
    return d.strftime("%Y%m%d")


# ---- the hub process ---------------------------------------------------------------------

@dataclass(slots=True)
class HubProc:
    """One run of tools/bench/soakhub.py; its log goes to `log` (appended across restarts)."""

    config: Path
    log: Path
    stats: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() at launch

    def start(self, epoch: float, wall: float, speed: float) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 (the child holds it)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "onewindow.tools.bench.soakhub", "--config", str(self.config),
             "--epoch", repr(epoch), "--wall", repr(wall), "--speed", repr(speed),
             "--stats", str(self.stats)],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        out.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM; the exit status (-9: it needed a SIGKILL after STOP_GRACE)."""
        assert self.proc is not None
        return terminate(self.proc, STOP_GRACE)

    async def tasks(self, timeout: float = 10.0) -> int:
        """The hub loop's asyncio task count (SIGUSR1: soakhub writes it to `stats`)."""
        asked = time.time()
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # a file the other process writes: polled
            with contextlib.suppress(OSError, ValueError):
                got = json.loads(self.stats.read_text())
                if got["at"] >= asked:
                    return int(got["tasks"])
            await asyncio.sleep(0.01)
        raise TimeoutError("the hub did not report its tasks")


def proc_stats(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, open file descriptors, threads) of a process, from /proc."""
    rss_kb = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd")), threads


def journal_files(pid: int, db: Path | None) -> tuple[int, int]:
    """(fds on the SQLite journal's files, connections to it) of a process. Each SQLite
    connection opens the database file and its -wal file itself (the -shm is shared by the
    process), and the engine's pool keeps up to POOL_SIZE connections: one more appears
    whenever a thread (a snapshot, a report) commits while the loop does, which may be on
    any day. Those are counted apart so that the fds compared day to day are the rest."""
    if db is None:
        return 0, 0
    files = conns = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(db)):
            files += 1
            conns += target == str(db)
    return files, conns


async def settled(hub: HubProc, db: Path | None = None, samples: int = 10, every: float = 0.05
                  ) -> tuple[float, int, int, int, int]:
    """(RSS MB, fds other than the journal's, threads, tasks, journal connections) of the hub
    after a day: each the lowest of `samples` readings `every` s apart. A publish waiting for
    its PUBACK is a task for a moment, a snapshot's worker holds a file a moment: those come
    and go; what leaks is there in every reading and raises the floor."""
    readings = []
    for k in range(samples):
        if k:
            await asyncio.sleep(every)  # readings spread over time, not a wait for a state
        rss, fds, threads = proc_stats(hub.pid)
        files, conns = journal_files(hub.pid, db)
        readings.append((rss, fds - files, threads, await hub.tasks(), conns))
    rss, fds, threads, tasks, conns = (min(x) for x in zip(*readings, strict=True))
    return rss, int(fds), int(threads), int(tasks), int(conns)


class HubStatus:
    """The retained hub status topic, watched: `ready` waits for a boot not seen before."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.state: tuple[str, str] = ("", "")  # (state, boot)
        self.changed = asyncio.Condition()

    async def follow(self, centre: str) -> None:
        await self.client.subscribe(proto.hub_topic(centre), qos=1)
        async for msg in self.client.messages:
            body = json.loads(bytes(cast(bytes, msg.payload)))
            async with self.changed:
                self.state = (str(body.get("state")), str(body.get("boot")))
                self.changed.notify_all()

    async def ready(self, seen: set[str], hub: HubProc, timeout: float = READY_TIMEOUT) -> str:
        async def wait() -> str:
            async with self.changed:
                while not (self.state[0] == "ready" and self.state[1] not in seen):
                    if not hub.alive():
                        raise RuntimeError("the hub process exited during start-up")
                    # Woken by a status message, or each second to see the process died.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), 1.0)
                return self.state[1]
        return await asyncio.wait_for(wait(), timeout)


# ---- the engine's view of the hub: its journal, replayed -----------------------------------

class Mirror:
    """The hub's state as its journal says: a HubApp replaying each new record (as start-up
    does), rendering nothing. `catch_up` after each answer from the hub."""

    def __init__(self, config: HubConfig, url: str) -> None:
        self.journal = Journal(url)
        self.app = HubApp(Centre(load_catalog(config.catalog_path), config.centre),
                          Registry(list(config.devices)), "soak-mirror")

    def catch_up(self) -> None:
        self.app.replay(self.journal.read(self.app.pos), {})

    def close(self) -> None:
        self.journal.close()


class Following:
    """A device for the demo's Actuator whose every answer is followed by the mirror
    catching up, before the engine reads it."""

    def __init__(self, device: SimDevice, mirror: Mirror) -> None:
        self.device, self.mirror = device, mirror

    async def send(self, typ: str, **fields: Any) -> dict[str, Any]:
        try:
            return await self.device.send(typ, **fields)
        finally:
            self.mirror.catch_up()


class Accepted:
    """The engine's `act`, counting each command the hub accepted, by journal op."""

    def __init__(self, act: Any) -> None:
        self.act = act
        self.ops: Counter[str] = Counter()

    def __call__(self, cmd: c.Command, now: float, dev: str | None) -> list[Any]:
        effects = self.act(cmd, now, dev)  # a refusal raises Rejected: not counted
        self.ops["rate" if isinstance(cmd, Rating) else cmd.op] += 1
        return effects


# ---- counts --------------------------------------------------------------------------------

def engine_outcomes(day: DayResult) -> dict[str, int]:
    """The simulator's own account of a day's tickets."""
    taken = [v for v in day.visits if v.ticket is not None]
    return {"tickets": len(taken),
            "served": sum(v.outcome in ("done", "incomplete") for v in taken),
            "no_shows": sum(v.outcome == "no_show" for v in taken)}


def journal_ops(journal: Journal, after: int, d: dt.date) -> tuple[Counter[str], int]:
    """The engine-kind operations the hub journaled on day `d` (after position `after`),
    and the last position read."""
    start, end = at_local(d, dt.time()), at_local(d + dt.timedelta(days=1), dt.time())
    ops: Counter[str] = Counter()
    last = after
    for rec in journal.read(after):
        last = rec.pos
        if start <= rec.ts < end and rec.body["op"] in ENGINE_OPS:
            ops[rec.body["op"]] += 1
    return ops, last


def hub_outcomes(journal: Journal, d: dt.date) -> dict[str, int] | None:
    """The hub's closed-day summary (history_days), None while the day is not closed."""
    with journal.engine.connect() as conn:
        row = conn.execute(select(history_days.c.tickets, history_days.c.served,
                                  history_days.c.no_shows)
                           .where(history_days.c.day == day_key(d))).first()
    if row is None:
        return None
    return {"tickets": row.tickets, "served": row.served, "no_shows": row.no_shows}


def startup_replay(log_text: str) -> str:
    """What the latest start-up replayed, from its log line: "snap+N" or "all N"."""
    found = list(STARTUP_LINE.finditer(log_text))
    if not found:
        return "?"
    m = found[-1]
    return f"snap+{m.group(2)}" if m.group(1) else f"all {m.group(3)}"


# ---- the soak --------------------------------------------------------------------------------

@dataclass(slots=True)
class DayRow:
    n: int
    date: dt.date
    engine: dict[str, int]  # tickets, served, no_shows
    hub: dict[str, int] | None = None  # history_days, once the day closed
    engine_ops: Counter[str] = field(default_factory=Counter)
    hub_ops: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    rss_mb: float = 0.0
    fds: int = 0  # other than the SQLite journal's files (counted in db_conns)
    db_conns: int = 0  # connections open to the SQLite journal (0 on PostgreSQL)
    threads: int = 0
    tasks: int = 0
    startup_s: float = 0.0
    replayed: str = "?"
    exit: int | None = None
    wall_s: float = 0.0

    @property
    def ops_equal(self) -> bool:
        return self.engine_ops == self.hub_ops

    @property
    def counts_equal(self) -> bool:
        return self.hub == self.engine and self.ops_equal


@dataclass(slots=True)
class Soak:
    rows: list[DayRow]
    final_startup_s: float
    final_replayed: str
    workdir: Path


def hub_config(windows: int, layout_name: str, port: int, url: str, db: Path
               ) -> dict[str, Any]:
    """The demo's centre (its layout, a keypad and an LED board at each window, two boxes,
    a kiosk, a hall board) on an external broker, without accounts: a testbed Mosquitto."""
    p = demo.plan(FIRST_DAY, windows, layout_name)
    cfg = demo.demo_config(p.layout, port, db)
    cfg["broker"] = {"url": f"mqtt://{LOOPBACK}:{port}"}
    cfg["store"] = {"url": url}
    return cfg


@contextlib.asynccontextmanager
async def connected(config: HubConfig, port: int) -> AsyncIterator[dict[str, SimDevice]]:
    async with contextlib.AsyncExitStack() as stack:
        devs = {}
        for d in config.devices:
            devs[d.id] = await stack.enter_async_context(
                SimDevice(demo.CENTRE_ID, d.id, d.role, LOOPBACK, port, window=d.window))
        yield devs


def drop_output(devices: dict[str, SimDevice]) -> None:
    """Nobody reads the boards' commands and prints: a day's worth would pile up."""
    for dev in devices.values():
        while not dev.commands.empty():
            dev.commands.get_nowait()
        dev.printed.clear()


async def run_soak(days: int, speed: float, windows: int = 8, layout_name: str = "mixed",
                   seed: int = 1, workdir: Path | None = None, postgres: bool = False,
                   first: dt.date = FIRST_DAY, progress: bool = True) -> Soak:
    import tempfile

    folder = workdir or Path(tempfile.mkdtemp(prefix="onewindow-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as peers:
        broker = peers.enter_context(Mosquitto(folder / "broker"))
        db = folder / "journal.db"
        url = peers.enter_context(Postgres()).url if postgres else f"sqlite:///{db}"
        raw = hub_config(windows, layout_name, broker.port, url, db)
        cfg_path = folder / "hub.json"
        cfg_path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        config = from_dict(raw)
        return await _soak(days, speed, windows, layout_name, seed, folder, config, cfg_path,
                           url, broker.port, working_days(first, days + 1), progress)


async def _soak(days: int, speed: float, windows: int, layout_name: str, seed: int,
                folder: Path, config: HubConfig, cfg_path: Path, url: str, port: int,
                dates: list[dt.date], progress: bool) -> Soak:
    from .soakhub import SoakClock

    sqlite_db = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    hub = HubProc(cfg_path, folder / "hub.log", folder / "hubstats.json")
    boots: set[str] = set()
    rows: list[DayRow] = []
    clerks = demo.clerk_names(windows, random.Random(seed))
    mirror: Mirror | None = None
    after = 0  # journal position before the current day
    try:
        async with (aiomqtt.Client(LOOPBACK, port, identifier="soak-watch") as watcher,
                    connected(config, port) as devices):
            status = HubStatus(watcher)
            follow = asyncio.create_task(status.follow(demo.CENTRE_ID), name="soak-status")
            try:
                for n, d in enumerate(dates[:days], 1):
                    began = time.monotonic()
                    p = demo.plan(d, windows, layout_name)
                    clock = SoakClock(p.at(demo.START), time.time() + START_GRACE, speed)
                    startup, replayed = await _start(hub, clock, status, boots)
                    if mirror is None:  # the hub made the journal's tables by now
                        mirror = Mirror(config, url)
                    mirror.catch_up()
                    following = {k: Following(v, mirror) for k, v in devices.items()}
                    sim = demo.Simulation(cast(Any, SimpleNamespace(app=mirror.app)),
                                          cast(Any, clock), p, cast(Any, following),
                                          seed + n, clerks)
                    accepted = Accepted(sim.engine.act)
                    sim.engine.act = accepted
                    sim.start()
                    try:
                        await sim.finished()
                    finally:  # interrupted: the engine's thread stops after its step
                        await sim.stop()
                    drop_output(devices)
                    rss, fds, threads, tasks, conns = await settled(hub, sqlite_db)
                    code = hub.stop()
                    row = DayRow(n, d, engine_outcomes(sim.result()),
                                 engine_ops=accepted.ops, errors=Counter(sim.errors),
                                 rss_mb=rss, fds=fds, db_conns=conns, threads=threads,
                                 tasks=tasks,
                                 startup_s=startup, replayed=replayed, exit=code)
                    row.hub_ops, after = journal_ops(mirror.journal, after, d)
                    if rows:  # today's first command closed yesterday
                        rows[-1].hub = hub_outcomes(mirror.journal, rows[-1].date)
                    row.wall_s = time.monotonic() - began
                    rows.append(row)
                    if progress:
                        print(row_line(row), flush=True)
                # The last day closes with the next morning's first command.
                final_startup, final_replayed = await _close_last(
                    hub, dates[days], devices, status, boots, speed, clerks[0])
                if mirror is not None and rows:
                    rows[-1].hub = hub_outcomes(mirror.journal, rows[-1].date)
                    if progress:
                        print(row_line(rows[-1], closed=True), flush=True)
            finally:
                follow.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await follow
    finally:
        if hub.alive():
            hub.stop()
        if mirror is not None:
            mirror.close()
    return Soak(rows, final_startup, final_replayed, folder)


async def _start(hub: HubProc, clock: Any, status: HubStatus, boots: set[str]
                 ) -> tuple[float, str]:
    hub.start(clock.epoch, clock.wall, clock.speed)
    boots.add(await status.ready(boots, hub))
    startup = time.monotonic() - hub.started
    return startup, startup_replay(hub.log.read_text(errors="replace"))


async def _close_last(hub: HubProc, d: dt.date, devices: dict[str, SimDevice],
                      status: HubStatus, boots: set[str], speed: float, clerk: str
                      ) -> tuple[float, str]:
    """The morning after the last day: start the hub, a clerk opens window 1 (the day's
    first command closes the last day and the hub snapshots), stop it."""
    from .soakhub import SoakClock

    clock = SoakClock(at_local(d, demo.START), time.time() + START_GRACE, speed)
    startup = await _start(hub, clock, status, boots)
    kp = next(dev for dev in devices.values() if dev.role == "keypad" and dev.window == 1)
    await kp.send("open", window=1, clerk=clerk)
    hub.stop()
    return startup


# ---- the promises and the table -----------------------------------------------------------------

def check(soak: Soak) -> list[str]:
    """Every promise the soak keeps that did not hold, in words (empty: all held)."""
    rows, bad = soak.rows, []
    for r in rows:
        if r.hub != r.engine:
            bad.append(f"day {r.n}: hub's closed day {r.hub} != the simulator's {r.engine}")
        if not r.ops_equal:
            diff = {k: (r.engine_ops[k], r.hub_ops[k]) for k in ENGINE_OPS
                    if r.engine_ops[k] != r.hub_ops[k]}
            bad.append(f"day {r.n}: operations (simulator, journal) differ: {diff}")
        if r.errors:
            bad.append(f"day {r.n}: device errors {dict(r.errors)}")
        if r.exit != 0:
            bad.append(f"day {r.n}: the hub exited with {r.exit} on SIGTERM")
        if r.db_conns > DB_CONNS:
            bad.append(f"day {r.n}: {r.db_conns} journal connections > the pool's {POOL_SIZE} "
                       "and the checkpointer's 1")
        if r.threads > MAX_THREADS:  # worker threads come and stay as needed, up to the bound
            bad.append(f"day {r.n}: {r.threads} threads > the hub's bound {MAX_THREADS}")
        if r.n > 1 and not r.replayed.startswith("snap+"):
            bad.append(f"day {r.n}: start-up did not load a snapshot ({r.replayed})")
    if len(rows) >= 3:
        base = rows[1]
        for r in rows[2:]:
            if r.rss_mb > base.rss_mb * RSS_LIMIT:
                bad.append(f"day {r.n}: RSS {r.rss_mb:.1f} MB > {RSS_LIMIT:.2f} x day 2's "
                           f"{base.rss_mb:.1f} MB")
            if r.startup_s > 2 * base.startup_s + 0.5:
                bad.append(f"day {r.n}: start-up {r.startup_s:.2f} s > 2 x day 2's "
                           f"{base.startup_s:.2f} s + 0.5 s")
        for what in ("fds", "tasks"):
            top = max(getattr(r, what) for r in rows[:2])
            grew = [f"day {r.n}: {getattr(r, what)}" for r in rows[2:]
                    if getattr(r, what) > top]
            if grew:
                bad.append(f"{what} above the first two days' {top}: {', '.join(grew)}")
    return bad


def row_line(r: DayRow, closed: bool = False) -> str:
    hub = "open" if r.hub is None else f"{r.hub['tickets']}/{r.hub['served']}/{r.hub['no_shows']}"
    return (f"{'closed' if closed else 'day'} {r.n:2d} {r.date} tickets {r.engine['tickets']} "
            f"hub {hub} ops {'=' if r.ops_equal else '!='} rss {r.rss_mb:.1f} MB fds {r.fds}"
            f"+db {r.db_conns} "
            f"threads {r.threads} tasks {r.tasks} start-up {r.startup_s:.2f} s "
            f"({r.replayed}) exit {r.exit} wall {r.wall_s:.0f} s")


def table(soak: Soak) -> str:
    """The markdown table docs/benchmarks.md carries."""
    head = ("| day | date | tickets | served | no-shows | transfers | ops | hub = sim | "
            "RSS MB | fds | journal conns "
            "| threads | tasks | start-up s | start-up replayed | wall s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in soak.rows:
        e = r.engine
        lines.append(
            f"| {r.n} | {r.date:%a %m-%d} | {e['tickets']} | {e['served']} | {e['no_shows']} "
            f"| {r.engine_ops['transfer']} | {sum(r.engine_ops.values())} "
            f"| {'yes' if r.counts_equal else 'NO'} | {r.rss_mb:.1f} | {r.fds} | {r.db_conns} "
            f"| {r.threads}"
            f"| {r.tasks} | {r.startup_s:.2f} | {r.replayed} | {r.wall_s:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="The 30-day soak of the real hub process "
                                 "(only the clock is accelerated).")
    ap.add_argument("--days", type=int, default=30, help="working days")
    ap.add_argument("--speed", type=float, default=1000.0, help="simulated s per real s")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--layout", default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--postgres", action="store_true", help="a PostgreSQL journal (testbed)")
    ap.add_argument("--workdir", type=Path, help="keep the journal and logs here")
    args = ap.parse_args(argv)
    # SIGTERM (and SIGINT, which a shell's background job ignores) stop the soak as Ctrl-C
    # does: the hub process and the broker are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    soak = asyncio.run(run_soak(args.days, args.speed, args.windows, args.layout, args.seed,
                                args.workdir, args.postgres))
    print()
    print(f"Soak: {len(soak.rows)} working days, x{args.speed:g}, {args.windows} "
          f"windows ({args.layout}), {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"{(time.monotonic() - started) / 60:.1f} real minutes; workdir {soak.workdir}")
    print(table(soak))
    print(f"closing start-up (the morning after): {soak.final_startup_s:.2f} s "
          f"({soak.final_replayed})")
    bad = check(soak)
    print("promises: " + ("all held" if not bad else "BROKEN:\n  " + "\n  ".join(bad)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
