"""`onewindow purge` and residents' bookings (hub/store/retention.py, docs/privacy.md).

Written from outside: a centre whose journal holds bookings (made, cancelled, checked in
by card), tickets and a day's close from ~200 days ago and from this week, written by the
real app as the hub writes it, on SQLite and on a real PostgreSQL. `onewindow purge` runs
as a process. Then: the database's bytes (SQLite's files with the WAL; PostgreSQL's journal,
snapshot and past days' tables) hold no token of a resident past retention and still hold
those within it; the hub restarted after the purge holds the state it held before, but for
the removed tokens; a start from the rewritten snapshot equals a full replay; a second
purge changes nothing; bad arguments are one line and a non-zero exit.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.core import booking as bk
from onewindow.hub.core import commands as c
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.snapshot import SnapshotStore
from onewindow.tools.testkit.testbed import write_config

from .test_backup import pg_server  # noqa: F401 - a fixture
from .test_hub_mqtt import CENTRE
from .test_retention import DAY, onewindow, retention_centre, rows

# Resident tokens (keyed hashes, as a node's card reader or the booking page makes them).
OLD_BOOKER = "e5" * 16  # booked and checked in by card 200 days ago: goes
OLD_CANCEL = "ph:" + "f6" * 14  # a phone booking 200 days ago, cancelled with its token: goes
CAME_BACK = "a7" * 16  # checked in by card 200 days ago, booked again for a coming day: kept
OLD_TAKE = "b8" * 16  # a ticket 200 days ago and a booking for a coming day: kept
RECENT = "c9" * 16  # booked and checked in by card 10 days ago: kept
GONE, KEPT = (OLD_BOOKER, OLD_CANCEL), (CAME_BACK, OLD_TAKE, RECENT)


def open_day(app: Any, around: float, forward: bool) -> dt.date:
    """The nearest date to `around` (on or after it, or on or before) with booking slots."""
    d = app.centre.calendar.local_date(around)
    for _ in range(30):
        if bk.day_slots(app.centre, d):
            return d
        d += dt.timedelta(days=1 if forward else -1)
    raise AssertionError("no open day within 30 days")


def slot(app: Any, d: dt.date, index: int = 2) -> tuple[str, float]:
    start = bk.day_slots(app.centre, d)[index]
    return bk.slot_name(app.centre, "soc", start), start


def codes(app: Any) -> dict[str, str]:
    return {b.resident: b.code for b in app.centre.bookings.values() if b.resident}


@pytest.fixture(params=["sqlite", "postgresql"])
def centre(request, tmp_path, small_catalog_file):
    """(config path) of a centre with bookings and tickets of ~200 days ago and of this
    week, on SQLite and PostgreSQL."""
    url = None
    if request.param == "postgresql":
        from .test_backup import _pg_database

        url = _pg_database(request.getfixturevalue("pg_server"),
                           f"purgebk{tmp_path.name[-12:].replace('-', '_').lower()}")
    cfg_path, d = retention_centre(tmp_path, small_catalog_file, url)
    app, j = d.app, d.journal
    now = time.time()

    def visit(day: dt.date, tokens: tuple[str, ...], cancel: str | None = None) -> None:
        """Bookings (one slot each) made the evening before `day`; each checked in by card
        in time and served; `cancel`'s booking cancelled with its token instead."""
        eve = slot(app, day)[1] - 14 * 3600
        for i, t in enumerate((*tokens, *((cancel,) if cancel else ()))):
            d.operate(c.Book("SOC-1", slot(app, day, 2 + i)[0], t), eve)
        if cancel:
            d.operate(c.CancelBooking(codes(app)[cancel], resident=cancel), eve + 60)
        for i, t in enumerate(tokens):
            start = slot(app, day, 2 + i)[1]
            reply = d.send("node-1", "checkin", start - 300, resident=t)
            assert reply.get("ticket"), reply
            d.send("kp-1", "call", start - 200)
            d.send("kp-1", "start", start - 190)
            d.send("kp-1", "complete", start - 100)

    old = open_day(app, now - 200 * DAY, forward=False)
    d.send("kp-1", "open", slot(app, old)[1] - 15 * 3600)  # the window stays open
    visit(old, (OLD_BOOKER, CAME_BACK), cancel=OLD_CANCEL)
    d.serve(slot(app, old, 8)[1], "MED-1", OLD_TAKE)
    SnapshotStore(j.engine).save(app.snapshot())  # the old day's bookings and tokens
    visit(open_day(app, now - 10 * DAY, forward=False), (RECENT,))  # closes the old day
    coming = open_day(app, now + 2 * DAY, forward=True)
    for t in (CAME_BACK, OLD_TAKE):  # bookings for a coming day, made now
        d.operate(c.Book("SOC-1", slot(app, coming)[0], t), now)
    SnapshotStore(j.engine).save(app.snapshot())
    j.close()
    return cfg_path


