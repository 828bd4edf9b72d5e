"""The schema of OpenRAG's init script (`scripts/postgres-init/01-chainlit.sql`), written from the facts.

uuid ids, `metadata` as text on User and Thread, jsonb step input/output, no `Thread."updatedAt"`, no
secondary indexes; one version of the script adds a `Step."parentId"` foreign key (ON DELETE SET NULL).
"""

from __future__ import annotations

import asyncpg

OPENRAG_INIT_DDL = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE "User" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    identifier text NOT NULL UNIQUE,
    metadata text NOT NULL DEFAULT '{}',
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    "updatedAt" timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE "Thread" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text,
    "userId" uuid REFERENCES "User" (id) ON DELETE SET NULL,
    tags text[],
    metadata text NOT NULL DEFAULT '{}',
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    "deletedAt" timestamptz
);

CREATE TABLE "Step" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "threadId" uuid REFERENCES "Thread" (id) ON DELETE CASCADE,
    "parentId" uuid,
    input jsonb DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}',
    name text,
    output jsonb NOT NULL DEFAULT '{}',
    type text NOT NULL,
    "startTime" timestamptz,
    "endTime" timestamptz,
    "showInput" text,
    "isError" boolean,
    "createdAt" timestamptz DEFAULT now()
);

CREATE TABLE "Feedback" (
    id text PRIMARY KEY,
    "stepId" uuid NOT NULL REFERENCES "Step" (id) ON DELETE CASCADE,
    name text NOT NULL DEFAULT 'user_feedback',
    value double precision NOT NULL,
    comment text
);

CREATE TABLE "Element" (
    id text PRIMARY KEY,
    "threadId" uuid REFERENCES "Thread" (id) ON DELETE CASCADE,
    "stepId" uuid REFERENCES "Step" (id) ON DELETE CASCADE,
    metadata jsonb NOT NULL DEFAULT '{}',
    mime text,
    name text NOT NULL,
    "objectKey" text,
    url text,
    "chainlitKey" text,
    display text,
    size text,
    language text,
    page integer,
    props jsonb NOT NULL DEFAULT '{}'
);
"""

PARENT_FOREIGN_KEY = """
ALTER TABLE "Step" ADD CONSTRAINT "Step_parentId_fkey"
    FOREIGN KEY ("parentId") REFERENCES "Step" (id) ON DELETE SET NULL
"""


async def create_openrag_init_schema(database_url: str, *, parent_foreign_key: bool = False) -> None:
    """Create the init script's tables in an empty database."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(OPENRAG_INIT_DDL)
            if parent_foreign_key:
                await connection.execute(PARENT_FOREIGN_KEY)
    finally:
        await connection.close()
