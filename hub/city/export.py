"""`onewindow city-export`: a centre's journal, exported to the city's JetStream.

A separate process beside the hub (not a task inside it): the hub's floor never waits on
the city, a stuck or crashed exporter cannot slow or stop a call, and it is upgraded or
restarted on its own. It only reads the journal (SQLite in WAL mode takes a reader beside
its one writer; a PostgreSQL journal likewise).

The journal is the outbox. The exporter keeps a replica of the hub's state (the hub's own
code: `HubApp.replay`, one record at a time) and the mapper (records.py) turns what the
core decided for each record into city records without personal data. A batch of records
is published with ``Nats-Msg-Id: <centre>:<pos>[:<part>]``; only when JetStream has
acknowledged every message of it (stored on a quorum of the R3 stream's nodes) does the
cursor advance, persisted in the exporter's state folder. Cut off from the city, the
exporter keeps retrying the same batch while the hub serves as usual; back, it sends the
rest in order. A restart restores the replica's own snapshot (taken at the cursor), replays
the journal up to the cursor without sending, and goes on: nothing is lost, and what was
sent twice (acknowledgement lost, crash between ack and cursor write) is dropped by the
stream's duplicate window and, past it, by the city database's primary key.

Every few seconds it also publishes ``citylive.<centre>``: the floor now (queue per line,
longest wait, windows open, devices online and alerts from the hub's retained fleet
summary). Live messages are not kept while cut off: the next one replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.journal import Journal, Record
from . import conn
from . import records as rc
from . import subjects as sj

log = logging.getLogger("onewindow.city")

SNAPSHOT_EVERY_S = 30.0
SNAPSHOT_EVERY_RECORDS = 20000


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Replica:
    """The hub's state, rebuilt by the hub's own code from its journal, one record at a time,
    with the mapper listening to the core's decisions."""

    def __init__(self, config: Any, journal: Journal, mapper: rc.Mapper) -> None:
        from ..app.facade import HubApp
        from ..catalog import load_catalog
        from ..config import check
        from ..core.centre import Centre
        from ..fleet.hub import fleet_registry
        from ..store.history import History

        catalog = load_catalog(config.catalog_path)
        check(config, catalog)
        registry = fleet_registry(config, journal.engine)
        app = HubApp(Centre(catalog, config.centre), registry, "city", config.status_url)
        app.case_archive = History(journal.engine)
        app.admission = config.admission
        app.admission_stop_quantile = config.admission_stop_quantile
        app.history_sink = self._closed
        app.effect_tap = self._tap
        self.app = app
        self.mapper = mapper
        self._effects: list[tuple[list[Any], float]] = []
        self._closed_facts: list[Any] = []

    def _tap(self, cmd: Any, effects: list[Any], now: float) -> None:
        self._effects.append((effects, now))

    def _closed(self, pending: list[Any]) -> None:
        self._closed_facts.extend(pending)
        pending.clear()

    @property
    def pos(self) -> int:
        return int(self.app.pos)

    def apply(self, rec: Record) -> list[dict[str, Any]]:
        """Apply one journal record; the city records it gives."""
        app, m = self.app, self.mapper
        m.begin(rec.pos, rec.ts)
        n_services, n_cases = len(app.services), len(app.case_events)
        self._effects, self._closed_facts = [], []
        app.replay([rec], {})
        day = app.centre.day or rc.local_day(rec.ts, app.centre.config.utc_offset_minutes)
        for facts in self._closed_facts:  # the day closed: what it held leaves with it
            m.services(facts.day, facts.services[n_services:])
            m.case_events(facts.day, facts.case_events[n_cases:])
            n_services = n_cases = 0
            m.day_closed(facts)
        for effects, now in self._effects:
            m.effects(app, effects, now)
        m.services(day, app.services[n_services:])
        m.case_events(day, app.case_events[n_cases:])
        return m.out

    def snapshot(self) -> bytes:
        from ..store.snapshot import encode

        data, _ = encode(self.app.snapshot())
        return data

    def restore(self, data: bytes) -> None:
        import hashlib

        from ..store.snapshot import CODEC, decode

        self.app.restore(decode(data, hashlib.sha256(data).hexdigest(), CODEC))

    def live(self, fleet: dict[str, Any] | None, now: float) -> dict[str, Any]:
        """The floor now, for the city dashboard: no ticket ids, no residents."""
        from ..core.model import TicketState

        centre = self.app.centre
        lines: dict[str, dict[str, Any]] = {}
        waiting = 0
        oldest: float | None = None
        for t in centre.tickets.values():
            if t.state != TicketState.WAITING:
                continue
            waiting += 1
            item = centre.catalog.items.get(t.item)
            line = item.line if item is not None else t.number[:1]
            e = lines.setdefault(line, {"waiting": 0, "longest_min": 0.0})
            e["waiting"] += 1
            e["longest_min"] = max(e["longest_min"], round((now - t.issued_at) / 60.0, 1))
            oldest = t.issued_at if oldest is None else min(oldest, t.issued_at)
        windows = [{"n": n, "state": str(w.state.value), "clerk": w.clerk}
                   for n, w in sorted(centre.windows.items())]
        out: dict[str, Any] = {
            "v": rc.VERSION, "centre": self.mapper.centre, "pos": self.pos, "at": now,
            "day": centre.day, "waiting": waiting,
            "longest_min": round((now - oldest) / 60.0, 1) if oldest is not None else 0.0,
            "lines": lines, "windows_open": sum(1 for w in windows if w["state"] != "closed"),
            "windows": windows,
        }
        if fleet is not None:
            out["devices"] = {"online": fleet.get("online"), "total": fleet.get("total"),
                              "ts": fleet.get("ts")}
            out["alerts"] = [{k: a.get(k) for k in ("device", "kind", "seconds")}
                             for a in (fleet.get("alerts") or [])][:50]
        return out