def stored_bytes(url: str) -> bytes:
    """What the database holds on disk: SQLite's files (with -wal and -shm); PostgreSQL's
    files of the tables that may hold a token (after a checkpoint). PostgreSQL's WAL is
    left out: old row images go only as its segments are recycled (docs/privacy.md)."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    from onewindow.hub.store.db import create_engine

    engine = create_engine(url)
    out = b""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")
            data = conn.exec_driver_sql("SHOW data_directory").scalar()
            for table in ("journal", "snapshot", "history_tickets", "history_cases"):
                rel = conn.exec_driver_sql(f"SELECT pg_relation_filepath('{table}')").scalar()
                assert data is not None and rel is not None
                path = Path(data, rel)
                out += b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
                toast = conn.exec_driver_sql(
                    "SELECT pg_relation_filepath(reltoastrelid) FROM pg_class "
                    f"WHERE relname = '{table}' AND reltoastrelid <> 0").scalar()
                if toast:
                    tp = Path(data, toast)
                    out += b"".join(p.read_bytes() for p in tp.parent.glob(tp.name + "*"))
    finally:
        engine.dispose()
    return out


def state(cfg: Any) -> tuple[dict[str, Any], int]:
    """The hub's state as a restart builds it (latest snapshot and the journal after it),
    and the snapshot's position."""
    j = Journal(cfg.database_url)
    try:
        app = build_app(cfg, j)
        return app.centre.to_dict(), app.snapshot_pos
    finally:
        j.close()


