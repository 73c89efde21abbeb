"""Retention and `onewindow purge` (hub/store/retention.py, docs/privacy.md).

A journal with ~200 days of history is written by the real app (HubApp.handle at past
times, each step appended as the hub does); `onewindow purge` then runs as a process.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from onewindow.hub import config as hub_config
from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.runner import build_app
from onewindow.hub.store.files import FileStore
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.retention import Retention, RetentionError
from onewindow.hub.store.snapshot import SnapshotStore
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.testkit.testbed import HubProcess, default_devices, write_config

from .test_backup import pg_server  # noqa: F401 - a fixture
from .test_durability import wait_hub_ready
from .test_hub_mqtt import CENTRE

DAY = 86400.0
_names = itertools.count(1)
# Keyed-hash resident tokens, as a node computes them (node/card.py).
CLOSED_CASE = "a1" * 16  # a promised item long closed: token and materials go
OLD_VISIT = "b2" * 16  # one old visit: token and materials go
CAME_BACK = "c3" * 16  # an old visit and one 10 days ago: kept
OPEN_CASE = "d4" * 16  # a promised item still open: kept, materials kept


class Driver:
    """Device events into the real app at chosen times; each step journaled."""

    def __init__(self, app: HubApp, journal: Journal) -> None:
        self.app, self.journal = app, journal
        self.seqs: dict[str, int] = {}

    def send(self, dev: str, typ: str, at: float, **fields) -> dict:
        self.seqs[dev] = self.seqs.get(dev, 0) + 1
        payload = proto.encode("evt", proto.event(dev, self.seqs[dev], typ, **fields))
        step = self.app.handle(proto.device_topic(CENTRE, dev, "evt"), payload, at)
        self.journal.append(step.records)
        [reply] = [json.loads(p.payload) for p in step.publishes
                   if p.topic in (proto.device_topic(CENTRE, dev, "res"),
                                  proto.device_topic(CENTRE, dev, "err"))]
        assert "code" not in reply, reply
        return reply

    def serve(self, at: float, item: str, resident: str | None = None) -> str:
        """A ticket taken at a node with the resident's card, called, served, completed;
        its id."""
        fields = {"resident": resident} if resident else {}
        number = self.send("node-1", "take", at, item=item, **fields)["ticket"]
        self.send("kp-1", "call", at + 60)
        self.send("kp-1", "start", at + 90)
        self.send("kp-1", "complete", at + 400)
        return self.app.centre.local_date(at).strftime("%Y%m%d") + "-" + number

    def operate(self, cmd: c.Command, at: float) -> None:
        self.journal.append(self.app.operate(cmd, at).records)


def retention_centre(tmp_path: Path, catalog: Path,
                     database_url: str | None) -> tuple[Path, Driver]:
    """A centre of two windows and a node that keeps residents' tokens 180 days and
    materials 30 (its files in tmp_path/files), its journal on `database_url` (None: SQLite
    in tmp_path): its config file, and a Driver of the real app on that journal."""
    devices = [*default_devices(2), {"id": "node-1", "role": "node", "window": 1}]
    cfg_path = write_config(tmp_path / "centre.toml", CENTRE, 1, tmp_path / "hub.db",
                            windows=2, devices=devices, catalog=catalog,
                            database_url=database_url)
    text = cfg_path.read_text(encoding="utf-8")
    cfg_path.write_text(text.replace("[store]\n", f'[store]\nfiles_dir = "{tmp_path / "files"}"'
                                     "\n", 1) + "\n[retention]\nresident_days = 180\n"
                        "materials_days = 30\n", encoding="utf-8")
    cfg = hub_config.load(cfg_path)
    j = Journal(cfg.database_url)
    return cfg_path, Driver(build_app(cfg, j), j)


@pytest.fixture(params=["sqlite", "postgresql"])
def history(request, tmp_path, small_catalog_file):
    """(config path, ticket ids by who) of a centre with ~200 days of history, on SQLite
    and on a real PostgreSQL."""
    url = None
    if request.param == "postgresql":
        from .test_backup import _pg_database

        url = _pg_database(request.getfixturevalue("pg_server"), f"purge{next(_names)}")
    cfg_path, d = retention_centre(tmp_path, small_catalog_file, url)
    app, j = d.app, d.journal
    now = time.time()
    old = now - 200 * DAY  # a working morning's hour does not matter: days are compared
    ids = {}
    d.send("kp-1", "open", old)
    ids["closed_case"] = d.serve(old + 100, "SOC-2", CLOSED_CASE)  # promised
    ids["old_visit"] = d.serve(old + 1000, "SOC-1", OLD_VISIT)
    ids["came_back_old"] = d.serve(old + 2000, "SOC-1", CAME_BACK)
    ids["open_case"] = d.serve(old + 3000, "CIV-1", OPEN_CASE)  # promised, stays open
    d.send("node-1", "card", old + 3500, window=1, resident=OLD_VISIT)
    d.operate(c.CaseUpdate(ids["closed_case"], "closed"), old + DAY)
    # Closed today: the case is still in memory, so this snapshot holds its token (the next
    # day's close archives it to history_cases, out of later snapshots).
    SnapshotStore(j.engine).save(app.snapshot())
    recent = now - 10 * DAY
    ids["came_back_new"] = d.serve(recent + 100, "MED-1", CAME_BACK)
    ids["recent_plain"] = d.serve(recent + 500, "MED-1")
    files = FileStore(hub_config.load(cfg_path).files_dir)
    for who, tid in ids.items():
        files.save(tid, f"photo of {who}".encode(), "jpg", "image/jpeg", "page", "node-1")
    SnapshotStore(j.engine).save(app.snapshot())  # the open case and its token
    j.close()
    return cfg_path, ids


def stored_bytes(url: str) -> bytes:
    """What the database holds on disk: SQLite's files; PostgreSQL's journal table file
    (after a checkpoint). PostgreSQL's WAL is left out: its old row images go only as its
    segments are recycled (docs/privacy.md)."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    from onewindow.hub.store.db import create_engine

    engine = create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")
            data = conn.exec_driver_sql("SHOW data_directory").scalar()
            rel = conn.exec_driver_sql("SELECT pg_relation_filepath('journal')").scalar()
    finally:
        engine.dispose()
    assert data is not None and rel is not None
    table = Path(data, rel)
    return b"".join(p.read_bytes() for p in table.parent.glob(table.name + "*"))


