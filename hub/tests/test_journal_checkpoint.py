"""The journal's WAL checkpoints run on a thread of their own, not inside a commit on the
event path (hub/store/checkpoint.py), and the log stays bounded."""

import contextlib
import sqlite3
import threading
import time

from onewindow.hub.app.records import Record
from onewindow.hub.store import checkpoint
from onewindow.hub.store.journal import Journal

BODY = {"op": "call", "window": 3, "ticket": "20261206-A017", "clerk": "k3"}


def _wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_checkpoints_run_off_the_commit_and_keep_up(tmp_path):
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    ckpt = j._checkpointer
    assert ckpt is not None
    ckpt.every = 50
    for pos in range(1, 151):
        j.append([Record(pos, 1.0, "kp-3", pos, BODY)])
    # the journal's own connection checkpoints only as a backstop
    assert j._raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == \
        checkpoint.BACKSTOP_PAGES
    # What the thread copied back is in the database file itself: read without the log
    # (immutable), it holds every record once a checkpoint ran after the last commit. The
    # journal's connection never checkpoints here (150 commits are far below its backstop).
    # Several requests while one runs make one more run, not one each: count the rows,
    # not the runs.
    uri = f"file:{tmp_path / 'hub.db'}?immutable=1"

    def in_file() -> int:
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
        except sqlite3.DatabaseError:  # read while a checkpoint writes it: not yet whole
            return -1

    # The thread counts a checkpoint once SQLite returns from it, a moment after the file
    # is whole (the CI run at 340a42c read the file in that moment): wait for both.
    _wait_for(lambda: in_file() == 150 and ckpt.done >= 1)
    worker = ckpt._thread
    assert worker is not None and worker is not threading.current_thread()
    assert [r.pos for r in j.read()] == list(range(1, 151))
    j.close()
    assert not worker.is_alive()


def test_no_thread_for_a_short_lived_journal_or_memory(tmp_path):
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    j.append([Record(1, 1.0, None, None, BODY)])
    assert j._checkpointer is not None and j._checkpointer._thread is None
    j.close()
    assert Journal("sqlite://")._checkpointer is None
