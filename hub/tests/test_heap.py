"""hub/heap.py on glibc: once the thresholds are fixed, a freed snapshot-sized buffer no
longer moves the next big buffers from mmap (given back on free) to the heap (kept).

Each case runs in a fresh interpreter: malloc's thresholds are process-wide, and this
process's history (earlier tests' buffers) would decide the outcome."""

import platform
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Whether a 1 MB buffer allocated after a 4.4 MB one was freed (a year's decompressed
# snapshot) is an mmapped chunk: glibc marks it so in the size word before the block
# (IS_MMAPPED, bit 1); a bytes object this big is one malloc block starting at its id.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from onewindow.hub import heap
    if sys.argv[1] == "fixed":
        heap.fix_thresholds()
    snapshot = bytes(4_400_000)
    del snapshot
    after = bytes(1_000_000)
    size_word = ctypes.c_size_t.from_address(id(after) - ctypes.sizeof(ctypes.c_size_t))
    print("mmapped" if size_word.value & 2 else "heap")
    heap.trim()  # and trimming is callable there
""")


def probe(mode: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.strip()


@glibc
def test_a_freed_big_buffer_moves_later_ones_to_the_heap_unless_the_thresholds_are_fixed():
    assert probe("default") == "heap"  # glibc's dynamic threshold: why heap.py exists
    assert probe("fixed") == "mmapped"
