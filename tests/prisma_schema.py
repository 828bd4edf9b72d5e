"""The Prisma-shaped schema ("chainlit-datalayer") that Chainlit's built-in ChainlitDataLayer uses.

Written for tests from the documented facts: the two Prisma migrations ("init_data_layer",
"add_tags_to_thread") and Prisma's `_prisma_migrations` table.
`gen_random_uuid()` is built into PostgreSQL 13+, so pgcrypto is not needed.
"""

from __future__ import annotations

import asyncpg

PRISMA_MIGRATIONS = ("init_data_layer", "add_tags_to_thread")

PRISMA_SCHEMA_DDL = """
CREATE TABLE "_prisma_migrations" (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    finished_at TIMESTAMPTZ,
    migration_name VARCHAR(255) NOT NULL,
    logs TEXT,
    rolled_back_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
);

CREATE TYPE "StepType" AS ENUM (
    'assistant_message', 'embedding', 'llm', 'retrieval', 'rerank', 'run',
    'system_message', 'tool', 'undefined', 'user_message'
);

CREATE TABLE "User" (
    id TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    metadata JSONB NOT NULL,
    identifier TEXT NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY (id)
);
CREATE UNIQUE INDEX "User_identifier_key" ON "User" (identifier);
CREATE INDEX "User_identifier_idx" ON "User" (identifier);

CREATE TABLE "Thread" (
    id TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMP(3),
    name TEXT,
    metadata JSONB NOT NULL,
    "userId" TEXT,
    tags TEXT[] DEFAULT ARRAY[]::TEXT[],
    CONSTRAINT "Thread_pkey" PRIMARY KEY (id),
    CONSTRAINT "Thread_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" (id)
        ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE INDEX "Thread_createdAt_idx" ON "Thread" ("createdAt");
CREATE INDEX "Thread_name_idx" ON "Thread" (name);

CREATE TABLE "Step" (
    id TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "parentId" TEXT,
    "threadId" TEXT,
    input TEXT,
    metadata JSONB NOT NULL,
    name TEXT,
    output TEXT,
    type "StepType" NOT NULL,
    "showInput" TEXT DEFAULT 'json',
    "isError" BOOLEAN DEFAULT false,
    "startTime" TIMESTAMP(3) NOT NULL,
    "endTime" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Step_pkey" PRIMARY KEY (id),
    CONSTRAINT "Step_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Step" (id)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Step_threadId_fkey" FOREIGN KEY ("threadId") REFERENCES "Thread" (id)
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "Step_createdAt_idx" ON "Step" ("createdAt");
CREATE INDEX "Step_endTime_idx" ON "Step" ("endTime");
CREATE INDEX "Step_parentId_idx" ON "Step" ("parentId");
CREATE INDEX "Step_startTime_idx" ON "Step" ("startTime");
CREATE INDEX "Step_threadId_idx" ON "Step" ("threadId");
CREATE INDEX "Step_type_idx" ON "Step" (type);
CREATE INDEX "Step_name_idx" ON "Step" (name);
CREATE INDEX "Step_threadId_startTime_endTime_idx" ON "Step" ("threadId", "startTime", "endTime");

CREATE TABLE "Element" (
    id TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "threadId" TEXT,
    "stepId" TEXT NOT NULL,
    metadata JSONB NOT NULL,
    mime TEXT,
    name TEXT NOT NULL,
    "objectKey" TEXT,
    url TEXT,
    "chainlitKey" TEXT,
    display TEXT,
    size TEXT,
    language TEXT,
    page INTEGER,
    props JSONB,
    CONSTRAINT "Element_pkey" PRIMARY KEY (id),
    CONSTRAINT "Element_threadId_fkey" FOREIGN KEY ("threadId") REFERENCES "Thread" (id)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Element_stepId_fkey" FOREIGN KEY ("stepId") REFERENCES "Step" (id)
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "Element_stepId_idx" ON "Element" ("stepId");
CREATE INDEX "Element_threadId_idx" ON "Element" ("threadId");

CREATE TABLE "Feedback" (
    id TEXT NOT NULL DEFAULT gen_random_uuid(),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "stepId" TEXT,
    name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    comment TEXT,
    CONSTRAINT "Feedback_pkey" PRIMARY KEY (id),
    CONSTRAINT "Feedback_stepId_fkey" FOREIGN KEY ("stepId") REFERENCES "Step" (id)
        ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE INDEX "Feedback_createdAt_idx" ON "Feedback" ("createdAt");
CREATE INDEX "Feedback_name_idx" ON "Feedback" (name);
CREATE INDEX "Feedback_stepId_idx" ON "Feedback" ("stepId");
CREATE INDEX "Feedback_value_idx" ON "Feedback" (value);
CREATE INDEX "Feedback_name_value_idx" ON "Feedback" (name, value);
"""

RECORD_MIGRATION = """
INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
VALUES (gen_random_uuid()::text, md5($1), now(), $1, 1)
"""


async def create_prisma_schema(database_url: str) -> None:
    """Create the Prisma-shaped schema in an empty database, as `prisma migrate deploy` would leave it."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(PRISMA_SCHEMA_DDL)
            for name in PRISMA_MIGRATIONS:
                await connection.execute(RECORD_MIGRATION, name)
    finally:
        await connection.close()
