"""Online backup and restore of a centre's database and its uploaded documents.

One database holds everything the hub keeps (the journal, snapshots, staff accounts, the
fleet registry and secret, the history tables), so one consistent copy of it is one
consistent copy of the hub's state:

* SQLite: the backup API (`sqlite3.Connection.backup`) in one step. In WAL mode that is a
  read transaction: the running hub keeps committing while it copies, and the copy is the
  database as of one commit.
* PostgreSQL: `pg_dump --format=custom` of the hub's database, run on a snapshot exported
  from a REPEATABLE READ transaction that also counts what the dump holds, so the manifest
  describes exactly the dumped state.

The documents residents' papers were photographed into (hub/store/files.py) are files on
disk, not rows: they go into the same archive, read after the database copy. A file
uploaded while the backup runs may be in it or not; either way the database copy does not
refer to it (files are indexed beside their ticket, not in the journal).

The backup is one tar archive: `manifest.json` (what it holds), the database copy
(`database.sqlite` or `database.pgdump`) and `files/...`. It is written to a temporary name
and renamed into place, so a failed backup never leaves a file that looks whole.

Restore refuses a target database that already holds data (journal records, snapshots,
accounts, devices, history) or a non-empty files directory unless `force`; with `force`
the database's content is replaced and the old files directory is moved aside, not deleted.
Stop the hub before restoring into its database.

Why one module of 426 lines: backup and restore are the two sides of one archive format: the
manifest `backup` writes is what `restore` reads and checks, and each database's copy
(`_backup_sqlite`, `_backup_postgres`) is undone by its twin (`_restore_sqlite`,
`_restore_postgres`); apart, a change to one side could miss the other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from . import db

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite"
PG_MEMBER = "database.pgdump"
FILES = "files"
# Tables whose rows make a database "not empty" for restore: everything but the
# bookkeeping a hub writes the moment it opens any database: `meta` (a storage probe) and
# the schema's version (hub/store/db.py).
IGNORED_TABLES = frozenset({"meta", db.VERSION_TABLE})


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why (zh-CN / English)."""


@dataclass(slots=True)
class Contents:
    """What a database (and its files) holds, as a backup's manifest and restore say it."""

    kind: str  # "sqlite" | "postgresql"
    records: int = 0  # journal records
    first_pos: int | None = None
    last_pos: int | None = None
    first_day: str | None = None  # local (centre) dates of the first and last record
    last_day: str | None = None
    days: int = 0  # distinct local days with journal records
    tables: dict[str, int] = field(default_factory=dict)  # rows per table
    files: int = 0  # stored documents (files beside their tickets, indexes not counted)
    file_bytes: int = 0

    def describe(self) -> str:
        if not self.records:
            journal = "journal: empty"
        else:
            journal = (f"journal positions {self.first_pos}..{self.last_pos} "
                       f"({self.records} records), {self.days} days "
                       f"{self.first_day}..{self.last_day}")
        others = ", ".join(f"{k} {v}" for k, v in sorted(self.tables.items())
                           if k not in ("journal", *IGNORED_TABLES))
        return (f"{journal}; {others}; documents {self.files} "
                f"({self.file_bytes / 1e6:.1f} MB)")


# -- what a database holds ---------------------------------------------------------------


def _count(conn: Connection, utc_offset_minutes: int, kind: str) -> Contents:
    out = Contents(kind)
    names = [n for n in inspect(conn).get_table_names()]
    for name in sorted(names):
        out.tables[name] = int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar()
                               or 0)
    if "journal" not in names:
        return out
    row = conn.execute(text("SELECT COUNT(*), MIN(pos), MAX(pos), MIN(ts), MAX(ts) "
                            "FROM journal")).one()
    out.records = int(row[0] or 0)
    if not out.records:
        return out
    out.first_pos, out.last_pos = int(row[1]), int(row[2])
    offset = utc_offset_minutes * 60
    out.first_day, out.last_day = (_day(row[3], offset), _day(row[4], offset))
    # Day numbers since the epoch, local: floor((ts + offset) / 86400), spelled per dialect.
    day = ("CAST((ts + :off) / 86400 AS INTEGER)" if kind == "sqlite"
           else "FLOOR((ts + :off) / 86400)")
    out.days = int(conn.execute(text(f"SELECT COUNT(DISTINCT {day}) FROM journal"),
                                {"off": offset}).scalar() or 0)
    return out


def _day(ts: float, offset: int) -> str:
    return dt.datetime.fromtimestamp(ts + offset, dt.UTC).date().isoformat()


