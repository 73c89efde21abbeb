"""Benchmark: the cost of issuing one ticket as the queue grows (wait forecast included).

    python -m onewindow.tools.bench.bench_take [--takes 200]

A device's `take` event through `HubApp.handle` (decode, seq check, core, the wait
forecast, the printed ticket's ESC/POS and QR, the reply) and the SQLite journal's commit,
with 0 to 1,000 residents already waiting at 30 open windows, a take every 0.5 s.

The take places its ticket into the standing forecast; the queue is simulated again in the
background (hub/forecast/refresh.py) in slices that share the hub's loop with the takes, so
here, as the loop would, every slice due runs between two takes (each one timed: a take
arriving during a slice waits for that one slice). Beside it, in the same run: the same
takes with the whole queue simulated for every take (the code before stage 7's chained
forecast), the baseline the flat row is measured against. Then the takes of a centre's mix
(priority residents and appointments are placed before others in the queue, from a checkpoint
of the forecast: bounded, but more than a take at its end).

A second table: the same refreshes run in a worker thread instead of slices (the state read
in the loop, the simulation in the thread), the takes going on meanwhile: a take's time then
includes waiting for the GIL the thread holds.

The garbage collector runs under the hub's policy (hub/gcpolicy.py, as hub/serve.py installs
it: what the hub was built with frozen, each full collection's survivors frozen too), from
the moment the app is built, so the queue filled before the timed takes is what a day's
collections have already walked; the calm-moment collections are left out (the takes here
come back to back, never calm). Before (until 2026-12-06), with Python's default collector,
full collections walking every waiting ticket landed among the timed takes: a priority
take's p99 with 1,000 waiting 75-78 ms and a background slice's max 64-66 ms, what the hub
does not do; with the policy 2.1-2.7 ms and under 1 ms (three runs each).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
import threading
import time
from dataclasses import dataclass, field

from ...hub.app import HubApp
from ...hub.forecast.refresh import WaitRefresher
from ...hub.forecast.wait import Forecast, Refresh, WaitPredictor
from ...hub.gcpolicy import Collector
from ...hub.store.journal import Journal
from ...protocol import ow_protocol as proto
from .bench_hub import CENTRE, T0, _app, _items, _pct


@dataclass
class Run:
    takes: list[float] = field(default_factory=list)  # s per take
    slices: list[float] = field(default_factory=list)  # s per background slice
    refreshes: int = 0  # landed
    kinds: dict[str, list[float]] = field(default_factory=dict)  # the takes by kind
    forecast: list[float] = field(default_factory=list)  # s of each take in the forecast


class Takes:
    """A hub app with `waiting` residents queued, taking tickets one by one."""

    def __init__(self, journal: Journal, waiting: int, extend: bool, windows: int = 30) -> None:
        self.journal = journal
        self.app: HubApp = _app(windows, journal)
        self.app.waits = WaitPredictor(extend=extend)
        self.items = _items(self.app.centre)
        self.topic = proto.device_topic(CENTRE, "box-1", "evt")
        self.now, self.i = T0, 0
        self.refresher = WaitRefresher(self.app, lambda: self.now)
        self.gc = Collector(lambda: self.app.centre.day)
        # The wait forecast's share of a take: the predictor's entry points timed (the
        # outermost call only: one may call another).
        self.forecast, self._depth = 0.0, 0
        for name in ("update", "predict", "issued"):
            self._time(name)

    def _time(self, name: str) -> None:
        inner = getattr(self.app.waits, name)

        def timed(*args: object, **kwargs: object) -> object:
            self._depth += 1
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.forecast += time.perf_counter() - started

        setattr(self.app.waits, name, timed)

    def take(self, kind: str = "normal") -> float:
        """One take at the next half second; its seconds (handle + commit)."""
        self.now += 0.5
        self.i += 1
        fields: dict[str, object] = {"item": self.items[(self.i * 7) % len(self.items)]}
        if kind != "normal":
            fields["priority"] = kind
        if kind == "appointment":  # its slot now: called before everyone
            fields["appointment_at"] = self.now
        payload = proto.encode("evt", proto.event("box-1", self.i, "take", **fields))
        self.forecast = 0.0
        started = time.perf_counter()
        step = self.app.handle(self.topic, payload, self.now)
        self.journal.append(step.records)
        return time.perf_counter() - started

    def slices(self, out: list[float] | None = None) -> None:
        """Every background slice due now, as the loop runs them between messages."""
        while True:
            started = time.perf_counter()
            if not self.refresher.step():
                return
            if out is not None:
                out.append(time.perf_counter() - started)


@contextlib.contextmanager
def hub_gc(hub: Takes):  # type: ignore[no-untyped-def]
    """The hub's garbage-collection policy while `hub` runs; everything unfrozen after, so
    one run's leftovers are not carried frozen into the next."""
    hub.gc.start()
    try:
        yield
    finally:
        hub.gc.stop()
        gc.unfreeze()
        gc.collect()


# A centre's mix: one take in ten a priority resident's, one in twenty an appointment's.
MIX = ("normal",) * 17 + ("priority",) * 2 + ("appointment",)


