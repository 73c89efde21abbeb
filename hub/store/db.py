"""The hub's one database: its engine, and numbered migrations to the current schema.

Everything the hub keeps is in one database (the journal's URL): the journal, snapshots,
staff accounts, the fleet registry, the history tables; `schema.py` holds their one
MetaData. `create_engine` is the one way an engine is made (SQLite with the journal's
pragmas, PostgreSQL with a connect timeout and pre-ping); `open_database` also brings the
database to the newest schema, and every store (Journal, Accounts, Fleet, History) does
that on the engine it is given before using it.

Migrations: Alembic, numbered `0001`, `0002`, ... in `migrations/versions/`, a linear
chain. Why Alembic rather than an ordered list of our own: it is the tool SQLAlchemy's
authors keep for exactly this; its operations write portable DDL for SQLite and PostgreSQL
(on SQLite its batch mode rebuilds a table for what ALTER TABLE cannot do, which a list of
our own would have to reimplement); it records the version in `alembic_version`, which
any DBA recognises; and its autogenerate comparison lets a test prove that the migrations
produce exactly `schema.metadata` on both databases (hub/tests/test_schema_migrations.py).
Two things are ours on top:

* Alembic is imported only when there is something to migrate. Importing it costs ~0.3 s
  and ~12 MB, every start of the hub, for nothing once the database is current; so the
  version is read with one plain query first and compared with `HEAD` (a test checks
  `HEAD` is the chain's last revision).
* A migration runs in one transaction that first takes a lock: `BEGIN IMMEDIATE` on
  SQLite (the write lock; its DDL is transactional too), `pg_advisory_xact_lock` on
  PostgreSQL. Processes opening a database at once (a hub starting while `onewindow
  provision` runs) thus migrate it once: the others wait, then find it current. A failed
  migration leaves the database as it was.

A database from before versioning (no `alembic_version`; the journal's `meta` row `schema`
= 1) is what `0001` expects besides an empty one: it creates the tables that are missing
and completes the older shapes of two (see that file). Its rows are not touched.

Forward only: a downgrade is restoring a backup (`onewindow restore`). A database whose
version this hub does not know (written by a newer one) is refused with SchemaError and
left alone. A change that older hubs must not write through can also set the `meta` row
`schema` to 2: hubs from before versioning refuse any value but 1.

Adding a migration: change `schema.py`, then `python -m onewindow.hub.store.db revision
"what changes"` writes the next numbered file from what differs (review it: autogenerate
misses renames and data), and set `HEAD` to its number.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger("onewindow.hub")

HEAD = "0010"  # the newest migration in migrations/versions/
MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_LOCK_KEY = 0x6F6E6577696E  # "onewin": the advisory lock a PostgreSQL migration holds

# Engines known to be at HEAD: a store opened on an engine the journal already brought up
# to date asks nothing more (the dashboard makes a History per request).
_current: weakref.WeakSet[Engine] = weakref.WeakSet()


class SchemaError(RuntimeError):
    """The database's schema is not one this hub can bring to its own."""


# ---- the engine ----------------------------------------------------------------------------


# Connections the engine keeps open between uses (SQLAlchemy's default, named: the soak
# checks the hub never holds more). A second one opens only when a thread (a snapshot being
# written, a report) uses the database while the loop commits.
POOL_SIZE = 5


def create_engine(url: str, *, fsync: bool = False, wal: bool = True) -> Engine:
    """An engine for the hub's database (or a copy of it), without touching its tables.

    A database server: a pooled connection is checked before use (pool_pre_ping), so one
    the server dropped (restart, failover, idle timeout) is replaced instead of failing the
    commit; one that hangs rather than refuses is given up after a few seconds, not never.
    A SQLite file has no server to drop its connection: no ping, which would be a second
    statement on every commit of the call path. `wal=False`: a SQLite file that must stay
    self-contained (a backup's copy)."""
    backend = make_url(url).get_backend_name()
    connect = {"connect_timeout": 5} if backend == "postgresql" else {}
    engine = sqlalchemy.create_engine(url, pool_pre_ping=backend != "sqlite",
                                      pool_size=POOL_SIZE, connect_args=connect)
    if engine.dialect.name == "sqlite":
        sqlite_pragmas(engine, fsync, wal)
    return engine


