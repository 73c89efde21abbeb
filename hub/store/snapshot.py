"""Snapshots: the hub's whole state at a journal position, so a start-up replays only the
records after it instead of every record since the first day.

Stored in the journal's own database (table `snapshot`), one row per snapshot, written in
one transaction that also checks the position it names is in the journal: a snapshot never
covers a record that is not durable. Each row holds `HubApp.snapshot()` as JSON, compressed,
with its format `version` and a SHA-256 of the stored bytes. Loading tries the newest first
and falls back to older ones (and in the end to a full replay) on any snapshot that fails
its checksum, does not decode, or has a version no migration reaches: a bad snapshot costs
start-up time, never state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from .. import heap
from ..core.snapshot import from_table
from .journal import journal, metadata, storage_errors
from .schema import snapshot  # the table (schema.py: the one metadata)

log = logging.getLogger("onewindow.hub")

VERSION = 4  # of the snapshot's content (HubApp.snapshot); bump it with a migration
KEEP = 3  # snapshots kept: the newest, and older ones to fall back on
CODEC = "json+zlib"

def _v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 2 stores the cases and the app's ratings as columns and rows (a dict per
    row was most of a year's snapshot)."""
    cases = list(state["centre"]["cases"].values())
    names = list(cases[0]) if cases else ["id"]
    state["centre"]["cases"] = {"fields": names, "rows": [[c[n] for n in names] for c in cases]}
    state["app"]["ratings"] = {"dicts": state["app"]["ratings"]}
    return state


def _v2_to_v3(state: dict[str, Any]) -> dict[str, Any]:
    """Version 3: a case's `closed_at`, and closed cases leave the core at the day's close
    after their closing (hub/store/history.py `history_cases`). A version-2 snapshot's
    closed cases get closed_at None and stay in memory until the next day's close, which
    archives them like any other: nothing is lost, their closing time is in the journal
    and in `history_case_events`."""
    cases = state["centre"]["cases"]
    if "closed_at" not in cases["fields"]:
        cases["fields"] = [*cases["fields"], "closed_at"]
        cases["rows"] = [[*row, None] for row in cases["rows"]]
    return state


def _v3_to_v4(state: dict[str, Any]) -> dict[str, Any]:
    """Version 4: ratings and help requests live in the core alone (hub/core/ratings.py,
    help_requests.py). The app's list of ratings since the day's close becomes the core's;
    the core's other ratings (tickets served across midnight, rated before it) become
    `rated_carried`; the app's help requests the core's, named by `request`."""
    app, centre = state["app"], state["centre"]
    since_close = from_table(app.pop("ratings"))
    fields = ("ticket", "score", "window", "clerk", "at")
    centre["rated_carried"] = sorted(set(centre["ratings"]) - {r["ticket"] for r in since_close})
    centre["ratings"] = {r["ticket"]: {f: r[f] for f in fields} for r in since_close}
    centre["help_requests"] = [
        {"request": h["pos"], "window": h["window"], "clerk": h.get("clerk"), "at": h["at"],
         "answered_at": h["answered_at"], "by": h["by"]} for h in app.pop("help_requests")]
    return state


# version n -> a function turning a version-n snapshot into a version n+1 one. A snapshot
# whose version has no path to VERSION is ignored (with a log line): the journal has it all.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2,
                                                                     2: _v2_to_v3,
                                                                     3: _v3_to_v4}


class SnapshotInvalid(ValueError):
    """A stored snapshot that cannot be used; the reason is the message."""


@dataclass(frozen=True, slots=True)
class Saved:
    pos: int
    size: int  # bytes stored
    raw: int  # bytes of JSON before compression


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ROWS = "\x00rows\x00"  # where the cases' rows go (no value of the state holds a NUL)
ROWS_AT_ONCE = 512  # cases written per piece


def encode(state: dict[str, Any]) -> tuple[bytes, int]:
    """(stored bytes, JSON size) of a snapshot's content. The cases given as columns
    (core/snapshot.py `centre_state(case_columns=True)`) are written as the rows the format
    holds, a few hundred at a time into the compressor: never all at once as objects."""
    # Level 1: a year's snapshot (~30 MB of JSON) in 0.1 s instead of 0.4 s at level 6,
    # for ~20 % more bytes.
    table = state.get("centre", {}).get("cases")
    if not (isinstance(table, dict) and "columns" in table):
        raw = _JSON.encode({"version": VERSION, "state": state}).encode()
        return zlib.compress(raw, 1), len(raw)
    shell = {**state, "centre": {**state["centre"],
                                 "cases": {"fields": table["fields"], "rows": _ROWS}}}
    head, tail = _JSON.encode({"version": VERSION, "state": shell}).split(
        _JSON.encode(_ROWS))
    comp = zlib.compressobj(1)
    out: list[bytes] = []
    size = 0

    def put(text: str) -> None:
        nonlocal size
        data = text.encode()
        size += len(data)
        out.append(comp.compress(data))

    put(head + "[")
    rows = zip(*table["columns"], strict=True)
    sep = ""
    while chunk := list(islice(rows, ROWS_AT_ONCE)):
        put(sep + _JSON.encode(chunk)[1:-1])
        sep = ","
    put("]" + tail)
    out.append(comp.flush())
    return b"".join(out), size


