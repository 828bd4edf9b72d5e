"""DDL for the schemas the benchmark creates for Chainlit's own layers.

The Prisma-shaped schema of ``ChainlitDataLayer`` comes from the tests (``tests/prisma_schema.py``).
``SQLAlchemyDataLayer``'s is the one Chainlit documents, plus the step columns ``autoCollapse`` and
``icon`` and the element columns ``autoPlay`` and ``playerConfig``: Chainlit 2.12 sends those keys,
and without the columns every insert fails (silently: the layer logs a warning and returns None).
The documented schema has no secondary index, and neither is one added here.
"""

from __future__ import annotations

import asyncpg

from tests.prisma_schema import create_prisma_schema

SQLALCHEMY_SCHEMA_DDL = """
CREATE TABLE users (
    "id" UUID PRIMARY KEY,
    "identifier" TEXT NOT NULL UNIQUE,
    "metadata" JSONB NOT NULL,
    "createdAt" TEXT
);

CREATE TABLE IF NOT EXISTS threads (
    "id" UUID PRIMARY KEY,
    "createdAt" TEXT,
    "name" TEXT,
    "userId" UUID,
    "userIdentifier" TEXT,
    "tags" TEXT[],
    "metadata" JSONB,
    FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS steps (
    "id" UUID PRIMARY KEY,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "threadId" UUID NOT NULL,
    "parentId" UUID,
    "streaming" BOOLEAN NOT NULL,
    "waitForAnswer" BOOLEAN,
    "isError" BOOLEAN,
    "metadata" JSONB,
    "tags" TEXT[],
    "input" TEXT,
    "output" TEXT,
    "createdAt" TEXT,
    "command" TEXT,
    "start" TEXT,
    "end" TEXT,
    "generation" JSONB,
    "showInput" TEXT,
    "language" TEXT,
    "indent" INT,
    "defaultOpen" BOOLEAN,
    "modes" JSONB,
    "autoCollapse" BOOLEAN,
    "icon" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS elements (
    "id" UUID PRIMARY KEY,
    "threadId" UUID,
    "type" TEXT,
    "url" TEXT,
    "chainlitKey" TEXT,
    "name" TEXT NOT NULL,
    "display" TEXT,
    "objectKey" TEXT,
    "size" TEXT,
    "page" INT,
    "language" TEXT,
    "forId" UUID,
    "mime" TEXT,
    "props" JSONB,
    "autoPlay" BOOLEAN,
    "playerConfig" JSONB,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS feedbacks (
    "id" UUID PRIMARY KEY,
    "forId" UUID NOT NULL,
    "threadId" UUID NOT NULL,
    "value" INT NOT NULL,
    "comment" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
);
"""


async def create_sqlalchemy_schema(database_url: str) -> None:
    """``SQLAlchemyDataLayer``'s documented tables (with the four missing columns) in an empty database."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(SQLALCHEMY_SCHEMA_DDL)
    finally:
        await connection.close()


__all__ = ["SQLALCHEMY_SCHEMA_DDL", "create_prisma_schema", "create_sqlalchemy_schema"]
