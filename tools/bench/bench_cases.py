"""The back office's case pages with a year of cases (issue 17: case page and department
queue p99 <= 50 ms).

    python -m onewindow.tools.bench.bench_cases [--days 250] [--per-day 200] [--runs 200]

Fills a fresh SQLite database, opened as the hub opens its own (hub/store/db.py), with a
year of promised cases through the real history code (hub/store/history.py
`History.write`: each day's archived cases and case events as the hub's day close writes
them): `--days` working days of `--per-day` cases over the sample catalog's promised items
and its 12 departments. Each case is accepted, 5 % returned for a material and resubmitted,
2 % reassigned, approved by its promised day or a little late, and handed over 0-8 days
later; those still unfinished at the end stay in the core's memory (open, returned, ready),
as a running hub holds them. Then it times, `--runs` times each, through the staff pages
of the real web app in process (Starlette's TestClient, logged in):

* the department queue: GET /cases as a back-office user of the busiest department (its
  cases in memory, its deadlines, its last 30 days of archived cases by SQL),
* the same for a supervisor filtering one department, and unfiltered (every department),
* one case's page: GET /cases/{case} of an archived case (its row and steps by SQL) and of
  one in memory,
* and, alone, the SQL of a department's closed list (History.closed_cases).

The garbage collector runs under the hub's policy (hub/gcpolicy.py). Prints a table
(p50/p99 ms); the target is p99 <= 50 ms per page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from ...hub.store import history as h
from .bench_history import table, timed, working_days

PASSWORD = "bench-password-1"


def year_of_cases(catalog: Any, calendar: Any, days: list[dt.date], per_day: int,
                  today: dt.date, seed: int = 17) -> tuple[dict[str, h.DayFacts], list[Any]]:
    """(day -> the facts its close writes: cases archived, case events; the cases still in
    memory at `today`)."""
    from ...hub.core.model import Case

    rng = random.Random(seed)
    promised = [i for i in catalog.items.values() if i.kind == "promised"]
    depts = list(catalog.departments)
    facts: dict[str, h.DayFacts] = {}
    held: list[Case] = []

    def day_of(at: float) -> str:
        return calendar.local_date(at).strftime("%Y%m%d")

    def at_on(d: dt.date, hour: float) -> float:
        midnight = dt.datetime.combine(d, dt.time(0), calendar.tz).timestamp()
        return midnight + hour * 3600

    def note(at: float, row: dict[str, Any]) -> None:
        k = day_of(at)
        if k not in facts:
            facts[k] = h.DayFacts(k, h.day_summary(k, []))
        facts[k].case_events.append(row)

    now = at_on(today, 12)
    for d in days:
        for i in range(per_day):
            item = rng.choice(promised)
            opened = at_on(d, 9 + 8 * i / per_day)
            cid = f"{d.strftime('%Y%m%d')}-{item.prefix}{i:03d}"
            due = calendar.add_workdays(d, item.promised_days)
            k = Case(cid, cid, item.id, opened, due.isoformat(), f"tok{rng.randrange(20000)}",
                     department=item.approver)
            steps = [(opened, "accepted", "clerk", item.approver)]
            t = opened
            if rng.random() < 0.05:  # returned for a material, resubmitted the next day
                t += 86400
                k.return_reason, k.return_materials = "材料不全", (0,) if item.materials else ()
                steps += [(t, "returned", "back", k.department),
                          (t + 86400, "resubmitted", "clerk", k.department)]
                t += 86400
            if rng.random() < 0.02:
                k.department = rng.choice(depts)
                steps.append((t + 3600, "reassigned", "back", k.department))
            approve = at_on(calendar.add_workdays(due, -1 if rng.random() < 0.7 else 2)
                            if item.promised_days > 1 else due, 10)
            approve = max(approve, t + 7200)
            handed = approve + rng.uniform(0, 8) * 86400
            steps += [(approve, "approved", "back", k.department),
                      (handed, "handed_over", rng.choice(["card", "pickup"]), k.department)]
            for at, action, by, dept in steps:
                if at >= now:
                    break
                note(at, {"case": cid, "at": at, "action": action, "day": day_of(at),
                          "item": item.id if action == "accepted" else None,
                          "clerk": by if action == "accepted" else None, "by": by,
                          "department": dept})
                if action == "returned":
                    k.state = "returned"
                elif action == "resubmitted":
                    k.state = "open"
                elif action == "approved":
                    k.state, k.ready_at = "ready", at
                elif action == "handed_over":
                    k.state, k.closed_at, k.handed_by = "closed", at, by
            if k.state == "closed" and day_of(k.closed_at or now) < today.strftime("%Y%m%d"):
                closing = day_of(k.closed_at or now)
                facts[closing].cases.append({**k.to_dict(), "day": closing})
            else:
                held.append(k)
    return facts, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--per-day", type=int, default=200)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    logging.getLogger("onewindow.hub").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from argon2 import PasswordHasher

    from ...hub.app import HubApp
    from ...hub.catalog import load_catalog
    from ...hub.core.centre import Centre
    from ...hub.core.centre_config import CentreConfig, WindowSpec
    from ...hub.devices import Registry
    from ...hub.store.accounts import Accounts
    from ...hub.store.files import FileStore
    from ...hub.store.journal import Journal
    from ...hub.web.app import create_app
    from ...hub.web.port import MemoryPort
    from ...hub.web.site import Site

    catalog = load_catalog(None)
    centre = Centre(catalog, CentreConfig("bench", tuple(WindowSpec(n) for n in range(1, 9))))
    today = dt.date(2026, 12, 4)
    days = working_days(a.days, today - dt.timedelta(days=1))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'hub.db'}"
        journal = Journal(url)
        hist = h.History(journal.engine)
        t0 = time.perf_counter()
        facts, held = year_of_cases(catalog, centre.calendar, days, a.per_day, today)
        hist.write([facts[k] for k in sorted(facts)])  # as the day closes hand them over
        with journal.engine.connect() as conn:
            from sqlalchemy import func, select

            n_cases = conn.execute(select(func.count()).select_from(h.cases)).scalar()
            n_events = conn.execute(select(func.count()).select_from(h.case_events)).scalar()
        fill_s = time.perf_counter() - t0
        centre.cases = {k.id: k for k in held}
        by_dept: dict[str, int] = defaultdict(int)
        for k in held:
            by_dept[k.department] += 1
        busiest = max(by_dept, key=lambda d: by_dept[d])
        hub = HubApp(centre, Registry([]), "bench")
        hub.case_archive = hist
        clock = dt.datetime.combine(today, dt.time(12), centre.calendar.tz).timestamp()

        class Port(MemoryPort):  # the pages read the history tables of the journal's db
            pass

        port = Port(hub, lambda: clock)
        port.journal = journal
        site = Site(hub, port, lambda: clock)
        site.accounts = Accounts(url, PasswordHasher(time_cost=1, memory_cost=8,
                                                     parallelism=1))
        site.accounts.add("back1", PASSWORD, "backoffice", department=busiest, now=clock)
        site.accounts.add("sup1", PASSWORD, "supervisor", now=clock)
        app = create_app(hub, FileStore(Path(tmp) / "files"), site=site, clock=lambda: clock)

        def client(user: str) -> Any:
            cl = TestClient(app)
            cl.get("/login")
            r = cl.post("/login", data={"username": user, "password": PASSWORD,
                                        "csrf": cl.cookies["ow_csrf"], "next": ""},
                        follow_redirects=False)
            assert r.status_code == 303, r.text
            return cl

        back, sup = client("back1"), client("sup1")
        page = {"accept": "text/html"}
        archived = next(f.cases[0]["id"] for f in reversed([facts[k] for k in sorted(facts)])
                        if f.cases and f.cases[0]["department"] == busiest)
        in_memory = next(k.id for k in held if k.department == busiest)
        # The year's rows are in SQL now, not in a hub's memory; and the garbage collector
        # as the hub runs it (hub/gcpolicy.py: what it lives with frozen, survivors too).
        del facts
        from ...hub.gcpolicy import Collector

        gc_policy = Collector(lambda: centre.day)
        gc_policy.start()

        def get(cl: Any, path: str) -> None:
            r = cl.get(path, headers=page)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])

        items = [i.id for i in catalog.items.values() if i.approver == busiest]
        last, first = today.strftime("%Y%m%d"), (today - dt.timedelta(days=30)).strftime(
            "%Y%m%d")
        rows = [
            (f"department queue: GET /cases as {busiest}'s back office",
             *timed(lambda: get(back, "/cases"), a.runs)),
            ("supervisor, one department: GET /cases?department=",
             *timed(lambda: get(sup, f"/cases?department={busiest}"), a.runs)),
            ("supervisor, every department: GET /cases",
             *timed(lambda: get(sup, "/cases"), a.runs)),
            ("case page: GET /cases/{case}, archived (SQL)",
             *timed(lambda: get(back, f"/cases/{archived}"), a.runs)),
            ("case page: GET /cases/{case}, in memory",
             *timed(lambda: get(back, f"/cases/{in_memory}"), a.runs)),
            ("SQL: a department's closed list, 30 days (one page)",
             *timed(lambda: hist.closed_cases(first, last, 50, 0, busiest, items), a.runs)),
        ]
        print(f"a year of cases: {a.days} working days x {a.per_day} = {n_cases:,} archived in "
              f"history_cases, {n_events:,} case events, {len(held):,} in memory "
              f"({by_dept[busiest]:,} at {busiest}); filled through History.write in "
              f"{fill_s:.0f} s\n")
        print(table("SQLite (the hub's engine), the staff pages in process", rows))
        gc_policy.stop()
        site.accounts.close()
        journal.close()


if __name__ == "__main__":
    main()
