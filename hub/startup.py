"""Start-up: the hub's state from the latest good snapshot plus the journal after it.

A snapshot that fails to load or whose tail does not replay is passed over for the one
before it, and in the end for a full replay of the journal: a bad snapshot costs time,
never state.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

from . import heap
from .app import HubApp
from .store.journal import Journal, StorageUnavailable
from .store.snapshot import SnapshotStore

log = logging.getLogger("onewindow.hub")


def rebuild(make: Callable[[], HubApp], journal: Journal, store: SnapshotStore) -> HubApp:
    """`make()` gives a fresh app (nothing replayed); each attempt starts from a new one,
    so a failed one leaves nothing behind. StorageUnavailable goes to the caller.

    The cyclic collector is off meanwhile: loading makes millions of objects that all
    live on, and it would walk them again and again (a third of a year's load time).
    What loading freed in the C heap then goes back to the OS (hub/heap.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(make, journal, store)
    finally:
        if enabled:
            gc.enable()
        heap.trim()  # the decoded snapshot and the tail's records are gone by now


def _rebuild(make: Callable[[], HubApp], journal: Journal, store: SnapshotStore) -> HubApp:
    started = time.perf_counter()
    for snap in store.candidates():
        app = make()
        pos = snap.get("pos")
        try:
            app.restore(snap)
            restored = app.pos  # the snapshot's position
            # The decoded snapshot goes before the tail is replayed, so that the tail's
            # objects take its freed place instead of new memory (a year's: ~11 MB of
            # objects; kept, the day it replays spread over new arenas and held them).
            del snap
            loaded = time.perf_counter()
            n = app.replay(journal.read(app.pos), store.last_by_device(app.pos))
        except StorageUnavailable:
            raise
        except Exception:
            log.exception("snapshot at journal position %s not used: it does not restore "
                          "or its tail does not replay; trying an older one", pos)
            continue
        app.snapshot_pos = restored
        log.info("state from the snapshot at position %d (%.2f s) and %d journal records "
                 "after it (%.2f s); next position %d", app.snapshot_pos,
                 loaded - started, n, time.perf_counter() - loaded, app.pos + 1)
        return app
    app = make()
    n = app.replay(journal.read(), store.last_by_device(0))
    log.info("no usable snapshot: replayed all %d journal records in %.2f s; next position "
             "%d", n, time.perf_counter() - started, app.pos + 1)
    return app
