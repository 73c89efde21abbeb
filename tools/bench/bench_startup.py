"""Start-up after a year: how long `onewindow hub` takes to answer its first take, and its
RSS then, with a year of journal behind it, from a snapshot and (on fewer days) by full
replay. Prints a table; results go in docs/benchmarks.md ("Start-up after a year").

    python -m onewindow.tools.bench.bench_startup                 # 250 days x 3,000 tickets
    python -m onewindow.tools.bench.bench_startup --days 5 --tickets 500   # a quick look

The year is made through the real code: a hub app built from the centre's configuration
(`build_app`) handles every device message (button boxes' takes, keypads' open, call, start,
rate) as the runner would, the back office works the promised items (承诺件) the windows
accept (`BackOffice`: closed by their due day, a few returned and resubmitted, corrected,
late or reopened, each a `CaseUpdate` through `HubApp.operate` as the cases page sends it),
its records go to a real SQLite journal in group commits, and a
snapshot is written by the runner's own rule (at each day's close and every
`snapshot_records`). Generating takes a while; the database is cached under
$TMPDIR/onewindow-bench-startup/<parameters>/ and reused. Snapshots newer than
`snapshot_records` records before the end are then dropped: the tail replayed is at least
as long as the rule ever leaves (the worst case).

Each measurement copies the cached database, brings it to the current schema (as every
start but the first after an upgrade finds it), starts a private Mosquitto and `onewindow hub`
as a process, and times process start -> the `res` of a box's take (the box retries every
50 ms until the hub answers, as a box does). RSS: /proc/<pid>/status VmRSS at that moment.

Why one module of 526 lines: the year's generator (`Year`, `BackOffice`; bench_history.py and
hub/tests/test_case_archive.py make their years with it too) is the start-up measurement's
condition: its stand-ins (the naive forecast, quiet rendering, snapshots trimmed to the longest
tail) are what the table's notes describe, and `generate` keys the cached databases by the
parameters and a version number, to be bumped beside any change to the generator.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import logging
import random
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ...hub import config as hub_config
from ...hub.app import HubApp
from ...hub.forecast.wait import NO_WINDOW, Estimate
from ...hub.runner import build_app
from ...hub.store.journal import Journal
from ...hub.store.snapshot import SnapshotStore, encode
from ...protocol import ow_protocol as proto
from ..simdevice import SimDevice
from ..testkit.testbed import HubProcess, Mosquitto, default_devices, write_config

CENTRE = "bench"
TZ = dt.timezone(dt.timedelta(hours=8))
FIRST_DAY = dt.date(2025, 1, 6)  # a Monday
BOXES = 4
GROUP = 64  # messages per group commit, as a busy runner makes them
CACHE = Path(tempfile.gettempdir()) / "onewindow-bench-startup"


def workdays(n: int) -> list[dt.date]:
    out: list[dt.date] = []
    d = FIRST_DAY
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def centre_config(folder: Path, db: Path, windows: int, port: int | None,
                  snapshot_records: int) -> Path:
    devices = default_devices(windows) + [{"id": f"box-{i}", "role": "box"}
                                          for i in range(2, BOXES + 1)]
    cfg = write_config(folder / "centre.toml", CENTRE, port, db, windows=windows,
                       devices=devices)
    cfg.write_text(cfg.read_text().replace(
        "[store]\n", f"[store]\nsnapshot_records = {snapshot_records}\n", 1))
    return cfg


class BackOffice:
    """What a back office does with the promised items (承诺件) a day accepted.

    The model: each case is decided when it is accepted, from a random stream of its own
    (seeded by its id, so the year is the same every time). 3 % are returned to the window
    the next workday (退件) and resubmitted the workday after; 2 % get a correction (补正)
    the next workday. 97 % are closed (办结) by their due day: 70 % on it, the rest on a
    workday drawn between acceptance and it; 3 % are closed late, 1-3 workdays after it.
    1 % of closed cases are reopened two workdays later (by then archived: the app reads
    them back from SQL) and closed again the workday after. Every action is staff's
    `CaseUpdate` through `HubApp.operate`, at 07:30 of its day, before the windows open.
    """

    returned = 0.03
    corrected = 0.02
    late = 0.03
    reopened = 0.01

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.todo: dict[str, list[tuple[str, str]]] = {}  # ISO day -> [(case, action)]
        self.done = self.refused = 0
        self.followups_closed = 0

    def schedule(self, centre: Any, d: dt.date) -> None:
        """Decide the fates of the cases accepted on `d`."""
        for case in centre.cases.values():
            acc = centre.local_date(case.opened_at)
            if acc != d or case.state != "open":
                continue
            rng = random.Random(f"case:{self.seed}:{case.id}")
            due = dt.date.fromisoformat(case.due_day)
            steps: list[tuple[dt.date, str]] = []
            u = rng.random()
            if u < self.returned:
                back = centre.add_workdays(acc, 1)
                again = centre.add_workdays(back, 1)
                steps += [(back, "returned"), (again, "resubmitted")]
                first = centre.add_workdays(again, 1)
            elif u < self.returned + self.corrected:
                steps.append((centre.add_workdays(acc, 1), "corrected"))
                first = centre.add_workdays(acc, 2)
            else:
                first = centre.add_workdays(acc, 1)
            v = rng.random()
            if v < self.late:
                close = centre.add_workdays(max(due, first), rng.randint(1, 3))
            elif v < 0.7 or first >= due:
                close = max(due, first)
            else:
                span = (due - first).days
                close = first + dt.timedelta(days=rng.randint(0, span))
                while not centre.is_workday(close):
                    close += dt.timedelta(days=1)
            steps.append((close, "closed"))
            if rng.random() < self.reopened:
                again = centre.add_workdays(close, 2)
                steps += [(again, "reopened"), (centre.add_workdays(again, 1), "closed")]
            for day, action in steps:
                self.todo.setdefault(day.isoformat(), []).append((case.id, action))

    def work(self, year: Year, d: dt.date) -> None:
        """The actions due on `d`, in the order they were decided."""
        from ...hub.core.commands import CaseUpdate
        from ...hub.core.rejected import Rejected

        now = dt.datetime.combine(d, dt.time(7, 30), TZ).timestamp()
        for k, (case, action) in enumerate(self.todo.pop(d.isoformat(), [])):
            reason = ""  # a return says why and which material (补正)
            materials: tuple[int, ...] = ()
            if action == "returned":
                item = year.app.centre.catalog.items[year.app.centre.cases[case].item]
                reason, materials = "材料不全 / incomplete", (0,) if item.materials else ()
            cmd = CaseUpdate(case, action, reason, by="office", materials=materials)
            try:
                year.pending.append(year.app.operate(cmd, now + 0.01 * k))
            except Rejected:
                self.refused += 1  # printed: the model above never asks for one
                continue
            self.done += 1
        # ... and the supervisor closes the follow-ups of yesterday's low ratings (差评整改)
        # with a note, as a centre does: left open, a year's 30,000 were 5.8 MB of snapshot
        from ...hub.core.commands import CloseFollowup

        for k, f in enumerate(sorted((f for f in year.app.centre.followups.values() if f.open),
                                     key=lambda f: f.at)):
            if f.at >= now:
                continue
            close = CloseFollowup(f.ticket, "supervisor", "已回访 / called back")
            year.pending.append(year.app.operate(close, now + 60 + 0.01 * k))
            self.followups_closed += 1
        if len(year.pending) >= GROUP:
            year.commit()


class Year:
    """Devices pressing keys on a hub app for `days` working days, journaled."""

    def __init__(self, cfg: Path, windows: int, seed: int = 1) -> None:
        self.config = hub_config.load(cfg)
        self.journal = Journal(self.config.database_url)
        self.app: HubApp = build_app(self.config, self.journal, boot="gen")
        # Stand-ins while generating only (said in the table's notes): the per-take
        # Monte-Carlo forecast (~6 ms a take: the year would take hours) gives way to the
        # naive estimate, journaled in the take's `est` as always (a replay reads it back
        # and never simulates); the fleet registry's periodic look-up (every device is in
        # centre.toml) is off.
        self.app.waits.predict = self._naive  # type: ignore[method-assign]
        self.app.registry.lookup = None
        # Until the last days, replies are not rendered (tickets, bitmaps: half the time);
        # the records and the state are the same, and the last days render as live.
        self.app.quiet = True
        self.snapshotting = False  # the runner's checkpoint rule, on for the last days
        self.store = SnapshotStore(self.journal.engine)
        self.windows = windows
        self.rng = random.Random(seed)
        self.seq: dict[str, int] = {}
        self.pending: list[tuple[str, str, bytes, float]] = []
        self.records = 0
        # pos, ms building the state, ms saving it, bytes, JSON bytes
        self.snapshots: list[tuple[int, float, float, int, int]] = []
        self._snap_pos, self._snap_day = 0, ""
        core = self.app.centre
        self.items = sorted(i for i in core._servable if i in core.catalog.items
                            and not core.catalog.items[i].specialised)
        self.office = BackOffice(seed)

    def _naive(self, centre: Any, t: Any, now: float, version: int) -> Estimate:
        m = self.app.waits.naive(centre, t, now)
        if m == float("inf"):
            return NO_WINDOW
        return Estimate(m, m, 0.7 * m, 1.3 * m + 1, 0.8 * m, 1.2 * m + 1)

    def send(self, dev: str, typ: str, now: float, **fields: Any) -> None:
        self.seq[dev] = self.seq.get(dev, 0) + 1
        msg = proto.event(dev, self.seq[dev], typ, **fields)
        self.handle(proto.device_topic(CENTRE, dev, "evt"), proto.encode("evt", msg), now)

    def handle(self, topic: str, payload: bytes, now: float) -> None:
        step = self.app.handle(topic, payload, now)
        self.pending.append(step)  # type: ignore[arg-type]
        if len(self.pending) >= GROUP:
            self.commit()

    def commit(self, force_snapshot: bool = False) -> None:
        records = [r for step in self.pending for r in step.records]  # type: ignore[attr-defined]
        self.pending = []
        self.journal.append(records)
        self.records += len(records)
        app = self.app
        if force_snapshot or (self.snapshotting and app.pos > self._snap_pos and (
                app.centre.day != self._snap_day
                or app.pos - self._snap_pos >= self.config.snapshot_records)):
            self.snapshot()

    def snapshot(self) -> None:
        """As the runner takes one: the state built (in the loop), then saved (JSON, zlib,
        the write: in a thread in the hub; here in line)."""
        started = time.perf_counter()
        state = self.app.snapshot()
        built = time.perf_counter()
        saved = self.store.save(state)
        self.snapshots.append((saved.pos, (built - started) * 1000,
                               (time.perf_counter() - built) * 1000, saved.size, saved.raw))
        self._snap_pos, self._snap_day = saved.pos, self.app.centre.day

    def day(self, d: dt.date, tickets: int) -> None:
        self.office.work(self, d)
        start = dt.datetime.combine(d, dt.time(8, 30), TZ).timestamp()
        step = 8.5 * 3600 / tickets
        for n in range(1, self.windows + 1):
            self.send(f"kp-{n}", "open", start, clerk=f"clerk{n}")
        lag = min(40, tickets // 4)  # residents waiting before the calls keep pace
        for i in range(tickets):
            now = start + 60 + i * step
            box = f"box-{i % BOXES + 1}"
            self.send(box, "take", now, item=self.rng.choice(self.items))
            if i < lag:
                continue
            n = i % self.windows + 1
            kp = f"kp-{n}"
            w = self.app.centre.windows[n]
            done = self.app.centre.tickets.get(w.ticket) if w.ticket else None
            self.send(kp, "call", now + 1)  # done with the current one, next please
            if done is not None and i % 5 == 0:
                self.send(kp, "rate", now + 2, ticket=done.number,
                          score=self.rng.choice((1, 1, 1, 2, 3)))
            if i % 8 == 0:
                self.send(kp, "start", now + 3)
        end = start + 9 * 3600
        for n in range(1, self.windows + 1):  # the last residents, then the window closes
            self.send(f"kp-{n}", "complete", end)
            self.send(f"kp-{n}", "close", end + 1)
        self.office.schedule(self.app.centre, d)


def generate(days: int, tickets: int, windows: int, snapshot_records: int) -> Path:
    """The cached year's database (made once per parameters)."""
    # The catalog's bytes too: a year made with another catalog (its ticket prefixes, say)
    # would replay its last day's tail into other tickets than it journaled.
    from ...hub.catalog import SAMPLE

    catalog = (Path(__file__).parents[2] / "hub" / "catalog" / SAMPLE).read_bytes()
    key = hashlib.sha256(json.dumps([days, tickets, windows, snapshot_records, 7]).encode()
                         + catalog)
    folder = CACHE / key.hexdigest()[:12]
    db = folder / "hub.db"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    logging.getLogger("onewindow.hub").setLevel(logging.ERROR)  # refusals, unreachable
    work = folder / "making.db"
    for p in folder.glob("making.db*"):
        p.unlink()
    cfg = centre_config(folder, work, windows, None, snapshot_records)
    year = Year(cfg, windows)
    started = time.perf_counter()
    dates = workdays(days)
    for k, d in enumerate(dates):
        if k == len(dates) - 2:
            year.app.quiet = False
            year.snapshotting = True
            year.snapshot()  # as the running hub had one, at the day's close
        year.day(d, tickets)
        year.commit()
        if k % 10 == 0 or k == len(dates) - 1:
            print(f"  day {k + 1}/{days} ({d}): {year.records} records, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    _trim_last_snapshots(year, snapshot_records)
    stats = {"records": year.records, "seconds": time.perf_counter() - started,
             "case_updates": year.office.done, "case_refused": year.office.refused,
             "followups_closed": year.office.followups_closed,
             "open_cases": len(year.app.centre.cases),
             "snapshots": year.snapshots[-5:], "state": _state_sizes(year.app)}
    year.journal.close()
    (folder / "stats.json").write_text(json.dumps(stats))
    work.rename(db)
    return db


def _trim_last_snapshots(year: Year, snapshot_records: int) -> None:
    """Keep only snapshots at least `snapshot_records` before the end: a tail as long as
    the rule allows, or longer (the worst case, not the typical one)."""
    from ...hub.store.snapshot import snapshot as table

    limit = year.app.pos - snapshot_records
    with year.journal.engine.begin() as conn:
        oldest = conn.execute(select(func.min(table.c.pos))).scalar()
        conn.execute(table.delete().where(table.c.pos > max(limit, oldest or 0)))


def _state_sizes(app: HubApp) -> dict[str, list[int]]:
    """What the state holds after the year: (count, JSON bytes) per part that grows."""
    s = app.snapshot()
    parts = {
        "centre.tickets": s["centre"]["tickets"], "centre.cases": s["centre"]["cases"],
        "centre.ratings": s["centre"]["ratings"],
        "centre.help_requests": s["centre"]["help_requests"],
        "app.issue_waits": s["app"]["issue_waits"], "waits.pending": s["waits"]["pending"],
        "devices": s["devices"],
    }
    def count(v: Any) -> int:  # columns-and-rows parts count their rows
        return len(v["rows"]) if isinstance(v, dict) and "rows" in v else len(v)

    out = {k: [count(v), len(json.dumps(v))] for k, v in parts.items()}
    data, raw = encode(s)
    out["snapshot (zlib, JSON)"] = [len(data), raw]
    return out


def _records_of_days(db: Path, days: int) -> int:
    """How many journal records the first `days` working days of the year hold."""
    end = dt.datetime.combine(workdays(days + 1)[-1], dt.time(0), TZ).timestamp()
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM journal WHERE ts < ?", (end,)).fetchone()[0]
    con.close()
    return int(n)


def journal_copy(db: Path, to: Path, keep_records: int | None = None,
                 snapshots: bool = True) -> Path:
    shutil.copyfile(db, to)
    if keep_records is not None or not snapshots:
        con = sqlite3.connect(to)
        if keep_records is not None:
            con.execute("DELETE FROM journal WHERE pos > ?", (keep_records,))
        if not snapshots:
            con.execute("DELETE FROM snapshot")
        con.commit()
        con.execute("VACUUM")
        con.close()
    return to


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _journal_size(db: Path) -> tuple[int, int]:
    """(records, box-1's last seq) of a journal file; (0, 0) for none yet."""
    if not db.exists():
        return 0, 0
    con = sqlite3.connect(db)
    last = con.execute("SELECT max(seq) FROM journal WHERE dev = 'box-1'").fetchone()[0]
    records = con.execute("SELECT count(*) FROM journal").fetchone()[0]
    con.close()
    return records, last or 0


def at_schema_head(db: Path) -> None:
    """Bring the database (made if missing) to the current schema before a timed start, as
    a centre's hub finds it on every start but the first after an upgrade: the start-up
    measured is the everyday one, and a one-off migration (which imports Alembic, ~12 MB
    more RSS) counts in neither the fresh hub nor the year's."""
    from ...hub.store.db import open_database

    open_database(f"sqlite:///{db}").dispose()


async def measure(db: Path, folder: Path, windows: int, snapshot_records: int) -> dict:
    """Process start -> first take answered; RSS then; the hub's own start-up log line."""
    at_schema_head(db)
    records, last = _journal_size(db)
    with Mosquitto(folder) as broker:
        cfg = centre_config(folder, db, windows, broker.port, snapshot_records)
        log = folder / "hub.log"
        item = _an_item(cfg)
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", broker.port,
                             seq=last) as box:
            hub = HubProcess(cfg, log)
            started = time.monotonic()
            hub.start()
            try:
                res = await box.send("take", timeout=1800, retry=0.05, item=item)
                seconds = time.monotonic() - started
                assert hub.proc is not None
                rss = _rss_kib(hub.proc.pid)
                # The take starts a checkpoint (a new day): RSS again once it is written,
                # its state and JSON freed (the hub logs it; None if none is written).
                settled = await asyncio.to_thread(_after_snapshot, log, hub.proc.pid)
            finally:
                hub.stop()
    text = log.read_text()
    line = next((x for x in text.splitlines()
                 if "state from the snapshot" in x or "replayed all" in x), "")
    return {"records": records, "seconds": seconds, "rss_mib": rss / 1024,
            "settled_mib": None if settled is None else settled / 1024,
            "ticket": res.get("ticket"), "log": re.sub(r"^.*?(state from|no usable)", r"\1",
                                                       line)}


