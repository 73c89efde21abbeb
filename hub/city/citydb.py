"""The city database (PostgreSQL): what every centre exported, partitioned by date and
centre with native declarative partitioning, written idempotently.

Each record table is ``PARTITION BY RANGE (day)`` with one partition per month, and each
month ``PARTITION BY HASH (centre)`` (`HASH_PARTITIONS`, 8 by default): a month's rows of a
centre live in one small table, a query for one centre or one district's month touches only
its partitions, and an old month leaves with one DROP (retention). Months are created as
the first row of a month arrives (`ensure_months`, under an advisory lock, so several
ingesters may run). The primary key (centre, day, pos, part) is the record's identity, the
exporter's ``Nats-Msg-Id``: every insert is ``ON CONFLICT DO NOTHING``, so a record
delivered twice is stored once.

Growing past one server: more hash partitions per month for new months (the modulus is per
month), a streaming read replica (or several) for the dashboard and the monthly report
(they only read), and only if one primary cannot take the writes any more, Citus
distributing these same tables by ``centre`` (the partition key is already the
distribution key). No sharding of our own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

HASH_PARTITIONS = 8

# table -> (columns after the key, sql types); the key (centre, day, pos, part) and `at`
# come first in every record table.
TABLES: dict[str, list[tuple[str, str]]] = {
    "ticket_events": [("ev", "text NOT NULL"), ("ticket", "text NOT NULL"), ("item", "text"),
                      ("priority", "text"), ("win", "integer"), ("clerk", "text"),
                      ("wait_min", "real"), ("recall", "boolean"), ("booked", "boolean"),
                      ("resident", "text"), ("started", "double precision"),
                      ("ended", "double precision")],
    "ratings": [("ticket", "text NOT NULL"), ("score", "smallint NOT NULL"),
                ("win", "integer"), ("clerk", "text")],
    "case_events": [("case_id", "text NOT NULL"), ("action", "text NOT NULL"),
                    ("item", "text"), ("department", "text"), ("by_whom", "text")],
    "bookings": [("counts", "jsonb NOT NULL")],
    "day_summaries": [("tickets", "integer"), ("served", "integer"), ("no_shows", "integer"),
                      ("waits", "integer"), ("wait_sum_min", "real"),
                      ("wait_p90_min", "real"), ("one_window", "integer"),
                      ("one_trip", "integer"), ("returned", "integer"),
                      ("ratings", "integer"), ("rating_sum", "integer"),
                      ("satisfied", "integer"), ("cases", "integer"), ("doc", "jsonb")],
}
KIND_TABLE = {"ticket": "ticket_events", "rating": "ratings", "case": "case_events",
              "booking": "bookings", "day": "day_summaries"}


def schema_sql() -> list[str]:
    out = [
        "CREATE TABLE IF NOT EXISTS city_centres (centre text PRIMARY KEY, name text, "
        "district text, added_at timestamptz NOT NULL DEFAULT now(), holidays text)",
        # A database made before the column: the centre's holiday calendar (a code of
        # hub/forecast/calendars.py; NULL: mainland China), for the report's due days.
        "ALTER TABLE city_centres ADD COLUMN IF NOT EXISTS holidays text",
        "CREATE TABLE IF NOT EXISTS city_live (centre text PRIMARY KEY, pos bigint NOT NULL, "
        "at double precision NOT NULL, doc jsonb NOT NULL, "
        "received_at double precision NOT NULL)",
        "CREATE TABLE IF NOT EXISTS city_users (username text PRIMARY KEY, "
        "pw_hash text NOT NULL, role text NOT NULL CHECK (role IN ('city', 'district')), "
        "district text, CHECK (role = 'city' OR district IS NOT NULL))",
        # Each centre-day's running counts, raised by new ticket events only (write).
        "CREATE TABLE IF NOT EXISTS city_day_counts (centre text NOT NULL, day date NOT NULL, "
        "issued integer NOT NULL, served integer NOT NULL, waits integer NOT NULL, "
        "wait_sum_min double precision NOT NULL, PRIMARY KEY (centre, day))",
        "CREATE TABLE IF NOT EXISTS city_months (tbl text NOT NULL, month date NOT NULL, "
        "PRIMARY KEY (tbl, month))",
        # Each run of the residents' retention (purge_residents): the audit of what was
        # removed and when, as a hub journals its own purge.
        "CREATE TABLE IF NOT EXISTS city_purges (at timestamptz NOT NULL DEFAULT now(), "
        "before date NOT NULL, resident_days integer, rows_changed bigint NOT NULL, "
        "partitions integer NOT NULL, compacted boolean NOT NULL)",
        "CREATE TABLE IF NOT EXISTS device_health (centre text NOT NULL, day date NOT NULL, "
        "at double precision NOT NULL, online integer, total integer, alerts integer, "
        "PRIMARY KEY (centre, day, at)) PARTITION BY RANGE (day)",
    ]
    for table, cols in TABLES.items():
        body = ", ".join(f"{c} {t}" for c, t in cols)
        out.append(
            f"CREATE TABLE IF NOT EXISTS {table} (centre text NOT NULL, day date NOT NULL, "
            f"pos bigint NOT NULL, part integer NOT NULL, at double precision NOT NULL, "
            f"{body}, PRIMARY KEY (centre, day, pos, part)) PARTITION BY RANGE (day)")
    out.append("CREATE INDEX IF NOT EXISTS ticket_events_ticket ON ticket_events "
               "(centre, ticket)")
    out.append("CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id)")
    return out


PARTITIONED = [*TABLES, "device_health"]


def create(conn: Any) -> None:
    """The schema, idempotently (`conn`: a psycopg connection)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(2020)")
        for sql in schema_sql():
            conn.execute(sql)


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(m: dt.date) -> dt.date:
    return (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def ensure_months(conn: Any, months: Iterable[dt.date], known: set[dt.date],
                  modulus: int = HASH_PARTITIONS) -> None:
    """Each table's partition of each month in `months` (first days), and its hash
    partitions; `known`: months already made (updated)."""
    todo = sorted(set(months) - known)
    if not todo:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(2021)")
        have = {r[0] for r in conn.execute(
            "SELECT month FROM city_months WHERE tbl = 'ticket_events'")}
        for m in todo:
            if m in have:
                continue
            end = next_month(m)
            for table in PARTITIONED:
                name = f"{table}_{m:%Y_%m}"
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{m.isoformat()}') TO ('{end.isoformat()}') "
                    f"PARTITION BY HASH (centre)")
                for r in range(modulus):
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {name}_h{r} PARTITION OF {name} "
                        f"FOR VALUES WITH (MODULUS {modulus}, REMAINDER {r})")
                conn.execute("INSERT INTO city_months VALUES (%s, %s) ON CONFLICT DO NOTHING",
                             (table, m))
    known.update(todo)


