"""hub/heap.py on glibc: `trim` gives back memory freed below the top of the heap, which
glibc itself keeps (it returns only the top).

Runs in a fresh interpreter: what this process's heap holds depends on earlier tests."""

import platform
import subprocess
import sys
import textwrap

import pytest

# 40,000 blocks of 1,500 bytes (malloc's, not Python's small-object allocator), all freed
# but the last: ~60 MB free below a live block at the top of the heap.
PROBE = textwrap.dedent("""
    def rss_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    from onewindow.hub import heap
    blocks = [bytes(1500) + bytes([i % 256]) for i in range(40_000)]
    top = blocks.pop()
    del blocks
    before = rss_kib()
    heap.trim()
    print(before - rss_kib())
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim only")
def test_trim_gives_back_what_was_freed_below_the_top_of_the_heap():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    assert int(out.stdout) > 40_000  # KiB: most of the ~60 MB freed
