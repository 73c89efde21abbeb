"""The soak (tools/bench/soak.py), short: three working days through the real hub process, with
a real Mosquitto and its SQLite journal, one restart per day; only the clock is
accelerated. The promises are the 30-day run's (`soak.check`)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path

from onewindow.tools.bench import soak
from onewindow.tools.bench.soakhub import SoakClock


async def test_three_days_through_the_real_hub_keep_every_promise(tmp_path: Path) -> None:
    run = await soak.run_soak(3, speed=3000, windows=3, layout_name="comprehensive",
                              workdir=tmp_path, progress=False)
    assert [r.date for r in run.rows] == [dt.date(2026, 11, 2), dt.date(2026, 11, 3),
                                          dt.date(2026, 11, 4)]
    assert soak.check(run) == [], soak.table(run)
    for r in run.rows:
        # Each day closed in the hub and its summary is the simulator's, operation by
        # operation too (what the engine had accepted is what the journal holds that day).
        assert r.hub is not None and r.hub == r.engine, soak.table(run)
        assert r.engine["tickets"] > 50 and r.engine["served"] > 0
        assert r.engine_ops == r.hub_ops and r.engine_ops["take"] == r.engine["tickets"]
        assert r.exit == 0 and not r.errors
        assert r.rss_mb > 0 and r.fds > 0 and r.threads > 0 and r.tasks > 0
    # Day 1 starts on an empty journal; every restart after it loads a snapshot and replays
    # only its tail, at most the day before's records.
    assert run.rows[0].replayed == "all 0"
    for prev, r in zip(run.rows, run.rows[1:], strict=False):
        assert r.replayed.startswith("snap+")
        assert int(r.replayed.removeprefix("snap+")) <= sum(prev.hub_ops.values())
    assert run.final_replayed.startswith("snap+")
    log = (tmp_path / "hub.log").read_text()
    assert log.count("state from the snapshot") == 3  # days 2 and 3, and the closing one
    assert "Traceback" not in log


def _row(n: int, rss: float, fds: int = 12, tasks: int = 7, startup: float = 0.6,
         equal: bool = True) -> soak.DayRow:
    ops = Counter(take=100, call=100, complete=95)
    outcomes = {"tickets": 100, "served": 95, "no_shows": 5}
    return soak.DayRow(n, dt.date(2026, 11, n + 1), outcomes,
                       hub=outcomes if equal else {**outcomes, "served": 94},
                       engine_ops=ops, hub_ops=Counter(ops), rss_mb=rss, fds=fds, threads=3,
                       tasks=tasks, startup_s=startup, replayed="all 0" if n == 1 else "snap+9",
                       exit=0)


def test_check_names_each_broken_promise() -> None:
    def broken(*rows: soak.DayRow) -> list[str]:
        return soak.check(soak.Soak(list(rows), 0.6, "snap+1", Path("/unused")))

    flat = [_row(1, 80.0), _row(2, 90.0), _row(3, 98.9), _row(4, 99.0)]
    assert broken(*flat) == []
    [rss] = broken(*flat[:3], _row(4, 99.1))  # +10.1 % over day 2
    assert "day 4: RSS 99.1 MB" in rss
    [fds] = broken(*flat[:3], _row(4, 90.0, fds=13))
    assert fds == "fds above the first two days' 12: day 4: 13"
    [tasks] = broken(*flat[:3], _row(4, 90.0, tasks=8))
    assert tasks.startswith("tasks above")
    [slow] = broken(*flat[:3], _row(4, 90.0, startup=1.8))  # > 2 x 0.6 + 0.5
    assert "day 4: start-up 1.80 s" in slow
    [counts] = broken(*flat[:3], _row(4, 90.0, equal=False))
    assert counts.startswith("day 4: hub's closed day")
    full = _row(3, 90.0)
    full.replayed = "all 900"
    [replay] = broken(*flat[:2], full)
    assert replay == "day 3: start-up did not load a snapshot (all 900)"
    unequal = _row(3, 90.0)
    unequal.hub_ops["call"] -= 1
    [ops] = broken(*flat[:2], unequal)
    assert ops == "day 3: operations (simulator, journal) differ: {'call': (100, 99)}"
    pooled = _row(3, 90.0)
    pooled.db_conns = soak.DB_CONNS + 1
    [conns] = broken(*flat[:2], pooled)
    assert conns == (f"day 3: {soak.DB_CONNS + 1} journal connections > the pool's "
                     f"{soak.POOL_SIZE} and the checkpointer's 1")


def test_the_journal_files_are_counted_per_connection(tmp_path: Path) -> None:
    """A second pooled SQLite connection (a thread committing while the loop does) opens the
    database and its -wal again: counted as a connection, not as other files."""
    import os
    import threading

    from onewindow.hub.store.db import create_engine

    db = tmp_path / "journal.db"
    engine = create_engine(f"sqlite:///{db}")
    before = len(os.listdir("/proc/self/fd"))
    try:
        with engine.begin() as one:
            one.exec_driver_sql("CREATE TABLE t (x)")
            assert soak.journal_files(os.getpid(), db)[1] == 1
            held = threading.Event()
            done = threading.Event()

            def other() -> None:  # a second connection, checked out while the first is
                with engine.begin() as two:
                    two.exec_driver_sql("SELECT 1")
                    held.set()
                    done.wait(10)

            t = threading.Thread(target=other)
            t.start()
            assert held.wait(10)
            files, conns = soak.journal_files(os.getpid(), db)
            done.set()
            t.join()
        assert conns == 2 and files >= 2 * 2  # each: the database and its -wal
        after = len(os.listdir("/proc/self/fd"))
        assert after - before == soak.journal_files(os.getpid(), db)[0]  # both stay pooled
        assert soak.journal_files(os.getpid(), None) == (0, 0)  # PostgreSQL: not counted apart
    finally:
        engine.dispose()


def test_two_processes_given_the_same_numbers_read_the_same_time() -> None:
    wall = time.time() + 3600  # an hour from now: held at the epoch until then
    a, b = SoakClock(1_000_000.0, wall, 1000), SoakClock(1_000_000.0, wall, 1000)
    assert a() == b() == 1_000_000.0
    assert 3599 < a.real_until(1_000_000.0 + 1000) < 3601.1  # the hour held, then 1 s
    started = SoakClock(1_000_000.0, time.time() - 2.0, 1000)  # running for 2 s
    assert 1_002_000.0 <= started() < 1_002_000.0 + 1000
    assert started.real_until(started() + 500) <= 0.5