def _row(rec: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """(table, values) of one city record."""
    kind = rec.get("kind")
    key = (rec["centre"], dt.date.fromisoformat(rec["day"]), int(rec["pos"]),
           int(rec.get("part", 0)), float(rec["at"]))
    table = KIND_TABLE[str(kind)]
    if table == "ticket_events":
        vals: tuple[Any, ...] = (
            rec["ev"], rec["ticket"], rec.get("item"), rec.get("priority"), rec.get("window"),
            rec.get("clerk"), rec.get("wait_min"), rec.get("recall"), rec.get("booked"),
            rec.get("resident"), rec.get("start"), rec.get("end"))
    elif table == "ratings":
        vals = (rec["ticket"], int(rec["score"]), rec.get("window"), rec.get("clerk"))
    elif table == "case_events":
        vals = (rec["case"], rec["action"], rec.get("item"), rec.get("department"),
                rec.get("by"))
    elif table == "bookings":
        vals = (json.dumps({k: v for k, v in rec.items() if k not in _ENVELOPE}),)
    else:
        doc = json.dumps({k: v for k, v in rec.items() if k not in _ENVELOPE})
        vals = (*(rec.get(c) for c, _ in TABLES["day_summaries"][:-1]), doc)
    return table, key + vals


_ENVELOPE = {"v", "centre", "pos", "part", "kind", "day", "at"}


def _insert_sql(table: str) -> str:
    cols = ["centre", "day", "pos", "part", "at", *(c for c, _ in TABLES[table])]
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
            f"({', '.join(['%s'] * len(cols))}) ON CONFLICT DO NOTHING")


def write(conn: Any, recs: Sequence[dict[str, Any]], known_months: set[dt.date],
          known_centres: set[str]) -> int:
    """Store `recs` in one transaction; the number of rows new to the database."""
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    months = set()
    centres = set()
    for rec in recs:
        if rec.get("kind") not in KIND_TABLE:
            continue  # the city features' own kinds (cases across centres, documents...)
        table, row = _row(rec)
        by_table.setdefault(table, []).append(row)
        months.add(month_of(row[1]))
        centres.add(row[0])
    ensure_months(conn, months, known_months)
    new = 0
    with conn.transaction():
        for c in centres - known_centres:
            conn.execute("INSERT INTO city_centres (centre) VALUES (%s) "
                         "ON CONFLICT DO NOTHING", (c,))
        with conn.cursor() as cur:
            for table, rows in by_table.items():
                if table == "ticket_events":
                    new += _insert_tickets(cur, rows)
                else:
                    cur.executemany(_insert_sql(table), rows)
                    new += max(cur.rowcount, 0)
    known_centres.update(centres)
    return new


# The columns' types for the array parameters of _insert_tickets (`unnest`).
_ARRAY_TYPES = {"centre": "text", "day": "date", "pos": "bigint", "part": "integer",
                "at": "double precision",
                **{c: t.removesuffix(" NOT NULL") for c, t in TABLES["ticket_events"]}}


