"""The journal: every accepted operation, in order, before any effect leaves the hub.

SQLite (WAL, one writer) by default; any SQLAlchemy URL works, PostgreSQL included, since
only SQLAlchemy Core and portable types are used. Positions are assigned by the hub, so a
second hub writing the same journal fails on the primary key instead of forking history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

SCHEMA_VERSION = 1

metadata = MetaData()
journal = Table(
    "journal", metadata,
    Column("pos", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("dev", String(64)),
    Column("seq", BigInteger),
    Column("op", String(32), nullable=False),
    Column("body", Text, nullable=False),
)
meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


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


class SchemaError(RuntimeError):
    pass


class Journal:
    def __init__(self, url: str, fsync: bool = False) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine, fsync)
        metadata.create_all(self.engine)
        self._check_schema()

    def _check_schema(self) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == "schema")).first()
            if row is None:
                conn.execute(insert(meta).values(key="schema", value=str(SCHEMA_VERSION)))
            elif int(row[0]) != SCHEMA_VERSION:
                raise SchemaError(f"journal schema {row[0]} is not {SCHEMA_VERSION}; migrate first")

    def last_pos(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(journal.c.pos))).scalar() or 0)

    def append(self, records: list[Record]) -> None:
        """Write records in one transaction: all of them are durable, or none is."""
        if not records:
            return
        rows = [
            {"pos": r.pos, "ts": r.ts, "dev": r.dev, "seq": r.seq, "op": r.op,
             "body": json.dumps(r.body, ensure_ascii=False, separators=(",", ":"))}
            for r in records
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(journal), rows)

    def read(self, after: int = 0, batch: int = 5000) -> Iterator[Record]:
        pos = after
        while True:
            with self.engine.connect() as conn:
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
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine, fsync: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a killed process (the WAL is in the OS); FULL also a power cut.
        cur.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()
