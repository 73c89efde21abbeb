"""Documents stored with a ticket or case: page photos and PDFs uploaded by window nodes.

Layout under the files directory (`[store] files_dir`, by default `<db name>-files` next to
the SQLite database):

    <day>/<ticket id>/<n>-<sha256 prefix>.<ext>     the files, numbered per ticket from 1
    <day>/<ticket id>/index.jsonl                   one JSON line per stored file

A file is written to a temporary name in its directory, fsynced, renamed into place and the
directory fsynced; only then is its index line appended (and fsynced). So a crash leaves
either nothing, or a whole file that the index does not list yet (it is not shown, and its
number is not reused); never a half-written file under a final name. Temporary leftovers of
a crash are removed the next time that ticket gets a file. A torn last index line is skipped.

The same bytes uploaded twice for one ticket are stored once: the second upload gets the
first one's entry back (that makes a node's retry after a lost answer harmless).
Not in the journal: the journal holds the queue's operations, which replay into the core;
files are evidence kept beside it, and the index is their record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

INDEX = "index.jsonl"
SHA_PREFIX = 12
_ID = re.compile(r"^(\d{8})-[A-Za-z0-9]{1,16}$")  # "20261123-A017"
_NAME = re.compile(r"^(\d+)-[0-9a-f]+\.\w+$")


@dataclass(frozen=True, slots=True)
class StoredFile:
    ticket: str
    file: str  # name within the ticket's directory
    bytes: int
    sha256: str
    content_type: str
    kind: str
    device: str | None
    at: float  # unix time stored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def day_of(ticket_id: str) -> str | None:
    """The day directory of a ticket id like "20261123-A017", or None if it is not one."""
    m = _ID.match(ticket_id)
    return m.group(1) if m else None


def default_files_dir(database_url: str) -> str:
    """`<db stem>-files` next to a SQLite database; `onewindow-files` otherwise."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        db = Path(database_url.removeprefix("sqlite:///"))
        return str(db.with_name(db.stem + "-files"))
    return "onewindow-files"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()  # saves run in worker threads; numbering must not race

    def ticket_dir(self, ticket_id: str) -> Path:
        day = day_of(ticket_id)
        if day is None:
            raise ValueError(f"not a ticket id: {ticket_id!r}")
        return self.root / day / ticket_id

    def list(self, ticket_id: str) -> list[StoredFile]:
        path = self.ticket_dir(ticket_id) / INDEX
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(StoredFile(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash
        return out

    def save(self, ticket_id: str, data: bytes, ext: str, content_type: str, kind: str = "page",
             device: str | None = None, now: float | None = None) -> tuple[StoredFile, bool]:
        """Store `data` with the ticket; (entry, True) when new, (earlier entry, False) when
        these exact bytes are already stored with it. Blocking (fsync): call in a thread."""
        digest = hashlib.sha256(data).hexdigest()
        d = self.ticket_dir(ticket_id)
        with self._lock:
            for f in self.list(ticket_id):
                if f.sha256 == digest:
                    return f, False
            d.mkdir(parents=True, exist_ok=True)
            n = 1
            for p in d.iterdir():
                if p.name.startswith(".tmp-"):
                    p.unlink(missing_ok=True)  # a crash's leftover: never renamed, never listed
                elif m := _NAME.match(p.name):
                    n = max(n, int(m.group(1)) + 1)
            name = f"{n}-{digest[:SHA_PREFIX]}.{ext}"
            tmp = d / f".tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, d / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            _fsync_dir(d)
            entry = StoredFile(ticket_id, name, len(data), digest, content_type, kind, device,
                               time.time() if now is None else now)
            line = json.dumps(entry.to_dict(), ensure_ascii=False) + "\n"
            with open(d / INDEX, "a+b") as fh:
                if fh.tell():  # after a torn line, start a fresh one
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        line = "\n" + line
                fh.write(line.encode())
                fh.flush()
                os.fsync(fh.fileno())
            return entry, True

    def path_of(self, entry: StoredFile) -> Path:
        return self.ticket_dir(entry.ticket) / entry.file


__all__ = ["FileStore", "StoredFile", "day_of", "default_files_dir"]