def without(value: Any, tokens: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return None if value in tokens else value
    if isinstance(value, list):
        return [without(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: without(v, tokens) for k, v in value.items()}
    return value


def test_purge_removes_bookings_and_check_ins_past_retention_and_a_restart_agrees(centre):
    cfg = hub_config.load(centre)
    raw = stored_bytes(cfg.database_url)
    for token in (*GONE, *KEPT):  # the journal, the snapshots and the past days' tables
        assert token.encode() in raw
    before, _ = state(cfg)
    journal_before = rows(cfg)

    done = onewindow("purge", "--config", str(centre))
    assert done.returncode == 0, done.stderr
    after = rows(cfg)
    record = after[-1]
    assert record.op == "purge" and len(after) == len(journal_before) + 1
    # OLD_BOOKER: a book and a check-in record; OLD_CANCEL: a book and a cancel record
    assert (record.body["tokens"], record.body["booking_records"]) == (2, 4), record.body

    raw = stored_bytes(cfg.database_url)
    for token in GONE:
        assert token.encode() not in raw, f"{token} is still readable in the database"
    for token in KEPT:
        assert token.encode() in raw, f"{token} is within retention but was removed"

    # Only the gone residents' records changed, each marked by the purge.
    changed = [(a, b) for a, b in zip(journal_before, after, strict=False) if a != b]
    assert {a.body["op"] for a, _ in changed} == {"book", "cancel_booking", "checkin"}
    assert all(b.body["purged"] == record.pos for _, b in changed)
    assert all(any(t in json.dumps(a.body) for t in GONE) for a, _ in changed)

    # A restart after the purge: the state before it, less the removed tokens.
    restarted, snap_pos = state(cfg)
    assert snap_pos > 0  # the rewritten snapshot was used
    assert restarted == without(before, GONE)
    # ... and a full replay of the purged journal gives the same.
    j = Journal(cfg.database_url)
    with j.engine.begin() as conn:
        saved = conn.exec_driver_sql("SELECT pos, journal_ts, day, version, codec, sha256, "
                                     "data FROM snapshot").all()
        conn.exec_driver_sql("DELETE FROM snapshot")
    j.close()
    replayed, snap_pos = state(cfg)
    assert snap_pos == 0 and replayed == restarted
    held = {b["resident"] for b in replayed["bookings"].values()}
    assert {CAME_BACK, OLD_TAKE} <= held  # the coming day's bookings keep theirs

    # Again (snapshots back as they were): nothing more to remove, nothing else changes.
    j = Journal(cfg.database_url)
    with j.engine.begin() as conn:
        for row in saved:
            conn.exec_driver_sql("INSERT INTO snapshot (pos, journal_ts, day, version, codec, "
                                 "sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
                                 if j.engine.dialect.name == "sqlite" else
                                 "INSERT INTO snapshot (pos, journal_ts, day, version, codec, "
                                 "sha256, data) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                 tuple(row))
    j.close()
    again = onewindow("purge", "--config", str(centre))
    assert again.returncode == 0, again.stderr
    twice = rows(cfg)
    assert twice[:-1] == after
    assert twice[-1].op == "purge"
    assert (twice[-1].body["tokens"], twice[-1].body["booking_records"],
            twice[-1].body["take_records"], twice[-1].body["snapshots"]) == (0, 0, 0, 0)
    assert state(cfg)[0] == restarted


@pytest.mark.parametrize("args, says", [
    ((), "--config"),
    (("--config", "/nonexistent/centre.toml"), "centre.toml"),
    (("--config", "{cfg}", "--resident-days", "3"), "--resident-days"),
])
def test_bad_arguments_are_one_line_and_change_nothing(args, says, tmp_path,
                                                       small_catalog_file):
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, 1, tmp_path / "hub.db",
                            catalog=small_catalog_file)
    out = onewindow("purge", *(a.replace("{cfg}", str(cfg_path)) for a in args))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr
    assert not (tmp_path / "hub.db").exists()


def test_bad_retention_in_the_configuration_is_one_line(tmp_path, small_catalog_file):
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, 1, tmp_path / "hub.db",
                            catalog=small_catalog_file)
    cfg_path.write_text(cfg_path.read_text(encoding="utf-8")
                        + "\n[retention]\nresident_days = 0\n", encoding="utf-8")
    out = onewindow("purge", "--config", str(cfg_path))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "resident_days" in lines[0], out.stderr
    assert not (tmp_path / "hub.db").exists()


def test_a_card_pick_up_loses_the_token_with_its_case_and_the_journal_still_replays(tmp_path):
    """A case picked up by card 200 days ago (the `pickup` record names the card's token):
    its token goes from the take, the pick-up and the snapshot, and the purged journal
    replays (the pick-up is accepted without a token when its case has none either)."""
    from onewindow.hub.app import HubApp
    from onewindow.hub.core import pickup
    from onewindow.hub.core.centre import Centre
    from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
    from onewindow.hub.devices import Registry
    from onewindow.hub.store import retention

    from .test_pickup_core import catalog

    def fresh() -> HubApp:
        return HubApp(Centre(catalog(), CentreConfig(
            "t", (WindowSpec(1, "comprehensive"), WindowSpec(7, "pickup")),
            pickup_item="PICK")), Registry([]), "b1")

    now = dt.datetime(2027, 6, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    old, card, other = now - 200 * DAY, "1a" * 16, "2b" * 16
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    app = fresh()

    def op(cmd: c.Command, at: float) -> None:
        j.append(app.operate(cmd, at).records)

    def accept(resident: str, at: float) -> str:
        op(c.TakeTicket("SOC-2", resident=resident), at)
        tid = next(reversed(app.centre.tickets.values())).id
        op(c.CallNext(1), at + 10)
        op(c.Complete(1), at + 300)
        return tid

    op(c.OpenWindow(1, "wang"), old)
    op(c.OpenWindow(7, "zhao"), old)
    case = accept(card, old + 100)
    op(c.CaseUpdate(case, "approved", by="li"), old + 1000)
    op(pickup.PickupTicket((case,), "PICK", "card", resident=card), old + 2000)
    op(c.CallNext(7), old + 2010)
    op(c.Complete(7), old + 2100)
    op(c.CaseUpdate(case, "handed_over", by="card"), old + 2110)
    handed = app.centre.cases[case]  # closed by its hand-over: no `closed` record
    SnapshotStore(j.engine).save(app.snapshot())  # the closed case still in memory
    accept(other, now - 10 * DAY)  # another day: the closed case left memory
    SnapshotStore(j.engine).save(app.snapshot())
    from onewindow.hub.store.files import FileStore

    FileStore(tmp_path / "files").save(case, b"photo of the applicant's materials", "jpg",
                                       "image/jpeg", "page", "node-1")

    # The case as the history table would give it back (archived at the day's close).
    p = retention.plan(j, [*app.centre.cases.values(), handed], tmp_path / "files",
                       retention.Retention(), now, state=app.centre)
    assert p.token_set == {card} and p.case_records == 1
    assert p.documents == 1  # 200 days after its hand-over: its materials go too
    retention.purge(j, p, retention.Retention(), now)
    text = "".join(json.dumps(r.body) for r in j.read()) + "".join(
        json.dumps(s) for s in SnapshotStore(j.engine).candidates())
    assert card not in text and other in text
    [pick] = [r.body for r in j.read() if r.body["op"] == "pickup"]
    assert pick["resident"] is None and pick["by"] == "card" and pick["purged"]
    # each rewritten snapshot is what the purged journal replays to, up to its position
    snaps = list(SnapshotStore(j.engine).candidates())
    assert len(snaps) == 2
    for snap in snaps:
        restored, replayed = fresh(), fresh()
        restored.restore(snap)
        replayed.replay([r for r in j.read() if r.pos <= snap["pos"]])
        assert restored.centre.to_dict() == replayed.centre.to_dict()
    j.close()


def test_a_case_from_another_centre_loses_the_token_it_arrived_with(tmp_path):
    """At centre C, a case accepted at A, approved at B and picked up at C by card 200 days
    ago: every `city_arrive` record (the case's fields, token included) and the card
    pick-up lose the token; the purged journal replays to each rewritten snapshot."""
    from onewindow.hub.app import HubApp
    from onewindow.hub.core import city
    from onewindow.hub.core.catalog import Catalog
    from onewindow.hub.core.centre import Centre
    from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
    from onewindow.hub.core.pickup import PickupTicket
    from onewindow.hub.devices import Registry
    from onewindow.hub.store import retention

    from .test_city_core import Node, accept, catalog_data

    def fresh() -> HubApp:
        return HubApp(Centre(Catalog.from_dict(catalog_data()),
                             CentreConfig("c", (WindowSpec(1, "comprehensive"),))),
                      Registry([]), "b1")

    tz = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime(2027, 6, 1, 10, 0, tzinfo=tz).timestamp()
    old = dt.datetime(2026, 11, 9, 9, 0, tzinfo=tz).timestamp()  # 204 days before, a Monday
    token = "r" * 32  # test_city_core's card
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    app = fresh()

    def at_c(cmd: c.Command, t: float) -> None:
        j.append(app.operate(cmd, t).records)

    def to_c(src: Node, key: str, t: float) -> None:
        msg = city.outgoing(src.core, key)
        assert msg is not None
        at_c(city.arrival(json.loads(json.dumps(msg))), t)

    a, b = Node("a"), Node("b")
    case = accept(a, old)
    key = f"a/{case}"
    a.do(city.CityRoute(case, "b", "c"), old + 70)
    b.do(city.arrival(json.loads(json.dumps(city.outgoing(a.core, key)))), old + 72)
    to_c(a, key, old + 72)
    local_b = b.core.city.links[key].local
    b.do(c.CaseUpdate(local_b, "approved", by="zhao"), old + 3600)
    to_c(b, key, old + 3601)
    local = app.centre.city.links[key].local
    at_c(c.OpenWindow(1, clerk="sun"), old + 7200)
    at_c(PickupTicket((local,), "SOC-1", "card", token), old + 7200)
    at_c(c.CallNext(1), old + 7201)
    at_c(c.CaseUpdate(local, "handed_over", by="card"), old + 7210)
    at_c(city.CitySent(key, 3), old + 7220)
    SnapshotStore(j.engine).save(app.snapshot())
    at_c(c.TakeTicket("SOC-1", resident="s" * 32), now - 10 * DAY)  # the case left memory
    SnapshotStore(j.engine).save(app.snapshot())
    assert token in "".join(json.dumps(r.body) for r in j.read() if r.body["op"]
                            == "city_arrive")

    p = retention.plan(j, app.centre.cases.values(), tmp_path / "files",
                       retention.Retention(), now, state=app.centre)
    assert p.token_set == {token} and p.case_records == 3  # two arrivals, the pick-up
    retention.purge(j, p, retention.Retention(), now)
    text = "".join(json.dumps(r.body) for r in j.read()) + "".join(
        json.dumps(s) for s in SnapshotStore(j.engine).candidates())
    assert token not in text and "s" * 32 in text
    for snap in SnapshotStore(j.engine).candidates():
        restored, replayed = fresh(), fresh()
        restored.restore(snap)
        replayed.replay([r for r in j.read() if r.pos <= snap["pos"]])
        assert restored.centre.to_dict() == replayed.centre.to_dict()
    j.close()
