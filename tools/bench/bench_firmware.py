"""Firmware benchmarks (stage 2, heap budget stage 9). Prints tables; results go in
docs/benchmarks.md through `python -m onewindow.tools.bench.bench_report firmware`.

    python -m onewindow.tools.bench.bench_firmware              # ~8 minutes
    python -m onewindow.tools.bench.bench_firmware --calls 100 --heap-calls 200 --no-tight

Everything is real but the pins: Mosquitto, the hub process and the firmware on the
MicroPython unix port with the sim board (buttons pressed through its control socket).

1. keypad "call" pressed -> the window board's framebuffer shown with the new number
2. box button pressed -> the whole ESC/POS ticket written to the printer UART
3. broker restart -> every board reconnected (time from the broker listening again)
   (1-3 on the unix-port wheel, 64-bit, source tree, plain MQTT, heap unbounded)
4. the heap budget (tools/testkit/heapbudget.py): the firmware frozen into the 32-bit unix port
   built from source, every role's heap capped at an ESP32's 112 KB, over TLS, through
   `--heap-calls` calls and an over-the-air update (the new version then runs from RAM).
   Per role: the cap, the readings (bytes in use after a collection, and the largest free
   block), the highest one (peak), the margin (the budget's share left free at the peak).
   With --tight, the same again with every heap capped 20 % below the budget: a role that
   survives it has the margin in fact, not only at the readings.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from ..testkit.fwsim import FirmwareProcess, SimCentre
from ..testkit.heapbudget import BUDGET, MARGIN, TLS_BLOCK, HeapCentre, frozen_binary


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def _press_at(board: FirmwareProcess, button: str) -> float:
    """Press (and release) a button; the loop time the press went out."""
    t0 = asyncio.get_running_loop().time()
    await board.press(button)
    return t0


async def run(calls: int, restarts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        c = SimCentre(Path(tmp), windows=1)
        await c.start()
        try:
            box, kp, led = c["box-1"], c["kp-1"], c["led-1"]
            boards = (box, kp, led, c["hall-1"])
            display, ticket = [], []
            for _ in range(calls):
                m = box.mark()
                t0 = await _press_at(box, "b0")
                done = await box.wait("printed", since=m)
                ticket.append(done["t"] - t0)
                ml, mk = led.mark(), kp.mark()
                t0 = await _press_at(kp, "call")
                verdict = await kp.wait("key", since=mk)
                assert verdict["result"] == "ok", verdict
                drawn = await led.wait("draw", lambda e, n=verdict["ticket"]: e["ticket"] == n,
                                       since=ml)
                shown = await led.wait("fb", since=led.events.index(drawn))
                display.append(shown["t"] - t0)
                # The logs would grow for ever: keep only the recent part.
                for b in boards:
                    if len(b.events) > 2000:
                        del b.events[:-200]
            reconnect = []
            for _ in range(restarts):
                marks = {b.name: b.mark() for b in c.boards.values()}
                c.broker.stop()
                await asyncio.sleep(1.0)
                c.broker.start()
                t0 = asyncio.get_running_loop().time()
                for b in c.boards.values():
                    up = await b.wait("up", since=marks[b.name], timeout=30)
                    reconnect.append(up["t"] - t0)
        finally:
            await c.stop()
    return {"display": display, "ticket": ticket, "reconnect": reconnect}


async def heap_budget(calls: int, cap: int, after_update: int = 100) -> HeapCentre:
    """The heap-budget scenario (as firmware/tests/test_heap_budget.py) at `cap` bytes;
    the centre, stopped, with its readings."""
    with tempfile.TemporaryDirectory() as tmp:
        c = HeapCentre(Path(tmp), frozen_binary(), cap=cap)
        try:
            await c.start()
            await c.read("boot")
            await c.run_calls(calls)
            await c.read(f"{calls:,} calls")
            ro = await c.update("9.0.0-bench", Path(tmp) / "images")
            if ro.status != "done":
                raise RuntimeError(f"the update failed: {ro.reason}")
            await c.read("updated")
            await c.run_calls(after_update)
            await c.read(f"updated +{after_update}")
        finally:
            await c.stop()
    return c


async def survives(calls: int, cap: int) -> dict[str, str]:
    """Each role's fate with its heap at `cap`: "yes", or what its log said."""
    try:
        c = await heap_budget(calls, cap)
    except Exception as e:  # a board that died takes the scenario down: say how
        return {"all": f"no ({type(e).__name__}: {str(e)[:160]})"}
    return {dev: ("no: " + t[-1][:120]) if t else "yes" for dev, t in c.trouble().items()}


