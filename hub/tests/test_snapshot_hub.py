"""A real hub process (real Mosquitto) that restarts from a snapshot keeps its promises."""

import asyncio
import sqlite3
from pathlib import Path

from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.simdevice import SimDevice
from onewindow.tools.testkit.testbed import HubProcess, write_config

from .test_durability import wait_hub_ready
from .test_hub_mqtt import CENTRE


async def snapshot_covers_journal(db: Path, timeout: float = 20.0) -> int:
    """The journal's last position, once the newest snapshot is at it."""
    async with asyncio.timeout(timeout):
        while True:
            with sqlite3.connect(db) as con:
                journal = con.execute("SELECT max(pos) FROM journal").fetchone()[0]
                snap = con.execute("SELECT max(pos) FROM snapshot").fetchone()[0]
            if journal is not None and snap == journal:
                return journal
            await asyncio.sleep(0.02)  # another process's write: no event to wait on


async def test_a_hub_restarted_from_a_snapshot_answers_a_retry_as_before(
        tmp_path, mosquitto, small_catalog_file):
    cfg = write_config(tmp_path / "centre.toml", CENTRE, mosquitto.port, tmp_path / "hub.db",
                       catalog=small_catalog_file)
    # A snapshot after every committed batch: the box's take below ends up inside one,
    # so its reply after the restart can only come from the snapshot, not from a replay.
    cfg.write_text(cfg.read_text().replace("[store]\n", "[store]\nsnapshot_records = 1\n", 1))
    log = tmp_path / "hub.log"
    hub = HubProcess(cfg, log).start()
    try:
        boot = await wait_hub_ready(mosquitto.port)
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port) as box, \
                SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", mosquitto.port,
                          window=1) as kp:
            await kp.send("open")
            taken = await box.send("take", item="SOC-1")
            printed = await box.next_command("print")
            take_seq = box.seq
            called = await kp.send("call")  # a later record of another device
            call_seq = kp.seq
        assert called["ticket"] == taken["ticket"]
        # Snapshots are written in a thread after the replies: the kill comes once one
        # covers the whole journal (the box's take is then inside it, not in a tail).
        last_pos = await snapshot_covers_journal(tmp_path / "hub.db")
        hub.kill()
        hub.start()
        await wait_hub_ready(mosquitto.port, boot_not=boot)
        text = log.read_text()
        assert f"state from the snapshot at position {last_pos} " in text, text

        # The same devices, rebooted with their seqs kept, retry their last events.
        take = proto.encode("evt", proto.event("box-1", take_seq, "take", item="SOC-1"))
        call = proto.encode("evt", proto.event("kp-1", call_seq, "call"))
        async with SimDevice(CENTRE, "box-1", "box", "127.0.0.1", mosquitto.port,
                             seq=take_seq) as box, \
                SimDevice(CENTRE, "kp-1", "keypad", "127.0.0.1", mosquitto.port,
                          window=1, seq=call_seq) as kp:
            assert await box.send_raw(take, take_seq) == taken
            assert await box.next_command("print") == printed
            assert await kp.send_raw(call, call_seq) == called
    finally:
        hub.stop()
    # Nothing was issued twice: one take in the journal.
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert sum(1 for r in journal.read() if r.op == "take") == 1
    finally:
        journal.close()
