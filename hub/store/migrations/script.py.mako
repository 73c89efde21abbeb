"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}. Forward only (hub/store/db.py).
"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