def sqlite_pragmas(engine: Engine, fsync: bool, wal: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if wal:
            _set_wal(cur)
        # NORMAL survives a killed process (the WAL is in the OS); FULL also a power cut.
        cur.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()


# Turning a new file to WAL takes SQLite's exclusive lock; a connection that finds it taken
# (another process or thread opening the same new file that instant) gets "database is
# locked" at once, without its busy timeout. It is tried again for as long as that timeout.
_WAL_TRIES = 60


def _set_wal(cur: Any) -> None:
    for attempt in range(_WAL_TRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(min(0.005 * 2 ** attempt, 0.1))


def open_database(url: str, *, fsync: bool = False) -> Engine:
    """The hub's database, at the newest schema (created or migrated as needed)."""
    engine = create_engine(url, fsync=fsync)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


# ---- versions and migrations ---------------------------------------------------------------


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise SchemaError(f"the database records several schema versions: {found}")
    return found[0] if found else None


def revision(engine: Engine) -> str | None:
    """The database's schema version; None before versioning (or for a new database)."""
    with engine.connect() as conn:
        return _revision(conn)


def revision_of(url: str) -> str | None:
    """`revision` of the database at `url`, changing nothing."""
    engine = create_engine(url, wal=False)
    try:
        return revision(engine)
    finally:
        engine.dispose()


def upgrade(engine: Engine) -> None:
    """Bring the database to HEAD. Cheap when it is there: one query, once per engine."""
    if engine in _current:
        return
    if revision(engine) != HEAD:
        _migrate(engine)
    _current.add(engine)


def _migrate(engine: Engine) -> None:
    # Alembic's own INFO lines (plugins set up on import, "non-transactional DDL": not so
    # here, the transaction is ours) say nothing a centre's log needs; ours below does.
    quiet = logging.getLogger("alembic")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    from alembic import command
    from alembic.util.exc import CommandError

    config = alembic_config()
    with engine.connect() as conn, conn.begin():
        _lock(conn)
        found = _revision(conn)  # again, under the lock: another process may have done it
        if found == HEAD:
            return
        if found is not None and not _known(config, found):
            raise SchemaError(
                f"数据库结构版本 {found} 比本程序新 / the database's schema version {found} "
                f"is newer than this hub's ({HEAD}): run the newer onewindow, or restore a "
                f"backup made with this one")
        was = found or ("unversioned" if inspect(conn).get_table_names() else "empty")
        log.info("database schema %s -> %s", was, HEAD)
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        except CommandError as e:
            raise SchemaError(f"database migration failed: {e}") from e


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # The first statement of the transaction: pysqlite has not begun one (it does so
        # only before DML), so this takes SQLite's write lock until the commit.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _known(config: Config, rev: str) -> bool:
    from alembic.util.exc import CommandError

    try:
        return script_directory(config).get_revision(rev) is not None
    except CommandError:
        return False


def alembic_config() -> Config:
    """Alembic's configuration for the migrations (no alembic.ini: it is all here)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def script_directory(config: Config | None = None) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config or alembic_config())


def _new_revision(message: str) -> None:
    """Write the next numbered migration from what schema.py has that HEAD's does not."""
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{tmp}/head.db")
        config = alembic_config()
        try:
            with engine.connect() as conn:
                config.attributes["connection"] = conn
                command.revision(config, message, autogenerate=True,
                                 rev_id=f"{int(HEAD) + 1:04d}")
        finally:
            engine.dispose()
    print(f"now set HEAD = \"{int(HEAD) + 1:04d}\" in {__file__}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit("usage: python -m onewindow.hub.store.db revision \"what changes\"")
    _new_revision(sys.argv[2])


__all__ = ["HEAD", "MIGRATIONS", "POOL_SIZE", "SchemaError", "alembic_config", "create_engine",
           "open_database", "revision", "revision_of", "script_directory", "sqlite_pragmas",
           "upgrade"]


class Tables:
    """A store of tables in the hub's database, opened from a URL (its own engine, disposed
    by `close`) or on an engine shared with the journal (left open: the journal's), at the
    newest schema either way. The staff accounts, the fleet registry and the API clients
    are each one."""

    def __init__(self, url: str | Engine) -> None:
        if isinstance(url, str):
            self.engine, self._own = open_database(url), True
        else:
            self.engine, self._own = url, False
            upgrade(self.engine)

    def close(self) -> None:
        if self._own:
            self.engine.dispose()