def bench(waiting: int, takes: int, extend: bool, mix: tuple[str, ...] = ("normal",)) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db")
        try:
            hub = Takes(journal, waiting, extend)
            run = Run()
            with hub_gc(hub):
                hub.slices()  # the refresher's first run (the runner's, before any message)
                for _ in range(waiting):
                    hub.take()
                    hub.slices()
                landed = hub.refresher.landed
                for k in range(takes):
                    kind = mix[k % len(mix)]
                    t = hub.take(kind)
                    run.takes.append(t)
                    run.forecast.append(hub.forecast)
                    run.kinds.setdefault(kind, []).append(t)
                    hub.slices(run.slices)
                run.refreshes = hub.refresher.landed - landed
            if extend:  # what this is about: no take simulated the queue
                assert hub.app.waits.simulated == 0, hub.app.waits.simulated
            return run
        finally:
            journal.close()


def bench_thread(waiting: int, takes: int) -> Run:
    """The refreshes in a worker thread: begun in the loop (the state read), run there,
    landed in the loop once done; the takes timed meanwhile."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(f"sqlite:///{tmp}/bench.db")
        try:
            hub = Takes(journal, waiting, True)
            with hub_gc(hub):
                hub.slices()
                for _ in range(waiting):
                    hub.take()
                    hub.slices()
                run = Run()
                waits, app = hub.app.waits, hub.app
                job: tuple[Refresh, threading.Thread, list[Forecast]] | None = None

                def simulate(r: Refresh, out: list[Forecast]) -> None:
                    try:
                        while True:
                            next(r.steps)
                    except StopIteration as done:
                        out.append(done.value)

                during = 0
                for _ in range(takes):
                    if job is None and waits.refresh_due(app.centre, hub.now):
                        r = waits.refresh(app.centre, hub.now, app.pos)
                        result: list[Forecast] = []
                        thread = threading.Thread(target=simulate, args=(r, result))
                        thread.start()
                        job = (r, thread, result)
                    busy = job is not None and job[1].is_alive()
                    t = hub.take()
                    if busy:
                        run.takes.append(t)
                        during += 1
                    if job is not None and not job[1].is_alive():
                        job[1].join()
                        run.refreshes += waits.land(job[0], job[2][0], app.centre)
                        job = None
                    else:
                        time.sleep(0.0005)  # a take every half millisecond while it runs
                if job is not None:
                    job[1].join()
                return run
        finally:
            journal.close()


def _ms(xs: list[float], p: float) -> str:
    return f"{_pct(xs, p) * 1e3:.2f}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--takes", type=int, default=400)
    args = ap.parse_args()
    print("| waiting before | take: p50 / p99 ms | the wait forecast's part of it: p50 / p99 ms "
          "| background slices between takes: p50 / p99 / max ms (n; refreshes) "
          "| baseline, whole queue simulated per take: p50 / p99 ms |")
    print("|---|---|---|---|---|")
    runs = {}
    # Warm-up, not timed: the first run in a process pays for first imports and caches (its
    # take p50 came out 0.64 ms in one run, 0.36-0.40 in the other rows), which the row with
    # none, run first, took alone.
    bench(0, 50, extend=True)
    bench(0, 50, extend=False)
    for waiting in (0, 100, 300, 600, 1000):
        a = runs[waiting] = bench(waiting, args.takes, extend=True)
        b = bench(waiting, args.takes, extend=False)
        print(f"| {waiting:,} | {_ms(a.takes, 50)} / {_ms(a.takes, 99)} "
              f"| {_ms(a.forecast, 50)} / {_ms(a.forecast, 99)} "
              f"| {_ms(a.slices, 50)} / {_ms(a.slices, 99)} / "
              f"{max(a.slices, default=0) * 1e3:.2f} ({len(a.slices)}; {a.refreshes}) "
              f"| {_ms(b.takes, 50)} / {_ms(b.takes, 99)} |")
    print()
    full, empty = runs[1000], runs[0]
    print(f"flat: a take with 1,000 waiting / with none: p50 "
          f"{_pct(full.takes, 50) / _pct(empty.takes, 50):.2f}x, p99 "
          f"{_pct(full.takes, 99) / _pct(empty.takes, 99):.2f}x")
    print("the wait forecast on the reply path with 1,000 waiting: "
          f"p99 {_ms(full.forecast, 99)} ms")
    print()
    m = bench(1000, args.takes * 2, extend=True, mix=MIX)
    print(f"Takes of a centre's mix, 1,000 waiting ({m.refreshes} refreshes landed between)")
    print("| take | n | p50 / p99 ms |")
    print("|---|---|---|")
    for kind, xs in m.kinds.items():
        print(f"| {kind} | {len(xs)} | {_ms(xs, 50)} / {_ms(xs, 99)} |")
    print()
    print("The same refresh in a worker thread, 1,000 waiting: takes while it runs")
    print("| refresh | takes timed | take p50 / p99 / max ms |")
    print("|---|---|---|")
    t = bench_thread(1000, args.takes)
    print(f"| worker thread ({t.refreshes} landed) | {len(t.takes)} | {_ms(t.takes, 50)} / "
          f"{_ms(t.takes, 99)} / {max(t.takes, default=0) * 1e3:.2f} |")
    s = bench(1000, args.takes, extend=True)
    print(f"| slices in the loop ({s.refreshes} landed) | {len(s.takes)} | "
          f"{_ms(s.takes, 50)} / {_ms(s.takes, 99)} / {max(s.takes) * 1e3:.2f}, "
          f"+ at most one slice waited for (max {max(s.slices) * 1e3:.2f}) |")


if __name__ == "__main__":
    main()
