"""`onewindow city-purge` (hub/city/citydb.py purge_residents): the city database's
residents' tokens past retention removed, recorded, idempotent; read from outside, in the
files of a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg

from onewindow.hub.city import citydb

from .test_backup import _pg_database, pg_server  # noqa: F401 - a fixture
from .test_retention import onewindow

OLD_TOKEN = "0ld" + "a" * 21  # the city's tokens are 24 hex-ish characters
NEW_TOKEN = "n3w" + "b" * 21


def ticket(day: dt.date, pos: int, resident: str | None) -> dict:
    return {"v": 1, "centre": "c1", "pos": pos, "part": 0, "kind": "ticket",
            "day": day.isoformat(), "at": 1.0e9 + pos, "ev": "issued",
            "ticket": f"{day:%Y%m%d}-A{pos:03d}", "item": "SOC-1", "priority": "normal",
            "booked": False, "resident": resident}


def table_bytes(conn) -> bytes:
    """The files of every ticket_events partition (after a checkpoint)."""
    conn.execute("CHECKPOINT")
    data = conn.execute("SHOW data_directory").fetchone()[0]
    out = b""
    for (rel,) in conn.execute("SELECT pg_relation_filepath(oid) FROM pg_class "
                               "WHERE relname LIKE 'ticket_events%%' AND relkind = 'r'"):
        path = Path(data, rel)
        out += b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return out


def test_city_purge_removes_old_tokens_records_each_run_and_a_second_run_changes_nothing(
        pg_server):  # noqa: F811
    url = _pg_database(pg_server, "citypurge").replace("postgresql+psycopg:", "postgresql:")
    today = dt.datetime.now(dt.UTC).date()
    old, recent = today - dt.timedelta(days=200), today - dt.timedelta(days=10)
    with psycopg.connect(url, autocommit=True) as conn:
        citydb.create(conn)
        assert citydb.write(conn, [ticket(old, 1, OLD_TOKEN), ticket(old, 2, None),
                                   ticket(recent, 3, NEW_TOKEN)], set(), set()) == 3
        raw = table_bytes(conn)
        assert OLD_TOKEN.encode() in raw and NEW_TOKEN.encode() in raw

    done = onewindow("city-purge", "--db", url, "--resident-days", "180", "--compact")
    assert done.returncode == 0, done.stderr
    assert "1 tokens removed" in done.stdout, done.stdout
    with psycopg.connect(url, autocommit=True) as conn:
        raw = table_bytes(conn)
        assert OLD_TOKEN.encode() not in raw, "a purged token is still readable on disk"
        assert NEW_TOKEN.encode() in raw
        rows = conn.execute("SELECT pos, resident FROM ticket_events ORDER BY pos").fetchall()
        assert rows == [(1, None), (2, None), (3, NEW_TOKEN)]
        [audit] = conn.execute("SELECT before, resident_days, rows_changed, partitions, "
                               "compacted FROM city_purges").fetchall()
        assert audit == (today - dt.timedelta(days=180), 180, 1, 1, True)

    again = onewindow("city-purge", "--db", url, "--resident-days", "180")
    assert again.returncode == 0, again.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT pos, resident FROM ticket_events ORDER BY pos"
                            ).fetchall() == rows
        audits = conn.execute("SELECT rows_changed, partitions, compacted FROM city_purges "
                              "ORDER BY at").fetchall()
        assert audits == [(1, 1, True), (0, 0, False)]

    for args, says in ((["--resident-days", "-1", "--db", url], "--resident-days"),
                       (["--resident-days", "180"], "--db"),
                       (["--db", url, "--resident-days", "soon"], "--resident-days")):
        out = onewindow("city-purge", *args)
        lines = out.stderr.strip().splitlines()
        assert out.returncode != 0 and len(lines) == 1 and says in lines[0], out.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM city_purges").fetchone()[0] == 2
