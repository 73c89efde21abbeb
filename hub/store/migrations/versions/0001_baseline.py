"""The schema as it stood when versioning began (commit 9cb725a): created, or completed.

A new database gets every table. A database from before versioning holds some or all of
them, as the commit that created it left them (each store created its own tables on first
use, so a table came with the first hub that had it): the missing ones are created, and
two that an early stage-8 hub created in an older shape are completed —
`history_tickets` without `extra_items` (added, "" in the existing rows: no extra items)
and `ix_history_ratings_day` on `day` alone (now on day, score, clerk). Existing rows are
not touched otherwise.

The tables are spelled out here, not taken from schema.py: a migration is what the
database was at its number, and schema.py moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _position() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables() -> list[tuple[str, list[sa.Column[object]], list[tuple[str, list[str]]]]]:
    """(name, columns, indexes) of each table, fresh objects on each call."""
    C = sa.Column
    fl, it, s, b = sa.Float, sa.Integer, sa.String, sa.Boolean
    return [
        ("journal", [
            C("pos", _position(), primary_key=True, autoincrement=False),
            C("ts", fl, nullable=False), C("dev", s(64)), C("seq", sa.BigInteger),
            C("op", s(32), nullable=False), C("body", sa.Text, nullable=False)], []),
        ("meta", [
            C("key", s(64), primary_key=True), C("value", sa.Text, nullable=False)], []),
        ("snapshot", [
            C("pos", _position(), primary_key=True, autoincrement=False),
            C("journal_ts", fl, nullable=False), C("day", s(8), nullable=False),
            C("version", it, nullable=False), C("codec", s(16), nullable=False),
            C("sha256", s(64), nullable=False), C("data", sa.LargeBinary, nullable=False)],
         []),
        ("history_days", [
            C("day", s(8), primary_key=True), C("tickets", it, nullable=False),
            C("served", it, nullable=False), C("no_shows", it, nullable=False),
            C("waits", it, nullable=False), C("wait_sum_min", fl, nullable=False),
            C("wait_p90_min", fl), C("one_window", it, nullable=False)], []),
        ("history_tickets", [
            C("id", s(32), primary_key=True), C("day", s(8), nullable=False),
            C("item", s(64), nullable=False), C("priority", s(16), nullable=False),
            C("state", s(16), nullable=False), C("issued_at", fl, nullable=False),
            C("first_call_at", fl), C("window", it), C("wait_min", fl),
            C("one_window", b, nullable=False), C("extra_items", s(1024), nullable=False)],
         [("ix_history_tickets_day", ["day"])]),
        ("history_ratings", [
            C("ticket", s(32), primary_key=True), C("day", s(8), nullable=False),
            C("score", it, nullable=False), C("window", it, nullable=False),
            C("clerk", s(64)), C("at", fl, nullable=False)],
         [("ix_history_ratings_day", ["day", "score", "clerk"])]),
        ("history_help", [
            C("pos", _position(), primary_key=True, autoincrement=False),
            C("day", s(8), nullable=False), C("window", it, nullable=False),
            C("clerk", s(64)), C("at", fl, nullable=False), C("answered_at", fl),
            C("by", s(64))],
         [("ix_history_help_day", ["day"])]),
        ("history_services", [
            C("ticket", s(32), primary_key=True), C("day", s(8), nullable=False),
            C("window", it, nullable=False), C("clerk", s(64), nullable=False),
            C("items", s(1024), nullable=False), C("start", fl, nullable=False),
            C("end", fl, nullable=False)],
         [("ix_history_services_day", ["day"])]),
        ("history_case_events", [
            C("case", s(32), primary_key=True), C("at", fl, primary_key=True),
            C("action", s(16), primary_key=True), C("day", s(8), nullable=False),
            C("item", s(64)), C("clerk", s(64))],
         [("ix_history_case_events_day", ["day"])]),
        ("history_cases", [
            C("id", s(32), primary_key=True), C("ticket", s(32), nullable=False),
            C("item", s(64), nullable=False), C("opened_at", fl, nullable=False),
            C("due_day", s(10), nullable=False), C("resident", s(128)),
            C("state", s(16), nullable=False), C("closed_at", fl),
            C("day", s(8), nullable=False)],
         [("ix_history_cases_day", ["day"]), ("ix_history_cases_resident", ["resident"])]),
        ("fleet_devices", [
            C("id", s(32), primary_key=True), C("role", s(16), nullable=False),
            C("window", it), C("board", s(64), nullable=False),
            C("generation", it, nullable=False), C("revoked", b, nullable=False),
            C("created", fl, nullable=False), C("updated", fl, nullable=False)], []),
        ("fleet_secret", [
            C("id", it, primary_key=True, autoincrement=False),
            C("secret", s(128), nullable=False), C("created", fl, nullable=False)], []),
        ("staff_accounts", [
            C("username", s(64), primary_key=True), C("display", s(64), nullable=False),
            C("role", s(16), nullable=False), C("window", it),
            C("hash", s(256), nullable=False), C("active", b, nullable=False),
            C("created", fl, nullable=False)], []),
        ("staff_sessions", [
            C("token", s(64), primary_key=True), C("username", s(64), nullable=False),
            C("window", it), C("created", fl, nullable=False),
            C("seen", fl, nullable=False)],
         [("ix_staff_sessions_username", ["username"])]),
    ]


def upgrade() -> None:
    had = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns, indexes in _tables():
        if name in had:
            continue
        op.create_table(name, *columns)
        for index, on in indexes:
            op.create_index(index, name, on)
    if "history_tickets" in had:
        _extra_items()
    if "history_ratings" in had:
        _ratings_index()


def _extra_items() -> None:
    """913d84c's history_tickets had no extra_items (439f42e added it)."""
    found = sa.inspect(op.get_bind()).get_columns("history_tickets")
    if any(c["name"] == "extra_items" for c in found):
        return
    with op.batch_alter_table("history_tickets") as batch:
        batch.add_column(sa.Column("extra_items", sa.String(1024), nullable=False,
                                   server_default=""))
    # The default only filled the rows there; the hub writes the column itself. SQLite
    # rebuilds the table to drop it (batch mode), PostgreSQL alters the column.
    with op.batch_alter_table("history_tickets") as batch:
        batch.alter_column("extra_items", existing_type=sa.String(1024),
                           existing_nullable=False, server_default=None)


def _ratings_index() -> None:
    """913d84c indexed history_ratings on day alone (2338896 made it cover the queries)."""
    found = {i["name"]: i["column_names"]
             for i in sa.inspect(op.get_bind()).get_indexes("history_ratings")}
    want = ["day", "score", "clerk"]
    if found.get("ix_history_ratings_day") == want:
        return
    if "ix_history_ratings_day" in found:
        op.drop_index("ix_history_ratings_day", table_name="history_ratings")
    op.create_index("ix_history_ratings_day", "history_ratings", want)


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
