"""The case loop (issue 17, 前台受理 → 后台审批 → 统一出件): what the past days' tables keep
of a promised case's department, approval and hand-over.

`history_cases` gains the department (科室) the case was at, when it was approved (ready
for pick-up), who handed it over (a username, or "card"), and its last return's reason
and materials (0-based indices into the item's catalog materials, comma-separated), with
an index by department and day (a department's closed list). `history_case_events` gains
who did each step and the department the case was at after it.

Rows written before have nulls: an archived case's department is then its item's approver
(the core fills it in when such a case is reopened). Forward only, like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history_cases") as batch:
        batch.add_column(sa.Column("department", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ready_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("handed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("return_reason", sa.String(512), nullable=True))
        batch.add_column(sa.Column("return_materials", sa.String(256), nullable=True))
    op.create_index("ix_history_cases_department", "history_cases", ["department", "day"])
    with op.batch_alter_table("history_case_events") as batch:
        batch.add_column(sa.Column("by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("department", sa.String(64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
