"""Remember deleted threads, so that late writes cannot bring them back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

A live session (an open tab) or a queued retry can still write to a thread after ``delete_thread``,
``erase-user`` or ``purge`` removed it; every write statement checks this table and leaves such a
thread alone. Entries are pruned by later deletes once they are older than the retention (README,
"Erasure").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "DeletedThread",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("deletedAt", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("DeletedThread_deletedAt_idx", "DeletedThread", ["deletedAt"])


def downgrade() -> None:
    op.drop_table("DeletedThread")
