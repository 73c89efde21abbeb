"""Breaks at the windows (issue 18): `history_pauses`, one row per pause that ended, with
the window, the clerk at it when it began, the reason code (core/desk.py PAUSE_REASONS, or
"unspecified" for a pause journaled without one), when it began and ended (at most the end
of the local day it began on), keyed by window and start, by the local day it ended (whose
close writes it). The staff report counts pauses and paused minutes per reason per clerk
from it (hub/report/pauses.py). Days closed before it have no rows: the hub writes a day's
pauses again when a replay closes that day (History.sink), and `onewindow report --replay`
reads them off the journal. Forward only, like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_pauses",
        sa.Column("window", sa.Integer, primary_key=True),
        sa.Column("start", sa.Float, primary_key=True),
        sa.Column("day", sa.String(8), nullable=False),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("end", sa.Float, nullable=False),
    )
    op.create_index("ix_history_pauses_day", "history_pauses", ["day"])


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
