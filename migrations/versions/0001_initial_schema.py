"""Initial schema: Prisma's table and column names, timestamptz, every key Chainlit sends.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.TIMESTAMP(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Text, primary_key=True, server_default=sa.text("gen_random_uuid()::text"))


def _times() -> list[sa.Column]:
    return [
        sa.Column("createdAt", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updatedAt", TZ, nullable=False, server_default=sa.func.now()),
    ]


def _jsonb(name: str) -> sa.Column:
    return sa.Column(name, postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"))


def _thread_id() -> sa.Column:
    return sa.Column("threadId", sa.Text, sa.ForeignKey("Thread.id", ondelete="CASCADE", onupdate="CASCADE"))


def upgrade() -> None:
    op.create_table(
        "User",
        _id(),
        sa.Column("identifier", sa.Text, nullable=False, unique=True),
        _jsonb("metadata"),
        *_times(),
    )
    op.create_table(
        "Thread",
        _id(),
        *_times(),
        sa.Column("deletedAt", TZ),
        sa.Column("name", sa.Text),
        _jsonb("metadata"),
        sa.Column("userId", sa.Text, sa.ForeignKey("User.id", ondelete="SET NULL", onupdate="CASCADE")),
        sa.Column("tags", postgresql.ARRAY(sa.Text), server_default=sa.text("ARRAY[]::text[]")),
    )
    op.create_index(
        "Thread_userId_updatedAt_idx",
        "Thread",
        ["userId", sa.text('"updatedAt" DESC'), sa.text("id DESC")],
        postgresql_where=sa.text('"deletedAt" IS NULL'),
    )
    op.create_table(
        "Step",
        _id(),
        *_times(),
        _thread_id(),
        sa.Column("parentId", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("type", sa.Text, nullable=False, server_default="undefined"),
        sa.Column("input", sa.Text),
        sa.Column("output", sa.Text),
        _jsonb("metadata"),
        sa.Column("showInput", sa.Text, server_default="json"),
        sa.Column("isError", sa.Boolean, server_default=sa.text("false")),
        sa.Column("startTime", TZ),
        sa.Column("endTime", TZ),
        sa.Column("command", sa.Text),
        sa.Column("modes", postgresql.JSONB),
        sa.Column("language", sa.Text),
        sa.Column("defaultOpen", sa.Boolean),
        sa.Column("autoCollapse", sa.Boolean),
        sa.Column("waitForAnswer", sa.Boolean),
        sa.Column("tags", postgresql.ARRAY(sa.Text)),
        sa.Column("generation", postgresql.JSONB),
        sa.Column("icon", sa.Text),
        _jsonb("extra"),
    )
    op.create_index("Step_threadId_createdAt_idx", "Step", ["threadId", "createdAt"])
    op.create_index("ix_Step_parentId", "Step", ["parentId"])
    op.create_table(
        "Element",
        _id(),
        *_times(),
        _thread_id(),
        sa.Column("stepId", sa.Text),
        _jsonb("metadata"),
        sa.Column("mime", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("objectKey", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("chainlitKey", sa.Text),
        sa.Column("display", sa.Text),
        sa.Column("size", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("page", sa.Integer),
        sa.Column("props", postgresql.JSONB),
        sa.Column("autoPlay", sa.Boolean),
        sa.Column("playerConfig", postgresql.JSONB),
        _jsonb("extra"),
    )
    op.create_index("Element_threadId_idx", "Element", ["threadId"])
    op.create_index("ix_Element_stepId", "Element", ["stepId"])
    op.create_table(
        "Feedback",
        _id(),
        *_times(),
        sa.Column("stepId", sa.Text),
        _thread_id(),
        sa.Column("name", sa.Text, nullable=False, server_default="user_feedback"),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_index("ix_Feedback_stepId", "Feedback", ["stepId"])
    op.create_index("Feedback_threadId_value_idx", "Feedback", ["threadId", "value"])
    # Feedback knows its thread even when a writer only gives the step (Chainlit's built-in layer).
    op.execute(
        'CREATE FUNCTION "Feedback_fill_threadId"() RETURNS trigger LANGUAGE plpgsql AS $$ '
        'BEGIN NEW."threadId" := (SELECT "threadId" FROM "Step" WHERE id = NEW."stepId"); RETURN NEW; END $$'
    )
    op.execute(
        'CREATE TRIGGER "Feedback_fill_threadId" BEFORE INSERT OR UPDATE ON "Feedback" FOR EACH ROW '
        'WHEN (NEW."threadId" IS NULL) EXECUTE FUNCTION "Feedback_fill_threadId"()'
    )


def downgrade() -> None:
    for table in ("Feedback", "Element", "Step", "Thread", "User"):
        op.drop_table(table)
    op.execute('DROP FUNCTION "Feedback_fill_threadId"()')
