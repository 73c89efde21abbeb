"""Staff accounts belong to a department (issue 17): `staff_accounts.department`, the
catalog department (科室, `Catalog.departments`) of a back-office user or specialist, so
each sees its own department's cases and help calls first. Nullable: accounts made before
have none (they see every department, as before), and clerks, supervisors, technicians
and admins never have one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_accounts") as batch:
        batch.add_column(sa.Column("department", sa.String(32), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
