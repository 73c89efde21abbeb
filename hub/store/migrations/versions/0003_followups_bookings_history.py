"""Two past days' tables (issue 16): follow-ups of low ratings and bookings per day.

`history_followup_events`: a follow-up (差评整改, hub/core/followups.py) opened by a rating
of 2 不满意 or 1 非常不满意 and closed by a supervisor with a note, one row per event,
written at the close of the day it happened on; `history_bookings`: the core's booking
counts of each slots' day (booked, cancelled, checked in, late, no-show:
hub/core/booking.py COUNTS), written at the day's close and replaced while a later close
still changes them (a no-show swept after midnight). With them the staff report read from
the tables counts what its replay counts.

New tables only, created empty: the days already written have none (`onewindow
rebuild-history` replays the journal and writes them). The tables are spelled out here,
not taken from schema.py: a migration is what the database was at its number.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    C, fl, it, s = sa.Column, sa.Float, sa.Integer, sa.String
    op.create_table(
        "history_followup_events",
        C("ticket", s(32), primary_key=True), C("action", s(8), primary_key=True),
        C("day", s(8), nullable=False), C("at", fl, nullable=False),
        C("window", it, nullable=False), C("clerk", s(64)),
        C("score", it, nullable=False), C("by", s(64)), C("note", sa.Text))
    op.create_index("ix_history_followup_events_day", "history_followup_events", ["day"])
    op.create_table(
        "history_bookings",
        C("day", s(8), primary_key=True), C("booked", it, nullable=False),
        C("cancelled", it, nullable=False), C("checked_in", it, nullable=False),
        C("late", it, nullable=False), C("no_show", it, nullable=False))


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
