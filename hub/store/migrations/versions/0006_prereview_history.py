"""Pre-review that counts (预审 / 一次办成, issue 17): what the past days' tables keep of it.

`history_tickets` gains the ticket's resident token (the keyed hash, as `history_cases`
holds it; null for a ticket without one), its kiosk pre-review outcome (`review`:
complete | queued_anyway, null without a pre-review) and the materials it was returned for
(`returned`: "ITEM.k" comma-separated, "" when it was not), with an index by resident,
item and day: the one-trip rate and the repeat visits look a resident's earlier tickets
for an item up by it. `history_days` gains the day's kiosk pre-reviews that ended without a
ticket (`kiosk_left`: wasted waits avoided) and of them those with a tips slip printed.

Rows written before have nulls and zeros (`onewindow rebuild-history` rewrites them from
the journal). Forward only, like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history_tickets") as batch:
        batch.add_column(sa.Column("resident", sa.String(64), nullable=True))
        batch.add_column(sa.Column("review", sa.String(16), nullable=True))
        batch.add_column(sa.Column("returned", sa.String(1024), nullable=False,
                                   server_default=""))
    op.create_index("ix_history_tickets_resident", "history_tickets",
                    ["resident", "item", "day"])
    with op.batch_alter_table("history_days") as batch:
        batch.add_column(sa.Column("kiosk_left", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("kiosk_left_tips", sa.Integer, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
