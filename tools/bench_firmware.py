"""Firmware benchmarks (stage 2). Prints a table; results go in docs/benchmarks.md.

    python -m onewindow.tools.bench_firmware              # 1,000 calls, ~4 minutes
    python -m onewindow.tools.bench_firmware --calls 100

Everything is real but the pins: Mosquitto, the hub process and the firmware on the
MicroPython unix port with the sim board (buttons pressed through its control socket).

1. keypad "call" pressed -> the window board's framebuffer shown with the new number
2. box button pressed -> the whole ESC/POS ticket written to the printer UART
3. heap (gc.mem_alloc after a collect) of each board after boot, after 100 calls (bounded
   rings and queues full) and after the run
4. broker restart -> every board reconnected (time from the broker listening again)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .fwsim import FirmwareProcess, SimCentre

WARM_UP = 100  # calls before the second heap reading


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def _heap(board: FirmwareProcess) -> int:
    m = board.mark()
    await board.ctl("heap")
    return int((await board.wait("heap", since=m))["alloc"])


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
            heap0 = {b.name: await _heap(b) for b in boards}
            display, ticket = [], []
            warm: dict[str, int] = {}
            for i in range(calls):
                if i == WARM_UP:  # rings and queues have filled to their bounds by now
                    warm = {b.name: await _heap(b) for b in boards}
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
            heap1 = {b.name: await _heap(b) for b in boards}
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
    return {"display": display, "ticket": ticket, "heap0": heap0, "heap1": heap1, "warm": warm,
            "reconnect": reconnect}


def _ms(xs: list[float]) -> str:
    return (f"p50 {_pct(xs, 50) * 1000:.1f} / p99 {_pct(xs, 99) * 1000:.1f} / "
            f"max {max(xs) * 1000:.1f} ms ({len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--restarts", type=int, default=5)
    args = ap.parse_args()
    r = asyncio.run(run(args.calls, args.restarts))
    rows = [
        ("keypad call pressed -> window board framebuffer shown", _ms(r["display"])),
        ("box button pressed -> whole ESC/POS ticket on the printer UART", _ms(r["ticket"])),
    ]
    for name in r["heap0"]:
        h0, hw, h1 = r["heap0"][name], r["warm"].get(name), r["heap1"][name]
        rows.append((f"heap in use, {name}: boot -> {WARM_UP} calls -> {args.calls} calls",
                     f"{h0:,} -> {hw:,} -> {h1:,} B ({h1 - hw:+,} B after warm-up)"
                     if hw is not None else f"{h0:,} -> {h1:,} B"))
    rc = r["reconnect"]
    rows.append((f"broker restart -> board reconnected ({len(rc)} board reconnects)",
                 f"median {statistics.median(rc):.2f} / max {max(rc):.2f} s"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    main()
