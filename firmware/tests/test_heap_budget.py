"""Every role fits an ESP32's heap: the firmware frozen into the 32-bit MicroPython unix port
(built from source by the set-up: tools/testkit/mpbuild.py), the heap capped at 112 KB, over TLS,
through 1,000 calls and an over-the-air update, with Mosquitto and the hub process.

Done when every role keeps ≥ 20 % of the budget free at its highest reading and a free
block of ≥ 16 KB (what a TLS handshake needs) after 1,000 calls; after the update the new
version runs from RAM (not frozen), and it must fit too. The figures themselves are
`bench_firmware`'s (docs/benchmarks.md); here they are held against the budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from onewindow.tools.testkit.heapbudget import (
    BUDGET,
    MARGIN,
    QUICK_HOLD_S,
    TLS_BLOCK,
    HeapCentre,
    frozen_binary,
)

pytestmark = pytest.mark.timeout(600)

CALLS = 1000
AFTER_UPDATE = 100  # calls run by the updated version, from RAM


async def test_every_role_fits_the_esp32_heap_budget(tmp_path: Path) -> None:
    # Short presses: the same calls and update at ~2.5x the pace (heapbudget.QUICK_HOLD_S)
    c = HeapCentre(tmp_path, frozen_binary(), cap=BUDGET, hold=QUICK_HOLD_S)
    try:
        await c.start()
        await c.read("boot")
        for done in (100, CALLS // 2, CALLS):
            await c.run_calls(done - c.calls)
            await c.read(f"{done} calls")
        ro = await c.update("9.0.0-heap", tmp_path / "images")
        assert ro.status == "done", ro.log
        await c.read("updated, boot")
        await c.run_calls(AFTER_UPDATE)
        await c.read(f"updated, {AFTER_UPDATE} calls")
    finally:
        await c.stop()
    assert c.calls == CALLS + AFTER_UPDATE
    assert c.trouble() == {dev: [] for dev in c.boards}, "a board ran short or crashed"
    limit = BUDGET * (1 - MARGIN)
    for dev, b in c.boards.items():
        table = "\n".join(f"  {r.at:<20} {r.alloc:>7,} in use {r.largest:>7,} largest free"
                          for r in b.readings)
        print(f"{dev}, heap {BUDGET:,} B:\n{table}")  # pytest -s shows the figures
        assert b.fw.resets == 1, f"{dev}: reset {b.fw.resets} times (once: the update)"
        # Frozen, as built; then the update's version, loaded into RAM.
        assert b.peak("") <= limit, f"{dev} over {limit:,.0f} B in use:\n{table}"
        after = next(r for r in b.readings if r.at == f"{CALLS} calls")
        assert after.largest >= TLS_BLOCK, f"{dev}: no {TLS_BLOCK:,} B block left:\n{table}"
        last = b.readings[-1]
        assert last.largest >= TLS_BLOCK, f"{dev}: no {TLS_BLOCK:,} B block left:\n{table}"
