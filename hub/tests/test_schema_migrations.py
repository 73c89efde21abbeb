"""The one database module (hub/store/db.py): numbered migrations bring any database of the
hub's to the current schema (hub/store/schema.py), on SQLite and a real PostgreSQL.

A database made before the schema had a version is built from the very DDL that code ran
(schema_before_versioning.py), filled with the rows a real hub wrote, and opened the way
the hub opens its database: it comes out at the newest version with every row as it was,
and a hub built on it holds the same state as the hub that wrote the rows.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading

import pytest
from argon2 import PasswordHasher
from sqlalchemy import MetaData, create_engine, insert, inspect, select, text
from sqlalchemy.engine import Engine

from onewindow.hub.fleet.registry import Fleet, FleetDevice
from onewindow.hub.runner import build_app
from onewindow.hub.store import db, schema
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.history import History
from onewindow.hub.store.journal import Journal, Record
from onewindow.hub.store.snapshot import SnapshotStore

from . import schema_before_versioning as before_versioning
from .test_backup import _pg_database, pg_server  # noqa: F401 - pg_server: a fixture
from .test_history import _answer, centre, morning
from .test_retention import DAY, Driver

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_names = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """A new, empty database: a SQLite file, or a database on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return _pg_database(request.getfixturevalue("pg_server"), f"migrate{next(_names)}")