@dataclass
class ExportState:
    """The exporter's folder: `cursor.json` (the last journal position the city
    acknowledged) and `replica.snap` (the replica's state at a position <= the cursor)."""

    folder: Path
    cursor: int = 0
    snap_pos: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path) -> ExportState:
        folder.mkdir(parents=True, exist_ok=True)
        st = cls(folder)
        p = folder / "cursor.json"
        if p.exists():
            doc = json.loads(p.read_text())
            st.cursor, st.snap_pos = int(doc["cursor"]), int(doc.get("snap_pos", 0))
        return st

    def save_cursor(self, pos: int) -> None:
        self.cursor = pos
        _write_atomic(self.folder / "cursor.json", json.dumps(
            {"cursor": pos, "snap_pos": self.snap_pos, "at": time.time()}).encode())

    def save_snapshot(self, pos: int, data: bytes) -> None:
        _write_atomic(self.folder / "replica.snap", data)
        self.snap_pos = pos
        self.save_cursor(self.cursor)

    def drop_snapshot(self) -> None:
        self.snap_pos = 0
        self.save_cursor(self.cursor)
        (self.folder / "replica.snap").unlink(missing_ok=True)

    def snapshot(self) -> bytes | None:
        p = self.folder / "replica.snap"
        return p.read_bytes() if p.exists() and self.snap_pos > 0 else None


@dataclass
class Options:
    servers: list[str]
    user: str
    password: str
    state_dir: Path
    token_key: bytes
    batch: int = 500
    live_every: float = 2.0
    poll: float = 0.1
    fleet: bool = True  # read the hub's retained fleet summary for device health
    snapshot_every_s: float = SNAPSHOT_EVERY_S  # the replica's snapshot, at the cursor


