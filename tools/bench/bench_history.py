"""History after a year: dashboard and report queries on the history tables.

    python -m onewindow.tools.bench.bench_history [--days 250] [--tickets 3000] [--runs 200]
                                            [--postgres]

Fills the history tables (hub/store/history.py) of a fresh SQLite database (and, with
--postgres, a private PostgreSQL server from tools/testkit/testbed.py), opened as the hub opens its
own (hub/store/db.py), with a simulated year by direct SQL: `--days` working days of
`--tickets` tickets each, 30 % of them rated, 20 help requests a day, 12 clerks. Then it
times, `--runs` times each, the queries the pages make:

* the dashboard's last-30-days summary (History.summary over 30 days),
* the staff report's month (History.summary and ratings_by_clerk over a month, and
  report_rows: every fact `onewindow report` reads for a month),
* the whole year's summary,

and, beside them, the dashboard's live day summary (web/floor.summary) the old way, over a
year of ratings held in memory, against today's only, as the hub holds them now. Prints
tables (p50/p99 ms); the target is p99 <= 50 ms per page. Last, `--state-days` days of
`--tickets` through the real app (tools/bench/bench_startup.py's generator): what stays in memory
after each closed day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, insert, select

from ...hub.store import db, trips
from ...hub.store import history as h

CLERKS = [f"clerk{n}" for n in range(1, 13)]
ITEMS = [f"SOC-{n}" for n in range(1, 40)] + [f"MED-{n}" for n in range(1, 30)]


def working_days(n: int, end: dt.date) -> list[dt.date]:
    out, d = [], end
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d -= dt.timedelta(days=1)
    return out[::-1]


def fill(engine, days: list[dt.date], per_day: int, seed: int = 14) -> tuple[int, int]:
    """The history tables of `days`, as History.write would leave them. (tickets, ratings)."""
    rng = random.Random(seed)
    n_tickets = n_ratings = pos = 0
    for d in days:
        key = d.strftime("%Y%m%d")
        t0 = dt.datetime(d.year, d.month, d.day, 1, 0, tzinfo=dt.UTC).timestamp()
        tickets, ratings, helps, services, cases = [], [], [], [], []
        for i in range(per_day):
            issued = t0 + i * (8 * 3600 / per_day)
            wait = rng.expovariate(1 / 12.0)
            window = rng.randrange(1, 31)
            state = "done" if rng.random() < 0.95 else "no_show"
            tid = f"{key}-{'AB'[i % 2]}{i:03d}"
            # pre-review (0006): a resident token on 20 % (of 5,000 residents: repeat
            # visits happen), a kiosk review on 35 %, 3 % returned for materials
            tickets.append({"id": tid, "day": key, "item": rng.choice(ITEMS),
                            "priority": "normal", "state": state, "issued_at": issued,
                            "first_call_at": issued + wait * 60, "window": window,
                            "wait_min": wait, "one_window": rng.random() < 0.9,
                            "resident": (f"tok{rng.randrange(5000)}" if rng.random() < 0.2
                                         else None),
                            "review": "complete" if rng.random() < 0.35 else None,
                            "returned": "SOC-1.0" if rng.random() < 0.03 else "",
                            "extra_items": rng.choice(ITEMS) if rng.random() < 0.1 else ""})
            if state == "done":
                start = issued + wait * 60
                clerk = CLERKS[window % len(CLERKS)]
                services.append({"ticket": tid, "day": key, "window": window, "clerk": clerk,
                                 "items": tickets[-1]["item"], "start": start,
                                 "end": start + rng.uniform(120, 900)})
                if rng.random() < 0.05:  # a promised item, and now and then the back office
                    cases.append({"case": tid, "at": start + 600, "action": "accepted",
                                  "day": key, "item": tickets[-1]["item"], "clerk": clerk})
            if state == "done" and rng.random() < 0.3:
                ratings.append({"ticket": tid, "day": key, "score": rng.choice((1, 1, 1, 2, 3)),
                                "window": window, "clerk": rng.choice(CLERKS),
                                "at": issued + wait * 60 + 600})
        for _ in range(20):
            pos += 1
            at = t0 + rng.uniform(0, 8 * 3600)
            helps.append({"pos": pos, "day": key, "window": rng.randrange(1, 31),
                          "clerk": rng.choice(CLERKS), "at": at,
                          "answered_at": at + rng.uniform(30, 600), "by": "specialist"})
        summary = h.day_summary(key, tickets)
        with engine.begin() as conn:  # bulk: what write() stores, without its deletes
            conn.execute(insert(h.tickets), tickets)
            conn.execute(insert(h.ratings), ratings)
            conn.execute(insert(h.helps), helps)
            conn.execute(insert(h.services), services)
            conn.execute(insert(h.case_events), cases)
            conn.execute(insert(h.days).values(**summary))
        n_tickets += len(tickets)
        n_ratings += len(ratings)
    return n_tickets, n_ratings


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm: the first query of a connection pays for its setup
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))]


def floor_summaries(ratings_per_day: int, days: int, runs: int) -> list[tuple[str, float, float]]:
    """web/floor.summary on an empty centre of today: its cost is the ratings it scans."""
    from ...hub.catalog import load_catalog
    from ...hub.core.centre import Centre
    from ...hub.core.centre_config import CentreConfig, WindowSpec
    from ...hub.core.model import Rating
    from ...hub.web import floor

    centre = Centre(load_catalog(None), CentreConfig("b", (WindowSpec(1),)))
    centre.day = "20261205"
    year = [Rating(f"2026{k:04d}-A{i:03d}", 1, 1, "c", 0.0)
            for k in range(days) for i in range(ratings_per_day)]
    today = [Rating("20261205-" + r.ticket[9:], 1, 1, "c", 0.0) for r in year[:ratings_per_day]]
    out = []
    for label, ratings in ((f"a year of ratings in memory ({len(year):,}; before)", year),
                           (f"today's only ({len(today):,}; now)", today)):
        centre.ratings = {r.ticket: r for r in ratings}
        p50, p99 = timed(lambda: floor.summary(centre), runs)
        out.append((f"live day summary, {label}", p50, p99))
    return out


def state_by_day(days: int, tickets: int, windows: int = 30) -> str:
    """What the hub holds in memory, day after day, as the real app handles a centre's days
    (tools/bench/bench_startup.py's generator: build_app, device messages, SQLite journal; its
    history sink writes each closed day): the parts that used to grow, and the whole state
    as a snapshot's JSON."""
    import json
    import logging

    from .bench_startup import Year, centre_config, workdays

    logging.getLogger("onewindow.hub").setLevel(logging.ERROR)  # the generator's refusals

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        year = Year(centre_config(folder, folder / "hub.db", windows, None, 10**9), windows)
        lines = ["day | centre.ratings | centre.help_requests | app.services | centre.cases | "
                 "state JSON KB | history rows (tickets)",
                 "----|----------------|----------------------|--------------|--------------|"
                 "---------------|-----------------------"]
        for k, d in enumerate(workdays(days + 1)):
            year.day(d, tickets)
            year.commit()
            if k == 0:
                continue  # a day is history from the next day's first record on
            app = year.app
            with year.journal.engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(h.tickets)).scalar()
            raw = len(json.dumps(app.snapshot(), ensure_ascii=False))
            lines.append(f"{k:3d} | {len(app.centre.ratings):14,} | "
                         f"{len(app.centre.help_requests):20,} | "
                         f"{len(app.services):12,} | {len(app.centre.cases):12,} | "
                         f"{raw / 1024:13,.0f} | {n:,}")
        year.journal.close()
    return "\n".join(lines)