def _rows(engine: Engine, tables: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of each table (those columns only), sorted."""
    out = {}
    with engine.connect() as conn:
        for name, columns in tables.items():
            cols = ", ".join(f'"{c}"' for c in columns)
            out[name] = sorted(tuple(r) for r in conn.execute(text(
                f'SELECT {cols} FROM "{name}"')))
    return out


def _columns(engine: Engine) -> dict[str, list[str]]:
    found = inspect(engine)
    return {t: [c["name"] for c in found.get_columns(t)] for t in found.get_table_names()}


def _differences(engine: Engine) -> list:
    """What autogenerate would change to make the database equal to schema.metadata."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), schema.metadata)


def _a_hub_at_work(tmp_path, cfg) -> tuple[Journal, object]:
    """A scratch database a real hub wrote: three days of tickets, ratings and help
    (two of them closed into the history tables), a snapshot, a staff account with a
    session, the fleet secret and a provisioned device. (journal, the app)"""
    j = Journal(f"sqlite:///{tmp_path / 'scratch.db'}")
    app = build_app(cfg, j)
    d = Driver(app, j)
    start = morning(2)
    d.send("kp-1", "open", start)
    for k in range(3):
        at = start + k * DAY
        for i in range(2 + k):
            tid = d.serve(at + 600 * i, "SOC-1" if i % 2 else "MED-1")
            d.send("node-1", "rate", at + 600 * i + 450, window=1, ticket=tid,
                   score=1 if i % 2 else 3)
        d.send("kp-1", "help", at + 50, window=1)
        d.operate(_answer(list(app.centre.help_requests)[-1]), at + 120)
        if k == 1:
            SnapshotStore(j.engine).save(app.snapshot())
    accounts = Accounts(j.engine, FAST)
    clerk = accounts.add("wang", "password-1", "clerk", "王芳", window=1, now=start)
    accounts.start_session(clerk, start + 10)
    fleet = Fleet(j.engine)
    fleet.secret(create=True)
    fleet.put(FleetDevice("led-9", "led", 1, "esp32-devkitc", 2, False, start, start),
              existed=False)
    return j, app


# A history_ratings score: the five levels (5 非常满意 .. 1 非常不满意) a hub writes today,
# and the three levels (1 good, 2 ok, 3 bad) hubs before migration 0002 wrote.
THREE = {5: 1, 3: 2, 1: 3}
FIVE = {1: 5, 2: 3, 3: 1}


def _five(rows: dict[str, list[tuple]], columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """`rows` with their history_ratings scores as migration 0002 leaves them."""
    if "history_ratings" not in rows:
        return rows
    at = columns["history_ratings"].index("score")
    return {**rows, "history_ratings": sorted(
        (*r[:at], FIVE[r[at]], *r[at + 1:]) for r in rows["history_ratings"])}


def _copy(src: Engine, dst: Engine) -> None:
    """Every row of `src` into the tables `dst` has, in the columns it has; the ratings
    on the three levels a hub from before versioning wrote."""
    found = MetaData()
    found.reflect(dst)
    with src.connect() as read, dst.begin() as write:
        for table in found.sorted_tables:
            names = [c.name for c in table.columns]
            rows = [dict(r._mapping) for r in read.execute(
                select(*[schema.metadata.tables[table.name].c[n] for n in names]))]
            if table.name == "meta":
                rows = [r for r in rows if r["key"] != "schema"]
            if table.name == "history_ratings":  # as a hub of that time wrote them
                rows = [{**r, "score": THREE[r["score"]]} for r in rows]
            if rows:
                write.execute(insert(table), rows)


@pytest.mark.parametrize("shape", sorted(before_versioning.SHAPES))
def test_a_database_from_before_versioning_opens_at_the_newest_version_with_every_row(
        tmp_path, small_catalog_file, url, shape):
    cfg = centre(tmp_path, small_catalog_file, url)
    scratch, app = _a_hub_at_work(tmp_path, cfg)

    old = create_engine(url)
    before_versioning.create(old, shape)
    _copy(scratch.engine, old)
    kept = _columns(old)
    rows = _rows(old, kept)
    old.dispose()
    assert db.revision_of(url) is None  # no version recorded
    assert rows["journal"] and rows["meta"] == [("schema", "1")]

    j = Journal(url)  # as the hub opens its database
    try:
        assert db.revision(j.engine) == db.HEAD
        # every row, every column it had, unchanged but for the ratings on five levels
        assert _rows(j.engine, kept) == _five(rows, kept)
        if "history_ratings" in kept:  # good and bad (_a_hub_at_work), now 5 and 1
            at = kept["history_ratings"].index("score")
            assert {r[at] for r in rows["history_ratings"]} == {1, 3}
        assert set(_columns(j.engine)) == {*schema.metadata.tables, "alembic_version"}
        assert _differences(j.engine) == []
        if shape == "913d84c":  # the column added to rows written without it
            with j.engine.connect() as conn:
                assert set(conn.execute(select(schema.history_tickets.c.extra_items))
                           .scalars()) == {""}

        # A hub on the upgraded database holds what the hub that wrote it held.
        got = build_app(cfg, j)
        assert got.snapshot() == app.snapshot()
        first, last = app.centre.local_date(morning(2)).strftime("%Y%m%d"), "99991231"
        assert History(j.engine).summary(first, last) == \
            History(scratch.engine).summary(first, last)
        if "staff_accounts" in kept:
            accounts = Accounts(j.engine, FAST)
            assert accounts.verify("wang", "password-1") == Accounts(
                scratch.engine, FAST).get("wang")
        if "fleet_devices" in kept:
            fleet = Fleet(j.engine)
            assert fleet.secret() == Fleet(scratch.engine).secret()
            assert fleet.list() == Fleet(scratch.engine).list()
    finally:
        j.close()
        scratch.close()


def test_a_new_database_is_created_at_the_newest_version(url):
    j = Journal(url)
    try:
        assert db.revision(j.engine) == db.HEAD
        assert set(_columns(j.engine)) == {*schema.metadata.tables, "alembic_version"}
        assert _differences(j.engine) == []
        with j.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1
    finally:
        j.close()


def test_the_migrations_are_numbered_one_after_another():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(db.MIGRATIONS))
    chain = list(reversed(list(script.walk_revisions())))
    assert [s.revision for s in chain] == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    assert [s.down_revision for s in chain] == [None, *[s.revision for s in chain[:-1]]]
    assert script.get_current_head() == db.HEAD


def test_a_database_newer_than_this_hub_is_refused_and_left_alone(url):
    Journal(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    tables = _columns(engine)
    engine.dispose()
    with pytest.raises(db.SchemaError, match="9999"):
        Journal(url)
    with pytest.raises(db.SchemaError, match="9999"):
        Accounts(url)
    assert db.revision_of(url) == "9999"
    engine = create_engine(url)
    assert _columns(engine) == tables
    engine.dispose()


def test_hubs_opening_a_new_database_at_once_create_it_once(url):
    """Processes starting together (a hub and `onewindow provision`, say) each open the
    new database; the first migrates it, the others wait for it and find it done."""
    engines = [db.create_engine(url) for _ in range(6)]
    ready = threading.Barrier(len(engines))
    failed: list[BaseException] = []

    def open_one(engine: Engine) -> None:
        ready.wait()
        try:
            db.upgrade(engine)
        except BaseException as e:
            failed.append(e)

    db.script_directory()  # imported once, not inside the race
    threads = [threading.Thread(target=open_one, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failed == []
    for engine in engines:
        assert db.revision(engine) == db.HEAD
        engine.dispose()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1
    assert _differences(engine) == []
    engine.dispose()


def test_opening_a_database_already_at_the_newest_version_does_not_load_alembic(tmp_path):
    """Alembic (~0.3 s and ~12 MB to import) is loaded only when a database has something
    to migrate, not on every start of the hub."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    Journal(url).close()
    probe = ("import sys; from onewindow.hub.store.journal import Journal; "
             f"from onewindow.hub.store.accounts import Accounts; j = Journal({url!r}); "
             "Accounts(j.engine); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_sqlite_engine_runs_the_journals_pragmas(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'hub.db'}", fsync=True)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()
    engine = db.create_engine(f"sqlite:///{tmp_path / 'copy.db'}", wal=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_connections_opening_a_new_sqlite_file_at_once_all_get_the_journals_pragmas(tmp_path):
    """Turning a new file to WAL takes SQLite's exclusive lock, and a connection that finds
    it taken is told "database is locked" at once, without its busy timeout (the CI run at
    340a42c failed so, opening a new database from six threads: about one such race in a
    hundred). Every connection of a hub and a `onewindow provision` started together gets
    its pragmas."""
    failed: list[BaseException] = []
    modes: list[str] = []

    def open_one(engine: Engine, ready: threading.Barrier) -> None:
        ready.wait()
        try:
            with engine.connect() as conn:
                modes.append(str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()))
        except BaseException as e:
            failed.append(e)

    for n in range(150):
        modes.clear()
        engines = [db.create_engine(f"sqlite:///{tmp_path / f'hub{n}.db'}") for _ in range(6)]
        ready = threading.Barrier(len(engines))
        threads = [threading.Thread(target=open_one, args=(e, ready)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for engine in engines:
            engine.dispose()
        assert failed == []
        assert modes == ["wal"] * len(engines)


def test_every_store_shares_the_one_metadata():
    from onewindow.hub.fleet import registry
    from onewindow.hub.store import accounts, history, journal, snapshot

    assert journal.journal is schema.journal and snapshot.snapshot is schema.snapshot
    assert accounts.accounts is schema.staff_accounts
    assert registry.devices is schema.fleet_devices
    assert {t.metadata for t in (history.days, history.cases, registry.secret_table,
                                 accounts.sessions, journal.meta)} == {schema.metadata}



_LATER = '''"""A later step, for the test: a column, an index and a data change."""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("note", sa.String(16), nullable=False,
                                   server_default="-"))
        batch.create_index("ix_journal_dev", ["dev"])
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
'''


def test_a_versioned_database_is_brought_forward_by_the_later_steps(url, tmp_path,
                                                                   monkeypatch):
    """A database at HEAD, then a hub with one more numbered step: it runs that step alone,
    once, in order; the rows stay."""
    import shutil

    j = Journal(url)
    j.append([Record(1, 1.0, "box-1", 1, {"op": "take", "item": "SOC-1"}),
              Record(2, 2.0, None, None, {"op": "open", "window": 1})])
    with j.engine.begin() as conn:
        conn.execute(insert(schema.meta).values(key="schema", value="1"))
    records = list(j.read())
    j.close()

    later = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, later, ignore=shutil.ignore_patterns("__pycache__"))
    nxt = f"{int(db.HEAD) + 1:04d}"
    (later / "versions" / f"{nxt}_later.py").write_text(
        _LATER.format(rev=nxt, down=db.HEAD), encoding="utf-8")
    monkeypatch.setattr(db, "MIGRATIONS", later)
    monkeypatch.setattr(db, "HEAD", nxt)

    j = Journal(url)
    try:
        assert db.revision(j.engine) == nxt
        assert list(j.read()) == records
        with j.engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM journal")).scalars().all() == ["-", "-"]
            assert conn.execute(select(schema.meta.c.value).where(
                schema.meta.c.key == "schema")).scalar() == "2"
        assert "ix_journal_dev" in {i["name"] for i in inspect(j.engine).get_indexes("journal")}
    finally:
        j.close()
    Journal(url).close()  # opens again: at the head, nothing to run
    assert db.revision_of(url) == nxt


def test_migration_0002_puts_the_three_level_ratings_on_the_five_levels(url):
    """A database at 0001 holds history ratings on the old three levels (1 good, 2 ok,
    3 bad); opened by this hub they are 5 非常满意, 3 基本满意, 1 非常不满意 (the core's
    mapping), every other column as it was, once: opening it again changes nothing."""
    from alembic import command

    engine = db.create_engine(url)
    config = db.alembic_config()
    with engine.connect() as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    rows = [{"ticket": f"20261123-A00{n}", "day": "20261123", "score": score, "window": 1,
             "clerk": "wang", "at": 1.0 + n} for n, score in enumerate((1, 2, 3, 1, 2), 1)]
    with engine.begin() as conn:
        conn.execute(insert(schema.history_ratings), rows)
    engine.dispose()
    assert db.revision_of(url) == "0001"

    hist = History(url_engine := db.open_database(url))
    try:
        assert db.revision(url_engine) == db.HEAD
        with url_engine.connect() as conn:
            got = conn.execute(select(schema.history_ratings).order_by(
                schema.history_ratings.c.ticket)).all()
        assert [tuple(r) for r in got] == [
            (r["ticket"], r["day"], FIVE[r["score"]], 1, "wang", r["at"]) for r in rows]
        assert [r.score for r in got] == [5, 3, 1, 5, 3]
        s = hist.summary("20261123", "20261123")
        # 满意率 = (非常满意 + 满意 + 基本满意) / all: the old good and ok, 4 of 5
        assert (s["ratings"], s["satisfaction_rate"]) == (5, 0.8)
        assert s["ratings_by_level"] == {"5": 2, "4": 0, "3": 2, "2": 0, "1": 1}
        assert hist.ratings_by_clerk("20261123", "20261123") == {"wang": (5, 4)}
    finally:
        url_engine.dispose()
    again = db.open_database(url)  # at the head: the step does not run twice
    try:
        with again.connect() as conn:
            assert conn.execute(select(schema.history_ratings.c.score).order_by(
                schema.history_ratings.c.ticket)).scalars().all() == [5, 3, 1, 5, 3]
    finally:
        again.dispose()


def test_migration_0003_adds_the_follow_up_and_booking_history_tables(url):
    """A database at 0002 with a written day: opened by this hub it gains
    history_followup_events and history_bookings (empty: the days written before have none
    until a rebuild), the rows there stay as they were, and a day's follow-ups and booking
    counts are written and read back through History."""
    from alembic import command

    from onewindow.hub.store.history import DayFacts

    engine = db.create_engine(url)
    config = db.alembic_config()
    with engine.connect() as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    assert not {"history_followup_events", "history_bookings"} & set(_columns(engine))
    rating = {"ticket": "20261123-A001", "day": "20261123", "score": 1, "window": 1,
              "clerk": "wang", "at": 10.0}
    with engine.begin() as conn:
        conn.execute(insert(schema.history_ratings), [rating])
    engine.dispose()
    assert db.revision_of(url) == "0002"

    opened = db.open_database(url)
    try:
        assert db.revision(opened) == db.HEAD
        assert _differences(opened) == []
        with opened.connect() as conn:
            assert [tuple(r) for r in conn.execute(select(schema.history_ratings))] == [
                tuple(rating.values())]
            for t in (schema.history_followup_events, schema.history_bookings):
                assert conn.execute(select(t)).all() == []
        hist = History(opened)
        summary = {"day": "20261124", "tickets": 0, "served": 0, "no_shows": 0, "waits": 0,
                   "wait_sum_min": 0.0, "wait_p90_min": None, "one_window": 0}
        closed = {"ticket": "20261123-A001", "action": "closed", "day": "20261124",
                  "at": 20.0, "window": 1, "clerk": "wang", "score": 1, "by": "sup",
                  "note": "已回访 / called back"}
        hist.write([DayFacts("20261124", summary, followups=[closed], bookings=[
            {"day": "20261124", "booked": 3, "cancelled": 1, "checked_in": 1, "late": 0,
             "no_show": 1}])])
        rows = hist.report_rows("20261124", "20261124")
        assert [tuple(r) for r in rows["followups"]] == [
            ("20261123-A001", "closed", 20.0, 1, "wang")]
        assert [tuple(r) for r in rows["bookings"]] == [("20261124", 3, 1, 1, 0, 1)]
    finally:
        opened.dispose()
