"""Community stations (协管员代收, issue 17): `staff_accounts.station`, the station a
`station` account (a community assistant's login) acts for, so its page opens cases on that
station's behalf and sees only that station's cases and hand-overs. Nullable: every other
role has none, and accounts made before have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_accounts") as batch:
        batch.add_column(sa.Column("station", sa.String(32), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
