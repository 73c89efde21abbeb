"""Escalating help calls nobody answered (窗口吹哨 科室报到), off the hub's event path.

The core has no clock: it says which calls are due (`help_requests.due_escalations`) and
when the next one will be (`next_escalation`); this watcher, in the hub's loop, sleeps
until then and submits each due `HelpEscalate` through the hub's port like a staff action,
so the decision is journaled before the supervisors' pages show it, and a replay applies
the record instead of deciding again. It wakes early after every committed step that
touched a help call (a new call, an answer) and after a rebuild (the runner's `subscribe`,
as the notice dispatcher hears them), so the next deadline is always the current state's.
Not after the others: at ~300 calls a second each step woke it (a timed wait set up and
torn down, the requests scanned), ~13 us of every call (tools/bench/bench_hub.py, issue
14). A call answered between the check and the submit is refused by the core
(`already_answered`) and nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .core.help_requests import OPS, due_escalations, next_escalation
from .core.rejected import Rejected
from .store.journal import StorageUnavailable

if TYPE_CHECKING:
    from .app import HubApp, Step
    from .web.port import HubPort

log = logging.getLogger("onewindow.hub")

MAX_SLEEP_S = 30.0  # look again at least this often (a wall clock that jumped)
RETRY_S = 1.0  # after storage refused a submit


class HelpWatch:
    def __init__(self, app: HubApp, port: HubPort, after_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app  # the runner rebuilds it in place: always the current state
        self.port = port
        self.after_s = after_s
        self.clock = clock
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.escalated = 0  # escalations journaled by this process (tests, benchmark)

    def start(self) -> None:
        self.port.subscribe(self._on_step)
        self._task = asyncio.create_task(self._run(), name="hub-help-escalation")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_step(self, step: Step) -> None:
        # An empty step: the state was rebuilt from the journal.
        if not step.records or any(r.body.get("op") in OPS for r in step.records):
            self._kick.set()

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            wait = await self.escalate_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)

    async def escalate_due(self) -> float:
        """Journal every escalation due now; how long until the next one (at most
        MAX_SLEEP_S)."""
        for cmd in due_escalations(self.app.centre, self.after_s, self.clock()):
            if not self.port.storage_available():
                return RETRY_S
            try:
                await self.port.submit(cmd)
            except Rejected as e:  # answered meanwhile: nothing to escalate
                log.info("help call %d not escalated: %s", cmd.request, e.code)
                continue
            except StorageUnavailable:
                return RETRY_S
            except Exception:  # a bug here must not end the watch
                log.exception("help call %d: escalation failed", cmd.request)
                return RETRY_S
            self.escalated += 1
            log.info("help call %d unanswered for %.0f s: escalated to the supervisors",
                     cmd.request, self.after_s)
        nxt = next_escalation(self.app.centre, self.after_s)
        if nxt is None:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(0.0, nxt - self.clock()))
