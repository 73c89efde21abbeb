"""Checkpoints: a snapshot of the hub's whole state (hub/store/snapshot.py), written after a
committed batch when a day closed or enough records or time went by since the last one, so
that a start-up replays only the journal after it (hub/startup.py). A snapshot that fails
is logged and skipped (the journal holds everything; start-up just replays more): it never
stops the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from .app import HubApp
from .store.snapshot import SnapshotStore

log = logging.getLogger("onewindow.hub")


class Checkpoints:
    def __init__(self, app: HubApp, clock: Callable[[], float],
                 storage_ok: asyncio.Event) -> None:
        # The runner's app: a storage recovery rebuilds it in place, so it stays this one.
        self.app = app
        self.clock = clock
        self.storage_ok = storage_ok  # the runner's: no snapshot while storage is away
        self.store: SnapshotStore | None = None  # serve() sets it; None: no snapshots
        self.every_records = 5000
        self.every_seconds = 600.0
        self._day = app.centre.day
        self._at = clock()
        self._task: asyncio.Task[None] | None = None

    def after_commit(self) -> None:
        """After a committed batch, when a day closed or enough records or time went by
        since the last one: start a snapshot of the whole state (`_snapshot`)."""
        app, task = self.app, self._task
        if (self.store is None or app.damaged or app.pos <= app.snapshot_pos
                or (task is not None and not task.done())):
            return
        now = self.clock()
        if (app.centre.day == self._day
                and app.pos - app.snapshot_pos < self.every_records
                and now - self._at < self.every_seconds):
            return
        self._at = now  # the next one an interval from now, whether this one works
        self._task = asyncio.create_task(self._snapshot(), name="hub-snapshot")

    async def _snapshot(self) -> None:
        """The state is taken between batches (the processor yields to other tasks only
        there, when every record it handled is committed, so it is exactly the journal up
        to `app.pos`; `save` refuses a position the journal lacks anyway), after the
        batch's replies went out. Only building it holds the loop; JSON, compression and
        the write run in a thread, while the next batches are handled."""
        await asyncio.sleep(0)  # the batch's publishes go first
        app, store = self.app, self.store
        if store is None or app.damaged or not self.storage_ok.is_set():
            return
        started = time.perf_counter()
        state = app.snapshot(case_columns=True)  # written as rows, in pieces
        built = time.perf_counter()
        try:
            saved = await asyncio.to_thread(store.save, state)
        except Exception as e:
            log.warning("snapshot at position %d failed (%s); the journal has it all",
                        state["pos"], e)
            return
        app.snapshot_pos = max(app.snapshot_pos, saved.pos)
        self._day = state["centre"]["day"]
        log.info("snapshot at position %d: %d bytes (%d JSON); %.0f ms in the loop, %.0f ms "
                 "in a thread", saved.pos, saved.size, saved.raw, (built - started) * 1000,
                 (time.perf_counter() - built) * 1000)
        # Batches committed meanwhile found this one running and skipped their turn.
        self._task = None
        self.after_commit()

    async def finish(self) -> None:
        """At a stop: a snapshot being written finishes (its thread would anyway), and one
        it found due after it too."""
        while self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await self._task
