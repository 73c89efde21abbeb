"""history_ratings.score onto the national five-level scale (好差评, issue 16).

Up to 0001 a history row held the old three-level score: 1 满意 (good), 2 基本满意 (ok),
3 不满意 (bad) (hub/core/ratings.py before e888886: `score: int  # 1 满意, 2 基本满意, 3
不满意`). From here on it holds a level: 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意.
The old rows are mapped the way the core maps a three-level rating (ratings.FROM_THREE,
written out here: a migration is what it was at its number): good -> 5, ok -> 3, bad -> 1.

One UPDATE, so every row moves at once (a 1 becoming 5 is never read again as a 1); it runs
once, as this numbered step, inside db.py's locked transaction. No table changes.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE history_ratings SET score = CASE score WHEN 1 THEN 5 WHEN 2 THEN 3 "
               "WHEN 3 THEN 1 ELSE score END")


def downgrade() -> None:
    # Like every step here: a 5 from a three-level "good" and a 5 given as 非常满意 are
    # the same row afterwards, so there is no way back but a backup.
    raise NotImplementedError("forward only: restore a backup (onewindow restore) instead")
