"""The tables, as SQLAlchemy Core: Prisma's names (what Chainlit's built-in layer reads), better types.

Differences from the ``chainlit-datalayer`` Prisma schema, all readable by Chainlit's own layer:
``timestamptz`` in UTC; ``Step.type`` is text; steps and elements keep every key Chainlit sends
(new columns, plus ``extra`` JSONB for keys this version does not know); elements may have no step;
feedback knows its thread; ``Thread."updatedAt"`` means last activity and serves ``list_threads``.
``"DeletedThread"`` remembers the ids of deleted threads for a while, so that late writes cannot bring
them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.types import TypeDecorator

VERSION_TABLE = "chainlit_openrag_datalayer_version"
# A result row: column name -> value (an asyncpg.Record; conversions read it as a mapping).
Row = Mapping[str, Any]


class UTCDateTime(TypeDecorator[datetime]):
    """``timestamptz`` that refuses naive datetimes and always returns aware UTC ones."""

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise TypeError("tzinfo is required: pass an aware datetime (UTC).")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(timezone.utc)


metadata = MetaData()


def _timestamps() -> list[Column[Any]]:
    return [
        Column("createdAt", UTCDateTime, nullable=False, server_default=func.now()),
        Column("updatedAt", UTCDateTime, nullable=False, server_default=func.now()),
    ]


def _text_id() -> Column[str]:
    return Column("id", Text, primary_key=True, server_default=text("gen_random_uuid()::text"))


def _thread_fk(nullable: bool = True) -> Column[str]:
    return Column(
        "threadId",
        Text,
        ForeignKey("Thread.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=nullable,
    )


def _json_object(name: str) -> Column[Any]:
    return Column(name, JSONB, nullable=False, server_default=text("'{}'::jsonb"))


user = Table(
    "User",
    metadata,
    _text_id(),
    Column("identifier", Text, nullable=False, unique=True),
    _json_object("metadata"),
    *_timestamps(),
)

thread = Table(
    "Thread",
    metadata,
    _text_id(),
    *_timestamps(),
    Column("deletedAt", UTCDateTime),
    Column("name", Text),
    _json_object("metadata"),
    Column("userId", Text, ForeignKey("User.id", ondelete="SET NULL", onupdate="CASCADE")),
    Column("tags", ARRAY(Text), server_default=text("ARRAY[]::text[]")),
    Index(
        "Thread_userId_updatedAt_idx",
        "userId",
        text('"updatedAt" DESC'),
        text("id DESC"),
        postgresql_where=text('"deletedAt" IS NULL'),
    ),
)

step = Table(
    "Step",
    metadata,
    _text_id(),
    *_timestamps(),
    _thread_fk(),
    Column("parentId", Text, index=True),
    Column("name", Text),
    Column("type", Text, nullable=False, server_default="undefined"),
    Column("input", Text),
    Column("output", Text),
    _json_object("metadata"),
    Column("showInput", Text, server_default="json"),
    Column("isError", Boolean, server_default=text("false")),
    Column("startTime", UTCDateTime),
    Column("endTime", UTCDateTime),
    Column("command", Text),
    Column("modes", JSONB(none_as_null=True)),
    Column("language", Text),
    Column("defaultOpen", Boolean),
    Column("autoCollapse", Boolean),
    Column("waitForAnswer", Boolean),
    Column("tags", ARRAY(Text)),
    Column("generation", JSONB(none_as_null=True)),
    Column("icon", Text),
    _json_object("extra"),
    Index("Step_threadId_createdAt_idx", "threadId", "createdAt"),
)

element = Table(
    "Element",
    metadata,
    _text_id(),
    *_timestamps(),
    _thread_fk(),
    Column("stepId", Text, index=True),
    _json_object("metadata"),
    Column("mime", Text),
    Column("name", Text, nullable=False),
    Column("objectKey", Text),
    Column("url", Text),
    Column("chainlitKey", Text),
    Column("display", Text),
    Column("size", Text),
    Column("language", Text),
    Column("page", Integer),
    Column("props", JSONB(none_as_null=True)),
    Column("autoPlay", Boolean),
    Column("playerConfig", JSONB(none_as_null=True)),
    _json_object("extra"),
    Index("Element_threadId_idx", "threadId"),
)

feedback = Table(
    "Feedback",
    metadata,
    _text_id(),
    *_timestamps(),
    Column("stepId", Text, index=True),
    _thread_fk(),
    Column("name", Text, nullable=False, server_default="user_feedback"),
    Column("value", Float, nullable=False),
    Column("comment", Text),
    Index("Feedback_threadId_value_idx", "threadId", "value"),
)

deleted_thread = Table(
    "DeletedThread",
    metadata,
    Column("id", Text, primary_key=True),
    Column("deletedAt", UTCDateTime, nullable=False, server_default=func.now()),
    Index("DeletedThread_deletedAt_idx", "deletedAt"),
)
