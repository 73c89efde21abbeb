"""A value read from the past days' tables once a day, in a worker thread.

The web runs in the hub's own event loop (hub/runner.py): a read of weeks of history
(hundreds of milliseconds with a year of tables: docs/benchmarks.md, bench_history) must not
stall calls and takes. `DailyRead.get(today)` answers at once with what it has (the
previous day's value, or `None` before the first read has finished) and, when `today` has
not been read yet, starts the read in a thread; the next ask after it finished gets it.
A failed read (storage away) is logged and tried again a minute later.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("onewindow.hub")
T = TypeVar("T")
RETRY_S = 60.0


class DailyRead(Generic[T]):
    def __init__(self, read: Callable[[dt.date], T], what: str,
                 on_read: Callable[[], None] | None = None) -> None:
        """`on_read`: called in the worker thread once a new value is in place."""
        self._read = read
        self._what = what
        self._on_read = on_read
        self._lock = threading.Lock()
        self._value: T | None = None
        self._day: dt.date | None = None
        self._thread: threading.Thread | None = None
        self._failed_at = -RETRY_S
        self.generation = 0  # counts the values read: a cache built on one can tell

    def get(self, today: dt.date) -> T | None:
        with self._lock:
            due = (self._day != today and self._thread is None
                   and time.monotonic() - self._failed_at >= RETRY_S)
            if due:
                self._thread = threading.Thread(target=self._run, args=(today,),
                                                name=f"ow-daily-{self._what}", daemon=True)
                self._thread.start()
            return self._value

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for a read under way (tests; a tool that wants the value now)."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _run(self, today: dt.date) -> None:
        try:
            value = self._read(today)
        except Exception as e:  # storage away: the pages go on with what they have
            log.warning("%s not read from the past days' tables: %s", self._what, e)
            with self._lock:
                self._failed_at, self._thread = time.monotonic(), None
            return
        with self._lock:
            self._value, self._day, self._thread = value, today, None
            self.generation += 1
        if self._on_read is not None:
            self._on_read()
