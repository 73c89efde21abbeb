"""Help calls by department (窗口吹哨 科室报到, issue 17): what the past days' tables keep of a
help call's department and its steps.

`history_help` gains the department (科室) called (null: any, and every row written before),
when the specialist came to the window and who (`arrived_at`, `arrived_by`), when it was
resolved and by whom (`resolved_at`, `resolved_by`) and when it went to the supervisors
unanswered (`escalated_at`), with an index by department and day: the staff report's
response times per department (time to answer, to arrive, to resolve) read them by SQL.

Rows written before have nulls (`onewindow rebuild-history` rewrites them from the
journal, whose old help records hold no department either). Forward only, like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history_help") as batch:
        batch.add_column(sa.Column("department", sa.String(64), nullable=True))
        batch.add_column(sa.Column("arrived_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("arrived_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.Float, nullable=True))
    op.create_index("ix_history_help_department", "history_help", ["department", "day"])


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
