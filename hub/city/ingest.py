"""`onewindow city-ingest`: the city's JetStream streams -> the city PostgreSQL.

Two durable pull consumers: ``city-ingest`` on ``CITY`` (every centre's records) and
``city-ingest-live`` on ``CITY_LIVE`` (each centre's floor now). A fetched batch is written
in one transaction (citydb.write: ``ON CONFLICT DO NOTHING`` on (centre, day, pos, part))
and acknowledged only after the commit: a crash between the two redelivers the batch and
the key drops it; the database down, the batch is retried (and redelivered after the ack
wait) until it is stored. Several ingesters may share the durable consumer (each batch
goes to one of them) for throughput or standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import citydb, conn, streams
from . import subjects as sj

log = logging.getLogger("onewindow.city")


@dataclass
class IngestOptions:
    servers: list[str]
    user: str
    password: str
    db_url: str
    batch: int = 1000
    replicas: int = 3
    health_every: float = 60.0
    create_streams: bool = True


@dataclass
class IngestStats:
    fetched: int = 0
    stored: int = 0  # new rows
    batches: int = 0
    live: int = 0
    db_retries: int = 0
    lags: list[float] = field(default_factory=list)  # stream time -> commit, seconds
    last_store_s: float = 0.0  # the last batch: fetched -> committed, seconds


class Ingester:
    def __init__(self, opts: IngestOptions,
                 on_commit: Callable[[list[dict[str, Any]], float], None] | None = None
                 ) -> None:
        self.opts = opts
        self.on_commit = on_commit
        self.stats = IngestStats()
        self._months: set[Any] = set()
        self._centres: set[str] = set()
        self._health: dict[str, float] = {}
        self._live_months: set[Any] = set()
        self._conns: dict[str, Any] = {}
        self.ready = asyncio.Event()  # streams, consumers and the database set up

    def _db(self, which: str = "records") -> Any:
        """One connection per loop (records, live): each runs its transactions in its own
        thread, and a psycopg connection is one transaction at a time."""
        c = self._conns.get(which)
        if c is None or c.closed:
            c = self._conns[which] = citydb.connect(self.opts.db_url)
            citydb.create(c)
        return c

    def _store(self, recs: list[dict[str, Any]]) -> int:
        try:
            return citydb.write(self._db(), recs, self._months, self._centres)
        except Exception:
            self._drop("records")
            raise

    def _store_live(self, docs: list[dict[str, Any]]) -> None:
        try:
            citydb.write_live(self._db("live"), docs, time.time(), self.opts.health_every,
                              self._health, self._live_months)
        except Exception:
            self._drop("live")
            raise

    def _drop(self, which: str) -> None:
        c = self._conns.pop(which, None)
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()
        (self._months if which == "records" else self._live_months).clear()

    async def run(self, stop: asyncio.Event) -> None:
        from nats.js import api

        nc = await conn.connect(self.opts.servers, self.opts.user, self.opts.password, stop)
        if nc is None:
            return
        js = nc.jetstream(timeout=5.0)
        try:
            await self._until_ok(stop, lambda: self._setup(js, api))
            rec_sub = await js.pull_subscribe(
                "city.>", durable=sj.INGEST_DURABLE, stream=sj.STREAM)
            live_sub = await js.pull_subscribe(
                "citylive.*", durable=sj.INGEST_LIVE_DURABLE, stream=sj.STREAM_LIVE)
            self.ready.set()
            await asyncio.gather(self._loop(rec_sub, stop, self._records),
                                 self._loop(live_sub, stop, self._live))
        finally:
            with contextlib.suppress(Exception):
                await nc.close()
            self._drop("records")
            self._drop("live")

    async def _setup(self, js: Any, api: Any) -> None:
        if self.opts.create_streams:
            await streams.ensure_streams(js, replicas=self.opts.replicas)
        for stream, durable, cfg in (
                (sj.STREAM, sj.INGEST_DURABLE, api.ConsumerConfig(
                    durable_name=sj.INGEST_DURABLE, ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=api.DeliverPolicy.ALL, ack_wait=30.0,
                    max_ack_pending=50000, filter_subject="city.>")),
                (sj.STREAM_LIVE, sj.INGEST_LIVE_DURABLE, api.ConsumerConfig(
                    durable_name=sj.INGEST_LIVE_DURABLE, ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, ack_wait=30.0,
                    max_ack_pending=10000, filter_subject="citylive.*"))):
            try:
                await js.consumer_info(stream, durable)
            except Exception:
                await js.add_consumer(stream, cfg)
        await asyncio.to_thread(self._months_ahead)

    def _months_ahead(self) -> None:
        """This month's and next month's partitions, made before their first rows."""
        import datetime as dt

        this = citydb.month_of(dt.datetime.now(dt.UTC).date())
        citydb.ensure_months(self._db(), {this, citydb.next_month(this)}, self._months)

    async def _until_ok(self, stop: asyncio.Event, step: Callable[[], Any]) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await step()
                return
            except Exception as e:
                log.warning("city ingest: %s; retrying", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _loop(self, sub: Any, stop: asyncio.Event,
                    handle: Callable[[list[Any]], Any]) -> None:
        import nats.errors

        while not stop.is_set():
            try:
                msgs = await sub.fetch(self.opts.batch, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as e:  # a node gone, the connection re-established
                log.info("city ingest: fetch: %s", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
                continue
            if msgs:
                await handle(msgs)

    async def _records(self, msgs: list[Any]) -> None:
        t0 = time.time()
        recs = [json.loads(m.data) for m in msgs]
        delay = 0.2
        while True:
            try:
                new = await asyncio.to_thread(self._store, recs)
                break
            except Exception as e:
                self.stats.db_retries += 1
                log.warning("city ingest: database: %s; retrying in %.1f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        now = time.time()
        self.stats.last_store_s = now - t0
        for m in msgs:
            with contextlib.suppress(Exception):
                await m.ack()
            with contextlib.suppress(Exception):
                self.stats.lags.append(now - m.metadata.timestamp.timestamp())
        if len(self.stats.lags) > 200000:
            del self.stats.lags[:100000]
        self.stats.fetched += len(msgs)
        self.stats.stored += new
        self.stats.batches += 1
        if self.on_commit is not None:
            self.on_commit(recs, now)

    async def _live(self, msgs: list[Any]) -> None:
        docs = [json.loads(m.data) for m in msgs]
        try:
            await asyncio.to_thread(self._store_live, docs)
        except Exception as e:
            log.warning("city ingest: live: %s", e)  # not acked: redelivered
            return
        for m in msgs:
            with contextlib.suppress(Exception):
                await m.ack()
        self.stats.live += len(docs)