def onewindow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onewindow.hub.cli", *args],
                          capture_output=True, text=True, timeout=120)


def rows(cfg) -> list:
    j = Journal(cfg.database_url)
    try:
        return list(j.read())
    finally:
        j.close()


def test_purge_removes_what_is_past_retention_journals_it_and_replay_still_works(history):
    cfg_path, ids = history
    cfg = hub_config.load(cfg_path)
    before = rows(cfg)
    files = FileStore(cfg.files_dir)

    dry = onewindow("purge", "--config", str(cfg_path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert ("2 tokens in 2 tickets, 0 booking records, 0 pick-ups and linked cases, and 1 "
            "card look-ups") in dry.stdout, dry.stdout
    assert "documents" in dry.stdout and ": 3 (" in dry.stdout, dry.stdout
    assert rows(cfg) == before, "a dry run changed the journal"
    assert all(files.list(t) for t in ids.values()), "a dry run deleted documents"

    done = onewindow("purge", "--config", str(cfg_path))
    assert done.returncode == 0, done.stderr
    after = rows(cfg)
    assert len(after) == len(before) + 1
    record = after[-1]
    assert record.op == "purge" and record.dev is None
    assert (record.body["take_records"], record.body["card_records"], record.body["tokens"],
            record.body["documents"], record.body["snapshots"]) == (2, 1, 2, 3, 1)
    assert record.body["retention"] == {"resident_days": 180, "materials_days": 30}

    # The tokens past retention are gone from the journal, the snapshot, and the file.
    gone, kept = {CLOSED_CASE, OLD_VISIT}, {CAME_BACK, OPEN_CASE}
    raw = stored_bytes(cfg.database_url)
    for token in gone:
        assert token.encode() not in raw, "a purged token is still readable in the database"
    for token in kept:
        assert token.encode() in raw
    changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
    assert len(changed) == 3
    for a, b in changed:  # only the token changed, and the record says by which purge
        assert {k: v for k, v in a.body.items() if k != "resident"} == \
            {k: v for k, v in b.body.items() if k not in ("resident", "purged")}
        assert b.body["purged"] == record.pos and (a.pos, a.ts) == (b.pos, b.ts)

    # Documents: the old plain visit's and the long-closed case's go; the open case's, the
    # old visit of a resident who came back (its day is past 30 days: it goes too) ...
    assert files.list(ids["closed_case"]) == [] and files.list(ids["old_visit"]) == []
    assert files.list(ids["came_back_old"]) == []
    assert files.list(ids["open_case"]) and files.list(ids["recent_plain"])
    assert files.list(ids["came_back_new"])

    # Replay of the purged journal: from the rewritten snapshot and from the first record,
    # the same state; the open case still knows its resident, the closed one no longer.
    j = Journal(cfg.database_url)
    stored, early = list(SnapshotStore(j.engine).candidates())
    text = json.dumps(stored)
    assert not any(t in text for t in gone) and all(t in text for t in kept)
    assert not any(t in json.dumps(early) for t in gone)  # the one rewritten
    from_snapshot = build_app(cfg, j)
    assert from_snapshot.snapshot_pos == stored["pos"] > 0  # the rewritten snapshot is used
    with j.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM snapshot")
    full = build_app(cfg, j)
    assert from_snapshot.centre.to_dict() == full.centre.to_dict()
    assert full.pos == record.pos
    cases = full.centre.cases
    assert cases[ids["open_case"]].resident == OPEN_CASE
    assert ids["closed_case"] not in cases  # archived: its row lost the token too
    assert full.archived_case(ids["closed_case"])["resident"] is None
    j.close()

    # Again: nothing more to remove; the run is still on record.
    again = onewindow("purge", "--config", str(cfg_path))
    assert again.returncode == 0, again.stderr
    last = rows(cfg)[-1]
    assert last.op == "purge" and last.body["tokens"] == last.body["documents"] == 0


async def test_purge_refuses_while_the_hub_runs(tmp_path, mosquitto, small_catalog_file):
    cfg = write_config(tmp_path / "centre.toml", CENTRE, mosquitto.port, tmp_path / "hub.db",
                       catalog=small_catalog_file)
    hub = HubProcess(cfg, tmp_path / "hub.log").start()
    try:
        await wait_hub_ready(mosquitto.port, timeout=30)
        n = len(rows(hub_config.load(cfg)))
        out = onewindow("purge", "--config", str(cfg))
        assert out.returncode == 1 and "hub is running" in out.stderr, out.stderr
        assert len(rows(hub_config.load(cfg))) == n
    finally:
        assert hub.stop() == 0, (tmp_path / "hub.log").read_text()


@pytest.mark.parametrize("table, message", [
    ({"resident_days": 0}, "resident_days"),
    ({"materials_days": "30"}, "materials_days"),
    ({"photos_days": 3}, "unknown key"),
])
def test_bad_retention_settings_are_configuration_errors(table, message):
    with pytest.raises(RetentionError, match=message):
        Retention.from_table(table)
    with pytest.raises(hub_config.ConfigError, match=message):
        hub_config.from_dict({"centre": {"id": "c"}, "windows": [{"number": 1}],
                              "retention": table})