def _files_of(root: Path) -> list[Path]:
    """The documents under a files directory: everything but a crash's `.tmp-` leftovers."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))


def _count_files(contents: Contents, files: list[Path]) -> None:
    docs = [p for p in files if p.name != "index.jsonl"]
    contents.files = len(docs)
    contents.file_bytes = sum(p.stat().st_size for p in docs)


def contents(database_url: str, files_dir: str | Path, utc_offset_minutes: int = 480
             ) -> Contents:
    """What the database and files directory hold now."""
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            out = _count(conn, utc_offset_minutes, _kind(engine))
    finally:
        engine.dispose()
    _count_files(out, _files_of(Path(files_dir)))
    return out


def _engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise BackupError(f"不支持的数据库 / unsupported database {url.get_backend_name()!r}: "
                          "backup works on SQLite and PostgreSQL")
    return db.create_engine(database_url)


def _kind(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "postgresql"


def _sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise BackupError(f"没有数据库文件 / no database file in {database_url!r}")
    return Path(url.database)


# -- backup --------------------------------------------------------------------------------


def backup(database_url: str, files_dir: str | Path, out: str | Path,
           utc_offset_minutes: int = 480, centre: str = "") -> Contents:
    """Write the archive `out` while the hub may be running; what it holds."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kind = _kind_of(database_url)
    with tempfile.TemporaryDirectory(prefix=".ow-backup-", dir=out.parent) as tmp:
        work = Path(tmp)
        if kind == "sqlite":
            member, held = SQLITE_MEMBER, _backup_sqlite(database_url, work / SQLITE_MEMBER,
                                                         utc_offset_minutes)
        else:
            member, held = PG_MEMBER, _backup_postgres(database_url, work / PG_MEMBER,
                                                       utc_offset_minutes)
        root = Path(files_dir)
        files = _files_of(root)
        _count_files(held, files)
        manifest = {"format": FORMAT, "centre": centre, "created": time.time(),
                    "database": member, "contents": asdict(held)}
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                     encoding="utf-8")
        partial = work / "archive.tar"
        with tarfile.open(partial, "w") as tar:
            tar.add(work / MANIFEST, MANIFEST)
            tar.add(work / member, member)
            for p in files:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile (purge)
                    tar.add(p, f"{FILES}/{p.relative_to(root).as_posix()}")
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, out)
    return held


def _kind_of(database_url: str) -> str:
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"不支持的数据库 / unsupported database {backend!r}: "
                          "backup works on SQLite and PostgreSQL")
    return backend


def _backup_sqlite(database_url: str, dest: Path, utc_offset_minutes: int) -> Contents:
    src_path = _sqlite_path(database_url)
    if not src_path.exists():
        raise BackupError(f"数据库不存在 / no database at {src_path}")
    # Read-only: a backup never creates or changes the hub's database.
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        # pages=-1: the whole database in one step, i.e. one read transaction. A stepwise
        # copy restarts whenever the hub commits in between, and a busy hub always does.
        src.backup(dst, pages=-1)
        # The copy says what it holds (not the live database, which has moved on).
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    engine = db.create_engine(f"sqlite:///{dest}", wal=False)  # stays one file
    try:
        with engine.connect() as conn:
            return _count(conn, utc_offset_minutes, "sqlite")
    finally:
        engine.dispose()


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: on PATH (Debian's wrapper picks the server's version),
    else the newest under /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    import glob

    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                      else 0)
    if versions:
        return versions[-1]
    raise BackupError(f"找不到 {name} / {name} not found: install the PostgreSQL client "
                      f"(apt-get install postgresql-client) of the server's version or newer")


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The database as libpq names it (dbname URI) and the environment carrying its
    password: a password never goes on a command line, where `ps` shows it."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _backup_postgres(database_url: str, dest: Path, utc_offset_minutes: int) -> Contents:
    pg_dump = pg_tool("pg_dump")
    dsn, env = _libpq(database_url)
    engine = _engine(database_url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                                postgresql_readonly=True) as conn:
            # pg_dump reads the very snapshot this transaction counts, so the manifest is
            # the dump's content even while the hub keeps writing.
            snap = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            held = _count(conn, utc_offset_minutes, "postgresql")
            run = subprocess.run(
                [pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snap}", f"--file={dest}", f"--dbname={dsn}"],
                capture_output=True, text=True, env=env)
            conn.rollback()  # read only: nothing to commit
    finally:
        engine.dispose()
    if run.returncode != 0:
        raise BackupError(f"pg_dump 失败 / pg_dump failed: {run.stderr.strip()}")
    return held


# -- restore -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Restored:
    contents: Contents  # what the restored database and files directory hold
    moved_aside: Path | None  # the files directory that was there, kept (restore --force)


