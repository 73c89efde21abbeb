"""The journal: every accepted operation, in order, before any effect leaves the hub.

SQLite (WAL, one writer) by default; any SQLAlchemy URL works, PostgreSQL included, since
only SQLAlchemy Core and portable types are used (tables in schema.py; engine and
migrations in db.py). Positions are assigned by the hub, so a second hub writing the same
journal fails on the primary key instead of forking history.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from . import db
from .checkpoint import BACKSTOP_PAGES, Checkpointer
from .schema import journal, meta
from .schema import metadata as metadata  # the one metadata (schema.py), as before


@dataclass(frozen=True, slots=True)
class Record:
    pos: int
    ts: float
    dev: str | None
    seq: int | None
    body: dict[str, Any]

    @property
    def op(self) -> str:
        return str(self.body["op"])


class StorageUnavailable(RuntimeError):
    """The journal cannot store or read right now: the database is down or restarting, its
    connections died, or the disk is full. Nothing of the failed call was stored; the same
    call may succeed later. (A refused write that retrying cannot fix, such as a second
    writer's duplicate position, stays the driver's own IntegrityError.)"""


# What a storage outage looks like through SQLAlchemy: OperationalError covers a refused or
# dropped connection, PostgreSQL's admin shutdown and disk full, SQLite's "database or disk
# is full", "disk I/O error" and "database is locked"; InterfaceError a connection psycopg
# already knows is closed. Any DBAPIError SQLAlchemy saw as a disconnect counts too.
_OUTAGE = (sa_exc.OperationalError, sa_exc.InterfaceError)
_SQLITE_OUTAGE = (sqlite3.OperationalError, sqlite3.InterfaceError)  # the same, unwrapped


@contextlib.contextmanager
def storage_errors(engine: Engine | None = None) -> Iterator[None]:
    """Turn a database outage raised inside the block into StorageUnavailable; with an
    engine, also drop its pooled connections (after a server restart every one is dead)."""
    try:
        yield
    except sa_exc.DBAPIError as e:
        if not (isinstance(e, _OUTAGE) or e.connection_invalidated):
            raise
        if engine is not None:
            engine.dispose()
        raise StorageUnavailable(f"{type(e.orig).__name__ if e.orig else type(e).__name__}: "
                                 f"{str(e.orig or e).strip().splitlines()[0]}") from e


def _body_json(body: dict[str, Any]) -> str:
    """A record's body as stored: JSON, UTF-8 text as is. A string holding a lone surrogate
    (JSON's grammar allows "\\ud800"; the protocol refuses it from devices, but a page's JSON
    body may carry one) cannot be encoded in UTF-8, and the driver refused the whole commit with
    a UnicodeEncodeError that is no outage: that body is stored with its non-ASCII escaped
    instead, which reads back to the very same strings."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(body, separators=(",", ":"))
    return text


class Journal:
    def __init__(self, url: str, fsync: bool = False) -> None:
        self.url = url
        # The hub's database at the newest schema (hub/store/db.py: engine, migrations).
        self.engine: Engine = db.open_database(url, fsync=fsync)
        # The append is on every event's path. On SQLite: the driver's own cursor on a
        # connection held between appends (sqlite3's implicit BEGIN, then commit), not
        # SQLAlchemy's: a Core insert() on a pooled connection cost ~0.045 of the ~0.07 ms
        # a single-record commit took (statement cache key, parameter processing, pool
        # checkout), and even `exec_driver_sql` in `begin()` on a held Connection (its
        # Transaction objects and events) took 0.29 ms of a call's path where the bare
        # driver took 0.16, measured one call every 3 ms as the hub sees them at ~300
        # calls/s (tools/bench/bench_hub.py, "journal append"). Appends come from one
        # thread, the hub's. A database server's connections are instead checked out of
        # the pool and pinged each time (db.create_engine), so one the server dropped is
        # replaced, not failed on.
        self._hold = self.engine.dialect.name == "sqlite"
        self._raw: Any = None  # the held DBAPI connection (SQLite), as the pool lent it
        # WAL checkpoints on a thread of their own, not inside a call's commit (checkpoint.py).
        path = self.engine.url.database if self._hold else None
        self._checkpointer = (Checkpointer(path) if path and path != ":memory:"
                              and not path.startswith("file:") else None)
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._insert = (f"INSERT INTO {journal.name} (pos, ts, dev, seq, op, body) "
                        f"VALUES ({', '.join([mark] * 6)})")

    def last_pos(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(journal.c.pos))).scalar() or 0)

    def append(self, records: list[Record]) -> None:
        """Write records in one transaction: all of them are durable, or none is."""
        if not records:
            return
        rows = [(r.pos, r.ts, r.dev, r.seq, r.op, _body_json(r.body)) for r in records]
        if not self._hold:
            with storage_errors(self.engine), self.engine.begin() as pooled:
                pooled.exec_driver_sql(self._insert, rows)
            return
        raw = self._raw
        try:
            with storage_errors(self.engine):  # a refused connection (SQLAlchemy's errors)
                if raw is None:
                    raw = self._raw = self.engine.raw_connection()
                    if self._checkpointer is not None:
                        raw.cursor().execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            cur = raw.cursor()
            try:
                cur.executemany(self._insert, rows)
                raw.commit()
            finally:
                cur.close()
            if self._checkpointer is not None:
                self._checkpointer.committed()
        except BaseException as e:
            # Whatever failed, the next append starts on a fresh connection, with nothing
            # of this one's transaction left (a fresh one costs nothing next to an error).
            self._raw = None
            if raw is not None:
                with contextlib.suppress(Exception):
                    raw.rollback()
                with contextlib.suppress(Exception):
                    raw.close()
            # The driver's own errors, as `storage_errors` sorts SQLAlchemy's: a full disk,
            # an I/O error or a lock held too long is an outage; anything else (a second
            # writer's duplicate position) stays what it is.
            if isinstance(e, _SQLITE_OUTAGE):
                self.engine.dispose()
                raise StorageUnavailable(
                    f"{type(e).__name__}: {str(e).strip().splitlines()[0]}") from e
            raise

    def probe(self, now: float | None = None) -> None:
        """A real write and read, to tell when storage is back: a write, because a full disk
        still answers reads. Raises StorageUnavailable while it is not."""
        stamp = str(time.time() if now is None else now)
        with storage_errors(self.engine), self.engine.begin() as conn:
            done = conn.execute(meta.update().where(meta.c.key == "probe").values(value=stamp))
            if done.rowcount == 0:
                conn.execute(insert(meta).values(key="probe", value=stamp))
            conn.execute(select(func.max(journal.c.pos))).scalar()

    def read(self, after: int = 0, batch: int = 5000) -> Iterator[Record]:
        pos = after
        while True:
            with storage_errors(self.engine), self.engine.connect() as conn:
                rows = conn.execute(
                    select(journal.c.pos, journal.c.ts, journal.c.dev, journal.c.seq,
                           journal.c.body)
                    .where(journal.c.pos > pos).order_by(journal.c.pos).limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield Record(row.pos, row.ts, row.dev, row.seq, json.loads(row.body))
            pos = rows[-1].pos

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._raw is not None:
            with contextlib.suppress(Exception):
                self._raw.close()
            self._raw = None
        self.engine.dispose()

