"""Benchmark: the cost of issuing one ticket as the queue grows (wait forecast included).

    python -m onewindow.tools.bench_take [--takes 200]

A device's `take` event through `HubApp.handle` (decode, seq check, core, the wait
forecast, the printed ticket's ESC/POS and QR, the reply) and the SQLite journal's commit,
with 0 to 1,000 residents already waiting at 30 open windows. Beside it, in the same run,
the same takes with the forecast simulating the whole queue for every take (the code
before the forecast extended the previous take's paths): the baseline the flat row is
measured against.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ..hub.forecast.wait import WaitPredictor
from ..hub.store.journal import Journal
from ..protocol import ow_protocol as proto
from .bench_hub import CENTRE, T0, _app, _items, _pct


def bench(waiting: int, takes: int, extend: bool, windows: int = 30) -> list[float]:
    """Seconds per take, `takes` takes on top of `waiting` already waiting."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db")
        try:
            app = _app(windows, journal)
            app.waits = WaitPredictor(extend=extend)
            items = _items(app.centre)
            topic = proto.device_topic(CENTRE, "box-1", "evt")
            now, out = T0, []
            for i in range(waiting + takes):
                now += 0.5
                payload = proto.encode("evt", proto.event("box-1", i + 1, "take",
                                                          item=items[(i * 7) % len(items)]))
                started = time.perf_counter()
                step = app.handle(topic, payload, now)
                journal.append(step.records)
                if i >= waiting:
                    out.append(time.perf_counter() - started)
            return out
        finally:
            journal.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--takes", type=int, default=200)
    args = ap.parse_args()
    print("| waiting before | take, forecast extended: p50 / p99 ms "
          "| baseline, whole queue simulated: p50 / p99 ms |")
    print("|---|---|---|")
    for waiting in (0, 100, 300, 600, 1000):
        a = bench(waiting, args.takes, extend=True)
        b = bench(waiting, args.takes, extend=False)
        print(f"| {waiting:,} | {_pct(a, 50) * 1e3:.2f} / {_pct(a, 99) * 1e3:.2f} "
              f"| {_pct(b, 50) * 1e3:.2f} / {_pct(b, 99) * 1e3:.2f} |")


if __name__ == "__main__":
    main()
