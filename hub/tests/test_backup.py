"""Online backup and restore (hub/store/backup.py, `onewindow backup` / `restore`).

A real hub process on a real Mosquitto takes traffic; `onewindow backup` runs while it does;
the archive is restored into a fresh database (SQLite, and a real PostgreSQL) and a fresh
hub process started on it serves the same state: the same core state as the original's
journal up to the backup, the same next number, and a device's retry of its last seq gets
the very reply it got from the original hub.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from onewindow.hub import config as hub_config
from onewindow.hub.runner import build_app
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.backup import BackupError, backup, restore
from onewindow.hub.store.files import FileStore
from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import DeviceError, SimDevice
from onewindow.tools.testkit.testbed import HubProcess, Postgres, write_config

from .test_durability import wait_hub_ready
from .test_hub_mqtt import CENTRE

WINDOWS = 2
ITEMS = ["SOC-1", "MED-1", "CIV-1"]
_db_names = itertools.count(1)


@pytest.fixture(scope="module")
def pg_server():
    with Postgres() as pg:
        yield pg


def _pg_database(server: Postgres, name: str) -> str:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request, tmp_path) -> tuple[str, str]:
    """(the running hub's database, the fresh one to restore into)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'restored.db'}"
    server = request.getfixturevalue("pg_server")
    n = next(_db_names)
    return _pg_database(server, f"hub{n}"), _pg_database(server, f"restored{n}")


def centre_toml(path: Path, port: int, url: str, files: Path, catalog: Path) -> Path:
    write_config(path, CENTRE, port, path.with_suffix(".db"), windows=WINDOWS,
                 catalog=catalog, database_url=url)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[store]\n", f'[store]\nfiles_dir = "{files}"\n', 1),
                    encoding="utf-8")
    return path


def onewindow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onewindow.hub.cli", *args],
                          capture_output=True, text=True, timeout=120)


def local_day(utc_offset_minutes: int = 480) -> str:
    return time.strftime("%Y%m%d", time.gmtime(time.time() + utc_offset_minutes * 60))


def local_day_of(ts: float, utc_offset_minutes: int = 480) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts + utc_offset_minutes * 60))


