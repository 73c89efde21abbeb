"""The soak's hub process: the real `serve` (hub/serve.py) with an accelerated clock.

    python -m onewindow.tools.bench.soakhub --config cfg.json --epoch T0 --wall W0 --speed S
        [--stats stats.json]
    (--wall-file F instead of --wall: held at T0 until the driver writes W0 to F; a
    centre.toml as --config: the hub's own configuration, as `onewindow hub` reads it)

Only the clock differs from `onewindow hub`: simulated time is
`T0 + max(0, time.time() - W0) * S`, held at T0 until the wall-clock instant W0. The driving
process (tools/bench/soak.py) computes the very same formula from the same three numbers, so the
hub and the simulated people agree on the time without talking about it; each restart is
given the next working morning's T0, continuing the same simulated timeline.

`--stats FILE`: on SIGUSR1 the process writes {"tasks": len(asyncio.all_tasks()), "at":
time.time()} to FILE (atomically: written beside it, then renamed). A signal handler is a
loop callback, not a task, so asking does not change the count; nothing runs when nobody
asks. Everything else the soak measures (RSS, file descriptors, threads) is read from
outside, in /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path

from ...hub.config import HubConfig, from_dict, load
from ...hub.serve import serve


class SoakClock:
    """Simulated epoch seconds: `epoch` until the wall-clock instant `wall`, then `speed`
    simulated seconds per real second. A pure function of time.time(), so two processes
    given the same numbers read the same time."""

    def __init__(self, epoch: float, wall: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.epoch, self.wall, self.speed = epoch, wall, speed

    def __call__(self) -> float:
        return self.epoch + max(0.0, time.time() - self.wall) * self.speed

    def real_until(self, ts: float) -> float:
        """Real seconds until the clock shows `ts` (<= 0: it has)."""
        return max(0.0, self.wall - time.time()) + (ts - self()) / self.speed


class GatedClock:
    """A SoakClock whose real start instant is not known at launch: held at `epoch` until
    the driving process writes it (epoch seconds, as text) to `gate`, then `speed` x real
    time from it. The city e2e starts ten hubs and the city tier, then opens the gate for
    all of them at once, whatever the start-up took on a busy machine."""

    def __init__(self, epoch: float, gate: Path, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.epoch, self.gate, self.speed = epoch, gate, speed
        self._clock: SoakClock | None = None

    def __call__(self) -> float:
        if self._clock is None:
            try:
                wall = float(self.gate.read_text())
            except (OSError, ValueError):  # not written yet (written atomically: whole)
                return self.epoch
            self._clock = SoakClock(self.epoch, wall, self.speed)
        return self._clock()


def open_gate(gate: Path, wall: float) -> None:
    """Start every GatedClock reading `gate` at the real instant `wall`."""
    tmp = gate.with_name(gate.name + ".tmp")
    tmp.write_text(repr(wall))
    os.replace(tmp, gate)


def write_stats(path: Path) -> None:
    """The running loop's task count, for the soak to read (see the module docstring)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"tasks": len(asyncio.all_tasks()), "at": time.time()}))
    os.replace(tmp, path)


async def run(config: HubConfig, clock: SoakClock | GatedClock, stats: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if stats is not None:
        loop.add_signal_handler(signal.SIGUSR1, write_stats, stats)
    await serve(config, stop, clock=clock)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True,
                    help="the hub's configuration (JSON, or a centre.toml)")
    ap.add_argument("--epoch", type=float, required=True, help="simulated start (epoch s)")
    ap.add_argument("--wall", type=float, help="real instant it starts running")
    ap.add_argument("--wall-file", type=Path,
                    help="instead of --wall: held until the driver writes the instant here")
    ap.add_argument("--speed", type=float, required=True, help="simulated s per real s")
    ap.add_argument("--stats", type=Path, help="where SIGUSR1 writes the task count")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A centre.toml as `onewindow hub` reads it (the city e2e's centres), else the soak's JSON.
    config = (load(args.config) if args.config.suffix == ".toml" else
              from_dict(json.loads(args.config.read_text(encoding="utf-8")),
                        base=args.config.parent))
    if (args.wall is None) == (args.wall_file is None):
        ap.error("give --wall or --wall-file (one of them)")
    clock = (SoakClock(args.epoch, args.wall, args.speed) if args.wall is not None
             else GatedClock(args.epoch, args.wall_file, args.speed))
    asyncio.run(run(config, clock, args.stats))


if __name__ == "__main__":
    main()