STEADY = 10  # samples 50 ms apart: RSS within 64 KiB for 0.5 s is settled


def _after_snapshot(log: Path, pid: int, timeout: float = 60.0) -> int | None:
    """The hub's RSS once its log says a snapshot was written and RSS has stopped moving
    (the state the checkpoint built is freed after that line), or None within `timeout`."""
    deadline = time.monotonic() + timeout
    written = False
    seen: list[int] = []
    while time.monotonic() < deadline:
        written = written or (log.exists() and "snapshot at position" in log.read_text())
        if written:
            seen.append(_rss_kib(pid))
            window = seen[-STEADY:]
            if len(window) == STEADY and max(window) - min(window) <= 64:
                return seen[-1]
        time.sleep(0.05)  # polling a file and /proc: no event to wait on across processes
    return seen[-1] if seen else None


def _an_item(cfg: Path) -> str:
    from ...hub.catalog import load_catalog

    cat = load_catalog(hub_config.load(cfg).catalog_path)
    return sorted(i.id for i in cat.items.values() if "comprehensive" in i.window_kinds)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--tickets", type=int, default=3000)
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--snapshot-records", type=int, default=5000)
    ap.add_argument("--replay-days", type=int, default=10,
                    help="days of journal for the full-replay measurement (extrapolated)")
    args = ap.parse_args()
    print(f"year: {args.days} working days x {args.tickets} tickets, {args.windows} windows")
    db = generate(args.days, args.tickets, args.windows, args.snapshot_records)
    stats = json.loads((db.parent / "stats.json").read_text())
    print(f"journal: {stats['records']} records, generated in {stats['seconds']:.0f} s "
          f"(cached: {db})")
    print(f"back office: {stats.get('case_updates', 0)} case updates, "
          f"{stats.get('case_refused', 0)} refused; {stats.get('open_cases', 0)} cases in "
          f"memory at the end; {stats.get('followups_closed', 0)} follow-ups of low ratings "
          f"closed by the supervisor")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        runs: list[tuple[str, dict]] = []
        empty = t / "empty.db"
        runs.append(("fresh hub, empty journal",
                     asyncio.run(measure(empty, t / "m0", args.windows,
                                         args.snapshot_records))))
        year = journal_copy(db, t / "year.db")
        # What the state holds at start-up (the year's end): loaded in this process.
        cfg = centre_config(t, year, args.windows, None, args.snapshot_records)
        probe = Journal(hub_config.load(cfg).database_url)
        stats["state"] = _state_sizes(build_app(hub_config.load(cfg), probe))
        probe.close()
        runs.append((f"{args.days} days, snapshot + tail",
                     asyncio.run(measure(year, t / "m1", args.windows,
                                         args.snapshot_records))))
        year.unlink()
        keep = _records_of_days(db, args.replay_days)
        part = journal_copy(db, t / "part.db", keep_records=keep, snapshots=False)
        runs.append((f"{args.replay_days} days, full replay (no snapshot)",
                     asyncio.run(measure(part, t / "m2", args.windows,
                                         args.snapshot_records))))
        part.unlink()
        # A hub with one day behind it: its first take closes that day too (history
        # written, the day's objects freed around what stays), and its page cache holds
        # that day; what a year adds beyond any past day is the difference to this row.
        day = journal_copy(db, t / "day.db", keep_records=_records_of_days(db, 1),
                           snapshots=False)
        runs.append(("1 day, full replay (no snapshot)",
                     asyncio.run(measure(day, t / "m3", args.windows,
                                         args.snapshot_records))))
    fresh, full = runs[0][1], runs[2][1]
    per_record = (full["seconds"] - fresh["seconds"]) / max(1, full["records"])
    print()
    print(f"{'start-up (process start -> first take answered)':52} {'records':>9} "
          f"{'seconds':>8} {'RSS MiB':>8} {'x fresh':>8} {'settled':>8} {'x fresh':>8}")
    for name, r in runs:
        settled = r["settled_mib"]
        tail = (f"{settled:8.1f} {settled / fresh['settled_mib']:8.2f}"
                if settled is not None and fresh["settled_mib"] else f"{'-':>8} {'-':>8}")
        print(f"{name:52} {r['records']:9d} {r['seconds']:8.2f} {r['rss_mib']:8.1f} "
              f"{r['rss_mib'] / fresh['rss_mib']:8.2f} {tail}")
    print("RSS at the answer races the checkpoint the take starts (its state built in the "
          "loop just after the reply, then JSON and zlib in a thread)")
    print("settled: RSS once that checkpoint is written and RSS no longer moves (its state "
          "and JSON freed)")
    print(f"{args.days} days, full replay (extrapolated, {per_record * 1e3:.3f} ms/record)"
          f"{'':>3} {stats['records']:9d} "
          f"{fresh['seconds'] + per_record * stats['records']:8.1f}")
    print()
    for name, r in runs:
        print(f"  {name}: {r['log']}")
    print()
    print("state after the year (count, JSON bytes):")
    for k, (n, size) in stats["state"].items():
        print(f"  {k:24} {n:9d} {size / 1e6:9.2f} MB")
    print("last snapshots written while generating: position, ms building the state (in "
          "the hub's loop), ms saving (JSON, zlib, write: in a thread), bytes, JSON bytes")
    for pos, build, save, size, raw in stats["snapshots"]:
        print(f"  {pos:9d} {build:8.0f} {save:8.0f} {size:10d} {raw:10d}")


if __name__ == "__main__":
    main()