async def test_backup_while_running_restores_into_a_fresh_hub_serving_the_same_state(
        tmp_path, mosquitto, small_catalog_file, urls):
    src_url, dst_url = urls
    src_cfg = centre_toml(tmp_path / "centre.toml", mosquitto.port, src_url,
                          tmp_path / "files", small_catalog_file)
    dst_cfg = centre_toml(tmp_path / "restored.toml", mosquitto.port, dst_url,
                          tmp_path / "restored-files", small_catalog_file)
    hub = HubProcess(src_cfg, tmp_path / "hub.log").start()
    boot = await wait_hub_ready(mosquitto.port, timeout=30)

    rng = random.Random(14)
    sent: dict[tuple[str, int], tuple[str, dict]] = {}  # (dev, seq) -> (item, reply)
    acked: list[str] = []
    enough = {20: asyncio.Event(), 40: asyncio.Event()}
    stop = asyncio.Event()

    async def resident_flow(box: SimDevice) -> None:
        while not stop.is_set():
            item = rng.choice(ITEMS)
            res = await box.send("take", item=item, timeout=60, retry=0.5)
            sent[(box.dev, box.seq)] = (item, res)
            acked.append(res["ticket"])
            for n, ev in enough.items():
                if len(acked) >= n:
                    ev.set()

    async def clerk_flow(kp: SimDevice) -> None:
        await kp.send("open", timeout=60, retry=0.5)
        while not stop.is_set():
            try:
                await kp.send("call", timeout=60, retry=0.5)
            except DeviceError as e:
                assert e.code == "queue_empty", e.reply
            await asyncio.sleep(rng.uniform(0.05, 0.15))  # a clerk's pace, not a wait

    boxes = [SimDevice(CENTRE, f"box-{i}", "box", "127.0.0.1", mosquitto.port)
             for i in (1,)]
    kps = [SimDevice(CENTRE, f"kp-{n}", "keypad", "127.0.0.1", mosquitto.port, window=n)
           for n in range(1, WINDOWS + 1)]
    accounts = Accounts(src_url, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add("wang", "password-1", "clerk", "王芳", window=1, now=time.time())
    accounts.close()
    for d in boxes + kps:
        await d.__aenter__()
    flows = [asyncio.create_task(resident_flow(b)) for b in boxes]
    flows += [asyncio.create_task(clerk_flow(k)) for k in kps]
    try:
        await asyncio.wait_for(enough[20].wait(), 60)
        ticket_id = f"{local_day()}-{acked[0]}"
        photo = bytes(rng.randrange(256) for _ in range(5000))
        FileStore(tmp_path / "files").save(ticket_id, photo, "jpg", "image/jpeg", "page",
                                           "kp-1")
        # The backup runs while the hub keeps taking and calling.
        archive = tmp_path / "backups" / "centre.tar"
        before = len(acked)
        done = await asyncio.to_thread(onewindow, "backup", "--config", str(src_cfg),
                                       "--out", str(archive))
        during = len(acked) - before
        assert done.returncode == 0, done.stderr
        await asyncio.wait_for(enough[40].wait(), 60)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*flows, return_exceptions=True), 60)
        for d in boxes + kps:
            await d.__aexit__(None, None, None)
    assert hub.stop() == 0, (tmp_path / "hub.log").read_text()
    assert during > 0, "no traffic was handled while the backup ran"

    src = Journal(src_url)
    original = list(src.read())
    src.close()

    # Restore into the fresh database; it says what it restored.
    out = onewindow("restore", "--config", str(dst_cfg), "--from", str(archive))
    assert out.returncode == 0, out.stderr
    dst = Journal(dst_url)
    restored = list(dst.read())
    n = len(restored)
    assert 0 < n < len(original), "the backup is not of a moment while the hub ran"
    assert f"journal positions 1..{n} ({n} records)" in out.stdout, out.stdout
    days = {local_day_of(r.ts) for r in restored}  # one, unless the test ran over midnight
    assert f"{len(days)} days {min(days)}..{max(days)}" in out.stdout, out.stdout
    assert "documents 1" in out.stdout, out.stdout
    # A consistent moment: exactly the original journal's first n records.
    assert restored == original[:n]

    # A second restore into the now non-empty target is refused and changes nothing.
    again = onewindow("restore", "--config", str(dst_cfg), "--from", str(archive))
    assert again.returncode == 1 and "not empty" in again.stderr, again.stderr
    assert list(dst.read()) == restored

    # The documents and the staff accounts came along.
    files = FileStore(tmp_path / "restored-files")
    [entry] = files.list(ticket_id)
    assert files.path_of(entry).read_bytes() == photo
    accounts = Accounts(dst_url)
    assert [(a.username, a.display, a.window) for a in accounts.list()] == [("wang", "王芳", 1)]
    accounts.close()

    # The same state as the original hub had at the backup's last record: a hub built on
    # the original journal's first n records (a scratch SQLite copy) and one built on the
    # restored database hold equal cores and device seqs.
    scratch = Journal(f"sqlite:///{tmp_path / 'prefix.db'}")
    scratch.append(original[:n])
    cfg = hub_config.load(dst_cfg)
    expected = build_app(cfg, scratch)
    got = build_app(cfg, dst)
    assert got.centre.to_dict() == expected.centre.to_dict()
    assert got.pos == expected.pos == n
    seqs = {d: (x.last_seq, x.last_reply) for d, x in got.registry.devices.items()}
    assert seqs == {d: (x.last_seq, x.last_reply) for d, x in expected.registry.devices.items()}
    assert [t.number for t in got.centre.queue] == [t.number for t in expected.centre.queue]
    dst.close()

    # A fresh hub process on the restored database serves it.
    last_seq = expected.registry.devices["box-1"].last_seq
    item, reply = sent[("box-1", last_seq)]
    payload = proto.encode("evt", proto.event("box-1", last_seq + 1, "take", item="SOC-1"))
    expected_next = [json.loads(p.payload) for p in
                     expected.handle(proto.device_topic(CENTRE, "box-1", "evt"), payload,
                                     time.time()).publishes
                     if p.topic == proto.device_topic(CENTRE, "box-1", "res")]
    scratch.close()
    fresh = HubProcess(dst_cfg, tmp_path / "restored-hub.log").start()
    try:
        await wait_hub_ready(mosquitto.port, boot_not=boot, timeout=30)
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port,
                             seq=last_seq - 1) as box:
            # The device never got its last answer: it retries the same seq.
            assert await box.send("take", item=item) == reply
            # Its next press gets the number the original would have given then.
            nxt = await box.send("take", item="SOC-1")
        assert nxt["ticket"] == expected_next[0]["ticket"]
    finally:
        assert fresh.stop() == 0, (tmp_path / "restored-hub.log").read_text()


def test_restore_refuses_a_backup_of_another_kind_and_a_non_empty_files_dir(tmp_path):
    db = tmp_path / "a.db"
    j = Journal(f"sqlite:///{db}")
    j.close()
    archive = tmp_path / "a.tar"
    held = backup(f"sqlite:///{db}", tmp_path / "no-files", archive)
    assert held.records == 0 and held.kind == "sqlite"
    with pytest.raises(BackupError, match="postgresql"):
        restore(archive, "postgresql+psycopg://u@127.0.0.1:1/x", tmp_path / "f")
    (tmp_path / "busy-files").mkdir()
    (tmp_path / "busy-files" / "x").write_text("kept")
    target = tmp_path / "b.db"
    with pytest.raises(BackupError, match="not empty"):
        restore(archive, f"sqlite:///{target}", tmp_path / "busy-files")
    assert not target.exists() and (tmp_path / "busy-files" / "x").read_text() == "kept"
    # --force: the files directory that was there is moved aside, not deleted.
    done = restore(archive, f"sqlite:///{target}", tmp_path / "busy-files", force=True)
    assert done.moved_aside is not None and (done.moved_aside / "x").read_text() == "kept"
    assert target.exists() and not any((tmp_path / "busy-files").iterdir())
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(BackupError, match="not a OneWindow backup"):
        restore(bad, f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "c-files")


def test_backup_without_pg_dump_says_so(tmp_path, monkeypatch):
    """The client program missing: a clear error, not a traceback (no server needed: the
    program is looked for first)."""
    import onewindow.hub.store.backup as b

    monkeypatch.setattr(b.shutil, "which", lambda name: None)
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    with pytest.raises(BackupError, match="pg_dump not found"):
        b.backup("postgresql+psycopg://u@127.0.0.1:1/x", tmp_path / "files",
                 tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()
