"""The C heap under the hub (glibc malloc): what loading freed goes back to the OS.

Why (issue 14, measured in process on a year's journal): glibc gives a free chunk back to
the OS only from the top of its heap, and only beyond a threshold that grows with the
biggest mmapped buffer freed so far (the decompressed snapshot, ~4.4 MB). What a start-up
frees below the heap's top (the JSON decoder's lists, dict tables, SQLite rows) stays
resident: ~1.5 MiB of a year's hub, until the day's close reuses it. `malloc_trim` returns
every free page of every malloc arena, wherever it lies: ~8 ms after a year's start-up.

Fixing glibc's thresholds instead (mallopt) was measured too and left out: it saved
nothing more once the day closed, and it would put every big numpy array of the wait
forecast on a fresh mmap (page faults on each simulation).

Only glibc has `malloc_trim`; elsewhere (musl, macOS) `trim` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim() -> None:
    """Give the free pages of every malloc arena back to the OS (after loading; never on
    the call path)."""
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
