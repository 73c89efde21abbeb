"""Other systems' API credentials (issue 18): `api_clients`, one row per connected system
(the city's government-service platform, a mini-program back end, a booking site): its
name, the SHA-256 of its bearer secret (the secret itself is printed once by `onewindow
api-client add` and kept nowhere), its scopes, when it expires and whether it was revoked,
its rate limit and when it was last used. Forward only, like the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(256), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("revoked", sa.Float, nullable=True),
        sa.Column("burst", sa.Integer, nullable=False),
        sa.Column("per_minute", sa.Float, nullable=False),
        sa.Column("used", sa.Float, nullable=True),
    )
    op.create_index("ix_api_clients_token", "api_clients", ["token"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
