"""The C heap under the hub (glibc malloc): big transient buffers go back to the OS.

Why (issue 14, measured with tools/bench_startup.py and malloc_stats): glibc serves a
request of 128 KiB or more with its own mmap, returned to the OS on free, but the first such
buffer freed raises that threshold to its own size, and the heap's trim threshold to twice
that. A start-up from a year's snapshot frees the decompressed snapshot (~4.4 MB) first, so
from then on every buffer below 4.4 MB (the JSON decoder's lists, dict tables, SQLite
result rows, a checkpoint's JSON and zlib output in its thread) comes from the heap, and up
to 8.8 MB of free heap is kept per malloc arena instead of given back: ~2 MiB of the year's
hub's RSS after its first take, more after each checkpoint. Fixed thresholds (glibc's own
defaults, 128 KiB) keep big buffers on mmap; the heap freed while loading is trimmed once.

Only glibc has these calls; elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger("onewindow.hub")

_M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
_M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024  # glibc's default for both; fixed, it no longer moves


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError, TypeError):  # no libc found, or not glibc's calls
        return None
    return libc


def fix_thresholds() -> None:
    """Keep buffers of THRESHOLD bytes and more on mmap, for good: before loading a
    snapshot, whose freed buffers would otherwise raise the threshold (module docstring)."""
    libc = _glibc()
    if libc is None:
        return
    if not (libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD)):
        log.debug("mallopt refused the thresholds")


def trim() -> None:
    """Give the free pages of every malloc arena back to the OS (after loading: ~10-20 ms
    on a year's heap, so never on the call path)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
