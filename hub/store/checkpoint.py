"""WAL checkpoints off the event path.

SQLite copies its write-ahead log back into the database file (a checkpoint) inside the
commit that takes the log past `wal_autocheckpoint` pages: with the default 1,000 pages,
every ~900th single-record journal commit took 3.2-4.6 ms instead of 0.014 ms (measured,
5,000 appends), and on the hub that commit is a call waiting for its display. So the
journal's own connection checkpoints only as a backstop (BACKSTOP_PAGES), and this thread
runs a PASSIVE checkpoint on a connection of its own after every EVERY_COMMITS commits. A
passive checkpoint never waits for the writer, and the driver lets go of the GIL while
SQLite works, so the hub's loop goes on meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

EVERY_COMMITS = 200
# The journal connection's own limit, reached only if this thread falls far behind: the
# log never grows without bound (4 KB pages: ~40 MB).
BACKSTOP_PAGES = 10_000


class Checkpointer:
    def __init__(self, path: str, every: int = EVERY_COMMITS) -> None:
        self.path = path
        self.every = every
        self.done = 0  # checkpoints run, for tests and benchmarks
        self._since = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def committed(self, commits: int = 1) -> None:
        """Called by the writer after each commit; cheap unless a checkpoint is due."""
        self._since += commits
        if self._since >= self.every:
            self._since = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-checkpoint",
                                                daemon=True)
                self._thread.start()
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done += 1
                except sqlite3.Error as e:  # a full disk: the backstop still bounds the log
                    log.warning("WAL checkpoint failed: %s", e)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout=10)
            self._thread = None