def _insert_tickets(cur: Any, rows: list[tuple[Any, ...]]) -> int:
    """Ticket events, and today's counters of each centre-day (city_day_counts: issued,
    served, waits) raised by the rows that were new only, in the same statement: a record
    delivered twice is neither stored nor counted twice, and the dashboard reads one row
    per centre instead of scanning the day's events.

    The rows go as one array per column (``unnest``), so the statement's text is the same
    whatever the batch's size: psycopg parses it once (it re-parses any statement over
    4 KB on every execution, as a VALUES list of 1000 rows of 17 parameters was: most of
    the batch's CPU time) and the server prepares it once, and a batch is one statement
    however large (no 65535-parameter limit)."""
    cols = ["centre", "day", "pos", "part", "at", *(c for c, _ in TABLES["ticket_events"])]
    arrays = ", ".join(f"%s::{_ARRAY_TYPES[c]}[]" for c in cols)
    cur.execute(
        f"WITH new AS (INSERT INTO ticket_events ({', '.join(cols)}) "
        f"SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING "
        "RETURNING centre, day, ev, wait_min), "
        "c AS (INSERT INTO city_day_counts AS k (centre, day, issued, served, waits, "
        "wait_sum_min) SELECT centre, day, count(*) FILTER (WHERE ev = 'issued'), "
        "count(*) FILTER (WHERE ev = 'done'), count(wait_min), "
        "coalesce(sum(wait_min), 0) FROM new GROUP BY centre, day "
        "ON CONFLICT (centre, day) DO UPDATE SET issued = k.issued + excluded.issued, "
        "served = k.served + excluded.served, waits = k.waits + excluded.waits, "
        "wait_sum_min = k.wait_sum_min + excluded.wait_sum_min) "
        "SELECT count(*) FROM new",
        [list(col) for col in zip(*rows, strict=True)])
    return int(cur.fetchone()[0])


def write_live(conn: Any, docs: Sequence[dict[str, Any]], now: float,
               health_every: float, last_health: dict[str, float],
               known_months: set[dt.date]) -> None:
    """Each centre's newest floor state (a newer journal position or time wins), and a
    device-health sample per centre at most every `health_every` seconds."""
    latest: dict[str, dict[str, Any]] = {}
    for d in docs:
        c = d["centre"]
        if c not in latest or (d["pos"], d["at"]) >= (latest[c]["pos"], latest[c]["at"]):
            latest[c] = d
    samples = []
    for c, d in latest.items():
        devs = d.get("devices")
        if devs and now - last_health.get(c, 0.0) >= health_every:
            day = dt.datetime.fromtimestamp(d["at"], dt.UTC).date()
            samples.append((c, day, float(d["at"]), devs.get("online"), devs.get("total"),
                            len(d.get("alerts") or [])))
    ensure_months(conn, {month_of(s[1]) for s in samples}, known_months)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO city_live (centre, pos, at, doc, received_at) VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (centre) DO UPDATE SET pos = excluded.pos, at = excluded.at, "
            "doc = excluded.doc, received_at = excluded.received_at "
            "WHERE (excluded.pos, excluded.at) >= (city_live.pos, city_live.at)",
            [(c, d["pos"], d["at"], json.dumps(d, ensure_ascii=False), now)
             for c, d in latest.items()])
        if samples:
            cur.executemany("INSERT INTO device_health VALUES (%s,%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", samples)
    for s in samples:
        last_health[s[0]] = now


def connect(url: str) -> Any:
    """A psycopg connection from a libpq URL or SQLAlchemy's postgresql+psycopg:// one."""
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                           autocommit=True)


def forget_residents(conn: Any, before: dt.date) -> int:
    """Residents' tokens of ticket events before `before` removed (the city's retention,
    as the hubs' own purge removes theirs: docs/privacy.md); the number of rows changed.
    Partition pruning keeps it to the months concerned. Recorded in `city_purges`."""
    return purge_residents(conn, before)["rows"]


def purge_residents(conn: Any, before: dt.date, resident_days: int | None = None,
                    compact: bool = False) -> dict[str, Any]:
    """`forget_residents`, recorded as a row of `city_purges` in the same transaction (so
    a run that changed nothing is on record too, and a second run changes nothing else).
    `compact`: each partition whose rows changed is rewritten (VACUUM FULL), so the old
    row versions holding the tokens are not left readable on disk until vacuum reuses
    their space; it locks that partition while it runs. `conn`: autocommit (connect)."""
    with conn.transaction():
        parts = conn.execute(
            "WITH u AS (UPDATE ticket_events SET resident = NULL WHERE day < %s AND "
            "resident IS NOT NULL RETURNING tableoid) "
            "SELECT tableoid::regclass::text, count(*) FROM u GROUP BY 1 ORDER BY 1",
            (before,)).fetchall()
        rows = sum(int(n) for _, n in parts)
        conn.execute("INSERT INTO city_purges (before, resident_days, rows_changed, "
                     "partitions, compacted) VALUES (%s, %s, %s, %s, %s)",
                     (before, resident_days, rows, len(parts), compact and bool(parts)))
    if compact:
        for name, _ in parts:  # VACUUM cannot run inside a transaction block
            conn.execute(f"VACUUM FULL {name}")
    return {"rows": rows, "partitions": [name for name, _ in parts]}