def read_manifest(archive: str | Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r") as tar:
            fh = tar.extractfile(MANIFEST)
            if fh is None:
                raise KeyError(MANIFEST)
            manifest = json.loads(fh.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as e:
        raise BackupError(f"不是 OneWindow 备份 / not a OneWindow backup: {archive}: {e}") from e
    if manifest.get("format") != FORMAT:
        raise BackupError(f"备份格式 {manifest.get('format')!r} 不受支持 / backup format "
                          f"{manifest.get('format')!r} is not {FORMAT}")
    return manifest


def _holds_data(database_url: str) -> dict[str, int]:
    """Tables of the target with rows (ignoring `meta`); {} for an empty or new database."""
    if _kind_of(database_url) == "sqlite":
        path = _sqlite_path(database_url)
        if not path.exists() or path.stat().st_size == 0:
            return {}
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in inspect(conn).get_table_names():
                if name in IGNORED_TABLES:
                    continue
                n = int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar() or 0)
                if n:
                    out[name] = n
            return out
    finally:
        engine.dispose()


def restore(archive: str | Path, database_url: str, files_dir: str | Path,
            force: bool = False, utc_offset_minutes: int = 480) -> Restored:
    """Restore `archive` into the (stopped) hub's database and files directory. Everything
    is checked before anything changes: a refused restore leaves both as they were."""
    manifest = read_manifest(archive)
    held = manifest["contents"]
    kind = _kind_of(database_url)
    if held["kind"] != kind:
        raise BackupError(f"备份来自 {held['kind']}，目标是 {kind} / the backup is of a "
                          f"{held['kind']} database, the target is {kind}")
    busy = _holds_data(database_url)
    root = Path(files_dir)
    files_there = root.is_dir() and any(root.iterdir())
    if not force and (busy or files_there):
        what = ", ".join(f"{k} {v}" for k, v in sorted(busy.items()))
        raise BackupError(
            "目标不为空，未恢复（加 --force 覆盖）/ the target is not empty, nothing restored "
            f"(--force replaces it): {what or 'no rows'}"
            f"{f'; files in {root}' if files_there else ''}")
    with tempfile.TemporaryDirectory(prefix=".ow-restore-",
                                     dir=_staging_dir(database_url, root)) as tmp:
        work = Path(tmp)
        with tarfile.open(archive, "r") as tar:
            tar.extract(manifest["database"], work, filter="data")
            staged_files = work / "staged-files"
            staged_files.mkdir()
            for m in tar.getmembers():
                if m.name.startswith(f"{FILES}/"):
                    m.name = m.name.removeprefix(f"{FILES}/")
                    tar.extract(m, staged_files, filter="data")
        dump = work / manifest["database"]
        if kind == "sqlite":
            _restore_sqlite(dump, database_url)
        else:
            _restore_postgres(dump, database_url)
        moved = None
        if files_there:
            moved = root.with_name(f"{root.name}.before-restore-{int(time.time())}")
            os.replace(root, moved)
        root.parent.mkdir(parents=True, exist_ok=True)
        if root.exists():
            root.rmdir()  # an empty directory (checked above)
        shutil.move(staged_files, root)
    return Restored(contents(database_url, root, utc_offset_minutes), moved)


def _staging_dir(database_url: str, files_root: Path) -> Path:
    """Unpack beside the files directory, so moving the files in is a rename."""
    files_root.parent.mkdir(parents=True, exist_ok=True)
    return files_root.parent


def _restore_sqlite(copy: Path, database_url: str) -> None:
    src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        check = src.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupError(f"备份中的数据库已损坏 / the backup's database is damaged: {check}")
        target = _sqlite_path(database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(target, timeout=30)
        try:
            # The backup API writes the whole target in one transaction (WAL or not):
            # a failure leaves it as it was.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=WAL")  # as the hub runs it
        finally:
            dst.close()
    finally:
        src.close()


def _restore_postgres(dump: Path, database_url: str) -> None:
    pg_restore = pg_tool("pg_restore")
    dsn, env = _libpq(database_url)
    # --clean --if-exists: tables a hub created empty are replaced, not collided with (a
    # target with rows was refused above unless --force). One transaction: all or nothing.
    run = subprocess.run(
        [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error", f"--dbname={dsn}", str(dump)],
        capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise BackupError(f"pg_restore 失败，未恢复 / pg_restore failed, nothing restored: "
                          f"{run.stderr.strip()}")


__all__ = ["BackupError", "Contents", "Restored", "backup", "contents", "read_manifest",
           "restore"]
