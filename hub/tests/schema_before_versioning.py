"""Databases as the hub created them before its schema had a version (hub/store/db.py).

The statements are the very DDL the hub emitted when it opened a new database at commit
9cb725a (the last one before versioning): captured from `Journal`, `History`,
`SnapshotStore`, `Fleet` and `Accounts` opening a fresh SQLite file and a fresh PostgreSQL
database, each table created by `MetaData.create_all`, and a `meta` row `schema` = 1
written by the journal. Frozen here as text, so the test of the upgrade keeps meaning
"a database of the old code" however the code and SQLAlchemy's DDL compiler change.

Earlier commits created fewer tables, and two of them in another shape (see `SHAPES`).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

SQLITE = (
    'CREATE TABLE journal (pos INTEGER NOT NULL, ts FLOAT NOT NULL, dev VARCHAR(64), '
    'seq BIGINT, op VARCHAR(32) NOT NULL, body TEXT NOT NULL, PRIMARY KEY (pos))',
    'CREATE TABLE meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, '
    'PRIMARY KEY ("key"))',
    'CREATE TABLE snapshot (pos INTEGER NOT NULL, journal_ts FLOAT NOT NULL, '
    'day VARCHAR(8) NOT NULL, version INTEGER NOT NULL, codec VARCHAR(16) NOT NULL, '
    'sha256 VARCHAR(64) NOT NULL, data BLOB NOT NULL, PRIMARY KEY (pos))',
    'CREATE TABLE history_days (day VARCHAR(8) NOT NULL, tickets INTEGER NOT NULL, '
    'served INTEGER NOT NULL, no_shows INTEGER NOT NULL, waits INTEGER NOT NULL, '
    'wait_sum_min FLOAT NOT NULL, wait_p90_min FLOAT, one_window INTEGER NOT NULL, '
    'PRIMARY KEY (day))',
    'CREATE TABLE history_tickets (id VARCHAR(32) NOT NULL, day VARCHAR(8) NOT NULL, '
    'item VARCHAR(64) NOT NULL, priority VARCHAR(16) NOT NULL, '
    'state VARCHAR(16) NOT NULL, issued_at FLOAT NOT NULL, first_call_at FLOAT, '
    'window INTEGER, wait_min FLOAT, one_window BOOLEAN NOT NULL, '
    'extra_items VARCHAR(1024) NOT NULL, PRIMARY KEY (id))',
    'CREATE INDEX ix_history_tickets_day ON history_tickets (day)',
    'CREATE TABLE history_ratings (ticket VARCHAR(32) NOT NULL, day VARCHAR(8) NOT NULL, '
    'score INTEGER NOT NULL, window INTEGER NOT NULL, clerk VARCHAR(64), '
    'at FLOAT NOT NULL, PRIMARY KEY (ticket))',
    'CREATE INDEX ix_history_ratings_day ON history_ratings (day, score, clerk)',
    'CREATE TABLE history_help (pos INTEGER NOT NULL, day VARCHAR(8) NOT NULL, '
    'window INTEGER NOT NULL, clerk VARCHAR(64), at FLOAT NOT NULL, answered_at FLOAT, '
    '"by" VARCHAR(64), PRIMARY KEY (pos))',
    'CREATE INDEX ix_history_help_day ON history_help (day)',
    'CREATE TABLE history_services (ticket VARCHAR(32) NOT NULL, '
    'day VARCHAR(8) NOT NULL, window INTEGER NOT NULL, clerk VARCHAR(64) NOT NULL, '
    'items VARCHAR(1024) NOT NULL, start FLOAT NOT NULL, "end" FLOAT NOT NULL, '
    'PRIMARY KEY (ticket))',
    'CREATE INDEX ix_history_services_day ON history_services (day)',
    'CREATE TABLE history_case_events ("case" VARCHAR(32) NOT NULL, at FLOAT NOT NULL, '
    'action VARCHAR(16) NOT NULL, day VARCHAR(8) NOT NULL, item VARCHAR(64), '
    'clerk VARCHAR(64), PRIMARY KEY ("case", at, action))',
    'CREATE INDEX ix_history_case_events_day ON history_case_events (day)',
    'CREATE TABLE history_cases (id VARCHAR(32) NOT NULL, ticket VARCHAR(32) NOT NULL, '
    'item VARCHAR(64) NOT NULL, opened_at FLOAT NOT NULL, due_day VARCHAR(10) NOT NULL, '
    'resident VARCHAR(128), state VARCHAR(16) NOT NULL, closed_at FLOAT, '
    'day VARCHAR(8) NOT NULL, PRIMARY KEY (id))',
    'CREATE INDEX ix_history_cases_day ON history_cases (day)',
    'CREATE INDEX ix_history_cases_resident ON history_cases (resident)',
    'CREATE TABLE fleet_devices (id VARCHAR(32) NOT NULL, role VARCHAR(16) NOT NULL, '
    'window INTEGER, board VARCHAR(64) NOT NULL, generation INTEGER NOT NULL, '
    'revoked BOOLEAN NOT NULL, created FLOAT NOT NULL, updated FLOAT NOT NULL, '
    'PRIMARY KEY (id))',
    'CREATE TABLE fleet_secret (id INTEGER NOT NULL, secret VARCHAR(128) NOT NULL, '
    'created FLOAT NOT NULL, PRIMARY KEY (id))',
    'CREATE TABLE staff_accounts (username VARCHAR(64) NOT NULL, '
    'display VARCHAR(64) NOT NULL, role VARCHAR(16) NOT NULL, window INTEGER, '
    'hash VARCHAR(256) NOT NULL, active BOOLEAN NOT NULL, created FLOAT NOT NULL, '
    'PRIMARY KEY (username))',
    'CREATE TABLE staff_sessions (token VARCHAR(64) NOT NULL, '
    'username VARCHAR(64) NOT NULL, window INTEGER, created FLOAT NOT NULL, '
    'seen FLOAT NOT NULL, PRIMARY KEY (token))',
    'CREATE INDEX ix_staff_sessions_username ON staff_sessions (username)',
)
POSTGRESQL = (
    'CREATE TABLE journal (pos BIGINT NOT NULL, ts FLOAT NOT NULL, dev VARCHAR(64), '
    'seq BIGINT, op VARCHAR(32) NOT NULL, body TEXT NOT NULL, PRIMARY KEY (pos))',
    'CREATE TABLE meta (key VARCHAR(64) NOT NULL, value TEXT NOT NULL, '
    'PRIMARY KEY (key))',
    'CREATE TABLE snapshot (pos BIGINT NOT NULL, journal_ts FLOAT NOT NULL, '
    'day VARCHAR(8) NOT NULL, version INTEGER NOT NULL, codec VARCHAR(16) NOT NULL, '
    'sha256 VARCHAR(64) NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (pos))',
    'CREATE TABLE history_days (day VARCHAR(8) NOT NULL, tickets INTEGER NOT NULL, '
    'served INTEGER NOT NULL, no_shows INTEGER NOT NULL, waits INTEGER NOT NULL, '
    'wait_sum_min FLOAT NOT NULL, wait_p90_min FLOAT, one_window INTEGER NOT NULL, '
    'PRIMARY KEY (day))',
    'CREATE TABLE history_tickets (id VARCHAR(32) NOT NULL, day VARCHAR(8) NOT NULL, '
    'item VARCHAR(64) NOT NULL, priority VARCHAR(16) NOT NULL, '
    'state VARCHAR(16) NOT NULL, issued_at FLOAT NOT NULL, first_call_at FLOAT, '
    '"window" INTEGER, wait_min FLOAT, one_window BOOLEAN NOT NULL, '
    'extra_items VARCHAR(1024) NOT NULL, PRIMARY KEY (id))',
    'CREATE INDEX ix_history_tickets_day ON history_tickets (day)',
    'CREATE TABLE history_ratings (ticket VARCHAR(32) NOT NULL, day VARCHAR(8) NOT NULL, '
    'score INTEGER NOT NULL, "window" INTEGER NOT NULL, clerk VARCHAR(64), '
    'at FLOAT NOT NULL, PRIMARY KEY (ticket))',
    'CREATE INDEX ix_history_ratings_day ON history_ratings (day, score, clerk)',
    'CREATE TABLE history_help (pos BIGINT NOT NULL, day VARCHAR(8) NOT NULL, '
    '"window" INTEGER NOT NULL, clerk VARCHAR(64), at FLOAT NOT NULL, answered_at FLOAT, '
    'by VARCHAR(64), PRIMARY KEY (pos))',
    'CREATE INDEX ix_history_help_day ON history_help (day)',
    'CREATE TABLE history_services (ticket VARCHAR(32) NOT NULL, '
    'day VARCHAR(8) NOT NULL, "window" INTEGER NOT NULL, clerk VARCHAR(64) NOT NULL, '
    'items VARCHAR(1024) NOT NULL, start FLOAT NOT NULL, "end" FLOAT NOT NULL, '
    'PRIMARY KEY (ticket))',
    'CREATE INDEX ix_history_services_day ON history_services (day)',
    'CREATE TABLE history_case_events ("case" VARCHAR(32) NOT NULL, at FLOAT NOT NULL, '
    'action VARCHAR(16) NOT NULL, day VARCHAR(8) NOT NULL, item VARCHAR(64), '
    'clerk VARCHAR(64), PRIMARY KEY ("case", at, action))',
    'CREATE INDEX ix_history_case_events_day ON history_case_events (day)',
    'CREATE TABLE history_cases (id VARCHAR(32) NOT NULL, ticket VARCHAR(32) NOT NULL, '
    'item VARCHAR(64) NOT NULL, opened_at FLOAT NOT NULL, due_day VARCHAR(10) NOT NULL, '
    'resident VARCHAR(128), state VARCHAR(16) NOT NULL, closed_at FLOAT, '
    'day VARCHAR(8) NOT NULL, PRIMARY KEY (id))',
    'CREATE INDEX ix_history_cases_day ON history_cases (day)',
    'CREATE INDEX ix_history_cases_resident ON history_cases (resident)',
    'CREATE TABLE fleet_devices (id VARCHAR(32) NOT NULL, role VARCHAR(16) NOT NULL, '
    '"window" INTEGER, board VARCHAR(64) NOT NULL, generation INTEGER NOT NULL, '
    'revoked BOOLEAN NOT NULL, created FLOAT NOT NULL, updated FLOAT NOT NULL, '
    'PRIMARY KEY (id))',
    'CREATE TABLE fleet_secret (id INTEGER NOT NULL, secret VARCHAR(128) NOT NULL, '
    'created FLOAT NOT NULL, PRIMARY KEY (id))',
    'CREATE TABLE staff_accounts (username VARCHAR(64) NOT NULL, '
    'display VARCHAR(64) NOT NULL, role VARCHAR(16) NOT NULL, "window" INTEGER, '
    'hash VARCHAR(256) NOT NULL, active BOOLEAN NOT NULL, created FLOAT NOT NULL, '
    'PRIMARY KEY (username))',
    'CREATE TABLE staff_sessions (token VARCHAR(64) NOT NULL, '
    'username VARCHAR(64) NOT NULL, "window" INTEGER, created FLOAT NOT NULL, '
    'seen FLOAT NOT NULL, PRIMARY KEY (token))',
    'CREATE INDEX ix_staff_sessions_username ON staff_sessions (username)',
)

# What the hubs of earlier commits created differently.
_STAGE8_ADDED = ("history_services", "history_case_events", "history_cases")
_EARLIER = {  # in the 913d84c shape
    "CREATE TABLE history_tickets": (", extra_items VARCHAR(1024) NOT NULL", ""),
    "CREATE INDEX ix_history_ratings_day": ("(day, score, clerk)", "(day)"),
}
SHAPES = {
    "9cb725a": "the last commit before versioning: every table",
    "913d84c": "past days' first tables: history_tickets without extra_items, the ratings "
               "index on day alone; no services, case events or archived cases",
    "091ed27": "stage 1: the journal and meta only",
}


def _table(stmt: str) -> str:
    return stmt.split(" ON ")[1].split()[0] if stmt.startswith("CREATE INDEX") \
        else stmt.split()[2]


def statements(dialect: str, shape: str = "9cb725a") -> list[str]:
    """The DDL the hub of commit `shape` ran on a new database of `dialect`."""
    if shape not in SHAPES:
        raise ValueError(f"no shape {shape!r}")
    out = []
    for stmt in {"sqlite": SQLITE, "postgresql": POSTGRESQL}[dialect]:
        table = _table(stmt)
        if shape == "091ed27" and table not in ("journal", "meta"):
            continue
        if shape == "913d84c":
            if table in _STAGE8_ADDED:
                continue
            for start, (new, old) in _EARLIER.items():
                if stmt.startswith(start):
                    assert new in stmt, stmt  # the frozen text still holds what it replaces
                    stmt = stmt.replace(new, old)
        out.append(stmt)
    return out


def create(engine: Engine, shape: str = "9cb725a") -> None:
    """A new database as the hub of commit `shape` left it on opening: its tables and the
    journal's `meta` row `schema` = 1."""
    with engine.begin() as conn:
        for stmt in statements(engine.dialect.name, shape):
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql("INSERT INTO meta (\"key\", value) VALUES ('schema', '1')")


__all__ = ["POSTGRESQL", "SHAPES", "SQLITE", "create", "statements"]