class Exporter:
    def __init__(self, config: Any, opts: Options) -> None:
        self.config = config
        self.opts = opts
        self.centre = sj.token(config.centre.centre_id)
        self.journal = Journal(config.database_url)
        self.state = ExportState.open(opts.state_dir)
        self.replica = Replica(config, self.journal, rc.Mapper(self.centre, opts.token_key))
        self.fleet: dict[str, Any] | None = None
        self.sent = 0
        self.connected = asyncio.Event()
        self._last_snap = time.monotonic()
        self._since_snap = 0
        self._logged_at: int | None = None

    # ---- start-up: the replica at the cursor --------------------------------------------
    def recover(self) -> None:
        data = self.state.snapshot()
        if data is not None:
            try:
                self.replica.restore(data)
            except Exception:
                log.exception("city export: replica snapshot unusable; replaying the journal")
                self.replica = Replica(self.config, self.journal, self.replica.mapper)
        n = 0
        for rec in self.journal.read(self.replica.pos):
            if rec.pos > self.state.cursor:
                break
            self.replica.apply(rec)
            n += 1
        log.info("city export %s: replica at %d (cursor %d, %d records replayed)",
                 self.centre, self.replica.pos, self.state.cursor, n)

    # ---- the loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        async def disconnected() -> None:
            self.connected.clear()
            log.warning("city export %s: cut off from the city", self.centre)

        async def reconnected() -> None:
            self.connected.set()
            log.info("city export %s: city reached again", self.centre)

        async def error(e: Exception) -> None:
            log.info("city export %s: %s", self.centre, e)

        self.recover()
        nc = await conn.connect(
            self.opts.servers, self.opts.user, self.opts.password, stop,
            inbox_prefix=sj.inbox_prefix(self.centre), disconnected_cb=disconnected,
            reconnected_cb=reconnected, error_cb=error, pending_size=64 * 1024 * 1024)
        if nc is None:
            return
        if nc.is_connected:
            self.connected.set()
        js = nc.jetstream(timeout=5.0)
        tasks = [asyncio.create_task(self._live(js, stop))]
        if self.opts.fleet:
            tasks.append(asyncio.create_task(self._watch_fleet(stop)))
        try:
            await self._export(js, stop)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await nc.close()
            self.journal.close()

    async def _export(self, js: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            recs = await asyncio.to_thread(self._read, self.replica.pos, self.opts.batch)
            if not recs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.opts.poll)
                continue
            out: list[dict[str, Any]] = []
            for rec in recs:
                out.extend(self.replica.apply(rec))
                if rec.op == "purge":
                    self._forget(rec.pos)
            await self._publish(js, out, stop)
            if stop.is_set() and out:
                return  # not all acknowledged: the cursor stays, the next run resends
            # Two fsyncs (the file, its folder): on a thread, so the exporter's other tasks
            # (the live summary, device health) are not held behind the disk.
            await asyncio.to_thread(self.state.save_cursor, recs[-1].pos)
            if self._logged_at is None or self.sent - self._logged_at >= 10000:
                log.info("city export %s: the city has everything up to journal position %d "
                         "(%d records sent by this run)", self.centre, recs[-1].pos, self.sent)
                self._logged_at = self.sent
            self._since_snap += len(recs)
            if (self._since_snap >= SNAPSHOT_EVERY_RECORDS
                    or time.monotonic() - self._last_snap >= self.opts.snapshot_every_s):
                data = self.replica.snapshot()
                await asyncio.to_thread(self.state.save_snapshot, self.replica.pos, data)
                self._since_snap, self._last_snap = 0, time.monotonic()

    def _forget(self, pos: int) -> None:
        """The hub's retention purge (hub/store/retention.py) rewrote the journal before
        `pos`, removing residents' tokens past their time; the replica (and its snapshot)
        still hold them. The old snapshot is dropped (a restart before the next one replays
        the purged journal), the replica rebuilt from the purged journal without sending
        anything, and a new snapshot taken as soon as the cursor reaches this batch's end."""
        fresh = Replica(self.config, self.journal, rc.Mapper(self.centre, self.opts.token_key))
        for rec in self.journal.read(0):
            if rec.pos > pos:
                break
            fresh.apply(rec)
        mapper = self.replica.mapper
        self.replica = fresh
        fresh.mapper = mapper
        self.state.drop_snapshot()
        self._last_snap = float("-inf")  # the next batch acknowledged takes a new one
        log.info("city export %s: journal purged at %d: replica rebuilt", self.centre, pos)

    def _read(self, after: int, n: int) -> list[Record]:
        out = []
        for rec in self.journal.read(after, batch=n):
            out.append(rec)
            if len(out) >= n:
                break
        return out

    async def _publish(self, js: Any, out: list[dict[str, Any]], stop: asyncio.Event) -> None:
        """Every record acknowledged by the stream, retrying what was not until it is (or
        until `stop`)."""
        todo = out
        delay = 0.2
        while todo and not stop.is_set():
            if not self.connected.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.connected.wait(), 1.0)
                continue
            results = await asyncio.gather(*(self._one(js, r) for r in todo),
                                           return_exceptions=True)
            failed = [r for r, res in zip(todo, results, strict=True)
                      if isinstance(res, BaseException)]
            self.sent += len(todo) - len(failed)
            if failed:
                log.info("city export %s: %d of %d not acknowledged (%s); retrying",
                         self.centre, len(failed), len(todo),
                         next(res for res in results if isinstance(res, BaseException)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 1.0)
            todo = failed

    async def _one(self, js: Any, r: dict[str, Any]) -> None:
        data = json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode()
        ack = await js.publish(sj.record(self.centre, r["kind"]), data, headers={
            "Nats-Msg-Id": sj.msg_id(self.centre, r["pos"], r["part"])})
        if ack.stream != sj.STREAM:
            raise RuntimeError(f"acknowledged by {ack.stream}, not {sj.STREAM}")

    async def _live(self, js: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.connected.is_set():
                doc = self.replica.live(self.fleet, time.time())
                with contextlib.suppress(Exception):
                    await js.publish(sj.live(self.centre), json.dumps(
                        doc, ensure_ascii=False, separators=(",", ":")).encode(), timeout=2.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.opts.live_every)

    async def _watch_fleet(self, stop: asyncio.Event) -> None:
        """The hub's retained fleet summary (ow/<centre>/hub/fleet) from its broker."""
        from ...protocol import ow_protocol as proto
        from ...tools.hubmqtt import client, hub_broker

        url = hub_broker(self.config)
        while not stop.is_set():
            try:
                async with client(self.config, url, f"city-export-{self.centre}") as mq:
                    await mq.subscribe(proto.fleet_topic(self.config.centre.centre_id))
                    async for msg in mq.messages:
                        with contextlib.suppress(Exception):
                            payload = msg.payload
                            if isinstance(payload, bytes | bytearray):
                                self.fleet = json.loads(payload)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("city export: hub broker: %s", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
