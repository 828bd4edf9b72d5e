"""Data revisions: what each one changes in rows written by an earlier version of the package."""

from __future__ import annotations

import json

import asyncpg

from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.conformance.factories import new_id

OLD_METADATA = {"openrag_api_key": "[redacted]", "chat_profile": "docs", "nested": {"token": "[redacted]"}}


async def test_0003_removes_the_placeholders_an_earlier_version_stored(database_url: str) -> None:
    """Thread, user, step and element values and element URLs lose "[redacted]"; the rest is unchanged."""
    await upgrade_async(database_url, "0002")
    thread_id, step_id, element_id, identifier = new_id(), new_id(), new_id(), f"user-{new_id()}"
    metadata = json.dumps(OLD_METADATA)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            'INSERT INTO "User" (identifier, metadata) VALUES ($1, $2::jsonb)', identifier, metadata
        )
        await connection.execute(
            'INSERT INTO "Thread" (id, metadata) VALUES ($1, $2::jsonb)', thread_id, metadata
        )
        await connection.execute(
            'INSERT INTO "Step" (id, "threadId", type, metadata, generation)'
            " VALUES ($1, $2, $3, $4::jsonb, $4::jsonb)",
            step_id, thread_id, "run", metadata,
        )  # fmt: skip
        await connection.execute(
            'INSERT INTO "Element" (id, "threadId", name, url, props) VALUES ($1, $2, $3, $4, $5::jsonb)',
            element_id, thread_id, "source", "https://u:[redacted]@h/doc?token=[redacted]&page=2", metadata,
        )  # fmt: skip

        await upgrade_async(database_url)

        expected = {"chat_profile": "docs", "nested": {}}
        stored = [
            await connection.fetchval('SELECT metadata FROM "User" WHERE identifier = $1', identifier),
            await connection.fetchval('SELECT metadata FROM "Thread" WHERE id = $1', thread_id),
            await connection.fetchval('SELECT metadata FROM "Step" WHERE id = $1', step_id),
            await connection.fetchval('SELECT generation FROM "Step" WHERE id = $1', step_id),
            await connection.fetchval('SELECT props FROM "Element" WHERE id = $1', element_id),
        ]
        assert [json.loads(value) for value in stored] == [expected] * 5
        url = await connection.fetchval('SELECT url FROM "Element" WHERE id = $1', element_id)
        assert url == "https://u@h/doc?page=2"
    finally:
        await connection.close()