def decode(data: bytes, sha256: str, codec: str) -> dict[str, Any]:
    """The snapshot's content at VERSION, migrated if older. Raises SnapshotInvalid."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SnapshotInvalid("checksum mismatch")
    if codec != CODEC:
        raise SnapshotInvalid(f"unknown codec {codec!r}")
    try:
        doc = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError too
        raise SnapshotInvalid(f"undecodable: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("state"), dict):
        raise SnapshotInvalid("not a snapshot document")
    version = doc.get("version")
    if type(version) is not int or version > VERSION:
        raise SnapshotInvalid(f"version {version!r} is not one this hub reads ({VERSION})")
    state = doc["state"]
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SnapshotInvalid(f"version {version} has no migration to {VERSION}")
        try:
            state, version = step(state), version + 1
        except Exception as e:  # a migration that does not fit this document
            raise SnapshotInvalid(f"migration from version {version} failed: {e!r}") from e
    return state


class SnapshotStore:
    def __init__(self, engine: Engine, keep: int = KEEP) -> None:
        self.engine = engine
        self.keep = keep
        metadata.create_all(engine, tables=[snapshot])

    def save(self, state: dict[str, Any]) -> Saved:
        """Store `state` (HubApp.snapshot(), naming its `pos`) in one transaction, and drop
        all but the newest `keep`. Raises ValueError when its position is not a journal
        record (nothing stored); StorageUnavailable when the database is away.

        Then the C heap is trimmed (hub/heap.py): the JSON and compressed buffers, megabytes
        that glibc keeps on the heap of the thread saving (start-up's freed snapshot raised
        its mmap threshold above them), would otherwise stay resident: ~2-3.5 MiB of a
        year's hub after its first checkpoint. Well under a millisecond there."""
        try:
            return self._save(state)
        finally:
            heap.trim()

    def _save(self, state: dict[str, Any]) -> Saved:
        pos, day = int(state["pos"]), str(state["centre"]["day"])
        data, raw = encode(state)
        digest = hashlib.sha256(data).hexdigest()
        with storage_errors(self.engine), self.engine.begin() as conn:
            ts = conn.execute(select(journal.c.ts).where(journal.c.pos == pos)).scalar()
            if ts is None:
                raise ValueError(f"no journal record {pos}: a snapshot covers durable "
                                 f"records only")
            conn.execute(delete(snapshot).where(snapshot.c.pos == pos))
            conn.execute(insert(snapshot).values(pos=pos, journal_ts=ts, day=day,
                                                 version=VERSION, codec=CODEC,
                                                 sha256=digest, data=data))
            kept = conn.execute(select(snapshot.c.pos).order_by(snapshot.c.pos.desc())
                                .limit(self.keep)).scalars().all()
            conn.execute(delete(snapshot).where(snapshot.c.pos < min(kept)))
        return Saved(pos, len(data), raw)

    def candidates(self) -> Iterator[dict[str, Any]]:
        """Usable snapshots, newest first, decoded one at a time as the caller asks for the
        next; a bad one is logged and passed over."""
        with storage_errors(self.engine), self.engine.connect() as conn:
            rows = conn.execute(select(snapshot.c.pos, snapshot.c.journal_ts)
                                .order_by(snapshot.c.pos.desc())).all()
        for pos, journal_ts in rows:
            try:
                yield self._load(pos, journal_ts)
            except SnapshotInvalid as e:
                log.warning("snapshot at journal position %d not used: %s", pos, e)

    def _load(self, pos: int, journal_ts: float) -> dict[str, Any]:
        with storage_errors(self.engine), self.engine.connect() as conn:
            row = conn.execute(select(snapshot.c.sha256, snapshot.c.codec, snapshot.c.data)
                               .where(snapshot.c.pos == pos)).first()
            ts = conn.execute(select(journal.c.ts).where(journal.c.pos == pos)).scalar()
        if row is None:
            raise SnapshotInvalid("gone while loading")
        if ts is None or ts != journal_ts:
            raise SnapshotInvalid("the journal no longer holds the record it covers")
        state = decode(bytes(row.data), row.sha256, row.codec)
        if state.get("pos") != pos:
            raise SnapshotInvalid(f"names position {state.get('pos')!r}, stored at {pos}")
        return state

    def last_by_device(self, after: int) -> dict[str, int]:
        """Each device's last journal position after `after`: the records whose replies a
        replay must render (HubApp.replay)."""
        with storage_errors(self.engine), self.engine.connect() as conn:
            rows = conn.execute(
                select(journal.c.dev, func.max(journal.c.pos))
                .where(journal.c.pos > after, journal.c.dev.is_not(None),
                       journal.c.seq.is_not(None))
                .group_by(journal.c.dev)).all()
        return {dev: int(pos) for dev, pos in rows}