def _ms(xs: list[float]) -> str:
    return (f"p50 {_pct(xs, 50) * 1000:.1f} / p99 {_pct(xs, 99) * 1000:.1f} / "
            f"max {max(xs) * 1000:.1f} ms ({len(xs)})")


def _heap_table(c: HeapCentre, calls: int) -> list[str]:
    ats = [r.at for r in next(iter(c.boards.values())).readings]
    head = ["role", "heap cap", *(f"in use: {a}" for a in ats), "peak", "margin",
            f"largest free: {calls:,} calls", "largest free: updated +100"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    margins, blocks = [], []
    for dev, b in c.boards.items():
        peak = b.peak("")
        margin = (c.cap - peak) / c.cap * 100
        after = next(r for r in b.readings if r.at == f"{calls:,} calls")
        margins.append(margin)
        blocks.append(min(after.largest, b.readings[-1].largest))
        out.append("| " + " | ".join([
            f"{dev} ({b.fw.cfg['role']})", f"{c.cap:,}", *(f"{r.alloc:,}" for r in b.readings),
            f"{peak:,}", f"{margin:.1f} %", f"{after.largest:,}",
            f"{b.readings[-1].largest:,}"]) + " |")
    out.append("")
    out.append(f"smallest margin (target >= {MARGIN * 100:.0f} %): {min(margins):.1f} %")
    out.append(f"smallest largest free block (target >= {TLS_BLOCK:,} B): {min(blocks):,} B")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--heap-calls", type=int, default=1000)
    ap.add_argument("--tight", action=argparse.BooleanOptionalAction, default=True,
                    help="also run with every heap 20 %% below the budget")
    args = ap.parse_args()
    r = asyncio.run(run(args.calls, args.restarts))
    rows = [
        ("keypad call pressed -> window board framebuffer shown", _ms(r["display"])),
        ("box button pressed -> whole ESC/POS ticket on the printer UART", _ms(r["ticket"])),
    ]
    rc = r["reconnect"]
    rows.append((f"broker restart -> board reconnected ({len(rc)} board reconnects)",
                 f"median {statistics.median(rc):.2f} / max {max(rc):.2f} s"))
    width = max(len(a) for a, _ in rows)
    print("On the unix-port wheel (64-bit), the source tree, plain MQTT:")
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    c = asyncio.run(heap_budget(args.heap_calls, BUDGET))
    print()
    print(f"Heap budget: the firmware frozen into the 32-bit unix port, heap capped at "
          f"{BUDGET:,} B (an ESP32's), TLS, {args.heap_calls:,} calls, an over-the-air "
          f"update (then run from RAM) and 100 calls more. Bytes in use and free blocks "
          f"after a collection:")
    print()
    for line in _heap_table(c, args.heap_calls):
        print(line)
    print(f"the same calls on this build: keypad -> LED drawn {_ms(c.display_s)}; "
          f"box -> ticket printed {_ms(c.ticket_s)}")
    trouble = {d: t for d, t in c.trouble().items() if t}
    print(f"boards that ran short or crashed: {trouble or 'none'}")
    if args.tight:
        tight = int(BUDGET * (1 - MARGIN))
        fate = asyncio.run(survives(args.heap_calls, tight))
        print(f"with every heap capped at {tight:,} B (the budget less {MARGIN * 100:.0f} %), "
              "the same run: " + ", ".join(f"{d} {v}" for d, v in fate.items()))


if __name__ == "__main__":
    main()