def run_queries(engine, days: list[dt.date], runs: int) -> list[tuple[str, float, float]]:
    hist = h.History(engine)
    last = days[-1]
    month_first = last.replace(day=1)
    k = lambda d: d.strftime("%Y%m%d")  # noqa: E731
    d30 = (k(last - dt.timedelta(days=29)), k(last))
    month = (k(month_first), k(last))
    year = (k(days[0]), k(last))
    rows = [
        ("dashboard: last 30 days", *timed(lambda: hist.summary(*d30), runs)),
        ("report: a month's summary", *timed(lambda: hist.summary(*month), runs)),
        ("report: a month's ratings by clerk",
         *timed(lambda: hist.ratings_by_clerk(*month), runs)),
        ("report: a month's facts (onewindow report, a CLI)",
         *timed(lambda: hist.report_rows(*month), max(10, runs // 10))),
        ("the whole year's summary", *timed(lambda: hist.summary(*year), runs)),
        # pre-review that counts (hub/store/trips.py): the report's and the dashboard's,
        # and the related items' co-occurrence: the pages read these once a day in a
        # worker thread (hub/web/daily.py), never on the hub's loop
        ("report: a month's pre-review, one trip, repeats",
         *timed(lambda: trips.prereview_summary(engine, *month), max(10, runs // 10))),
        ("dashboard: last 30 days' pre-review (once a day)",
         *timed(lambda: trips.prereview_summary(engine, *d30), max(10, runs // 10))),
        ("多问一句: 8 weeks' co-occurrence (once a day)",
         *timed(lambda: trips.cooccurrence(engine, k(last - dt.timedelta(weeks=8)), k(last)),
                max(10, runs // 10))),
    ]
    return rows


def table(title: str, rows: list[tuple[str, float, float]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [title, f"{'query':<{width}} | p50 ms | p99 ms", f"{'-' * width}-|--------|-------"]
    lines += [f"{name:<{width}} | {p50:6.2f} | p99 {p99:.2f}" for name, p50, p99 in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--tickets", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--postgres", action="store_true", help="also on a private PostgreSQL")
    ap.add_argument("--state-days", type=int, default=5,
                    help="days through the real app for the memory table (0: none)")
    a = ap.parse_args()
    days = working_days(a.days, dt.date(2026, 12, 4))
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.open_database(f"sqlite:///{Path(tmp) / 'history.db'}")
        t = time.perf_counter()
        n, r = fill(engine, days, a.tickets)
        print(f"history: {a.days} days x {a.tickets} tickets = {n:,} tickets, {r:,} ratings, "
              f"{a.days * 20:,} help requests (filled in {time.perf_counter() - t:.0f} s)\n")
        print(table("SQLite (the hub's engine: WAL, synchronous NORMAL)",
                    run_queries(engine, days, a.runs)))
        engine.dispose()
    if a.postgres:
        from ..testkit.testbed import Postgres

        with Postgres() as pg:
            engine = db.open_database(pg.url)
            fill(engine, days, a.tickets)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("ANALYZE")
            print()
            print(table("PostgreSQL (private server, fsync off)",
                        run_queries(engine, days, a.runs)))
            engine.dispose()
    print()
    print(table("In memory (web/floor.summary, on every live update of the dashboard)",
                floor_summaries(int(a.tickets * 0.3), a.days, min(a.runs, 50))))
    if a.state_days:
        print(f"\nThe hub's memory after each closed day ({a.tickets:,} tickets a day through "
              f"the real app; a day leaves memory at the next day's first record)")
        print(state_by_day(a.state_days, a.tickets))


if __name__ == "__main__":
    main()
