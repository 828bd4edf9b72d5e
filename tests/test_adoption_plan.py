"""Adoption reads each old table once: no statement may plan a scan per row, even without statistics.

A database restored by `pg_restore` has no statistics until autovacuum analyzes it. Without them,
PostgreSQL planned the old "newest step of this thread" subquery as a backward scan of the whole
`Step_createdAt_idx` per thread: 1,000,000 steps never finished. These tests EXPLAIN every copy
statement on tables that were never analyzed, and fail on any node that repeats work per row of
another: a sub-plan, or a nested loop whose inner side is anything but an index lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg

from chainlit_openrag_datalayer import adoption
from chainlit_openrag_datalayer.adoption_sql import JSON_OBJECT_FUNCTION, OPENRAG_INIT_COPY, PRISMA_COPY, Copy
from tests.openrag_init_schema import create_openrag_init_schema
from tests.prisma_schema import create_prisma_schema

# 2,000 threads of 20 steps (thread n holds steps 20n ... 20n+19); steps 0, 4, 8 ... 1,996 have an
# element and a feedback each.
PRISMA_ROWS = """
INSERT INTO "User" (id, metadata, identifier)
    SELECT 'u' || n, '{}', 'user-' || n FROM generate_series(0, 9) n;
INSERT INTO "Thread" (id, metadata, "userId", "updatedAt")
    SELECT 't' || n, '{}', 'u' || n % 10, now() FROM generate_series(0, 1999) n;
INSERT INTO "Step" (id, "threadId", metadata, type, "startTime", "endTime", "createdAt")
    SELECT 's' || n, 't' || n / 20, '{}', 'assistant_message', now(), now(), now() - n * interval '1 second'
    FROM generate_series(0, 39999) n;
INSERT INTO "Element" (id, "threadId", "stepId", metadata, name)
    SELECT 'e' || n, 't' || n / 5, 's' || n * 4, '{}', 'file' FROM generate_series(0, 499) n;
INSERT INTO "Feedback" (id, "stepId", name, value)
    SELECT 'f' || n, 's' || n * 4, 'user_feedback', 1 FROM generate_series(0, 499) n;
"""
OPENRAG_INIT_ROWS = """
INSERT INTO "User" (id, identifier) SELECT md5('u' || n)::uuid, 'user-' || n FROM generate_series(0, 9) n;
INSERT INTO "Thread" (id, "userId", metadata)
    SELECT md5('t' || n)::uuid, md5('u' || n % 10)::uuid, '{}' FROM generate_series(0, 1999) n;
INSERT INTO "Step" (id, "threadId", type, output, "startTime", "createdAt")
    SELECT md5('s' || n)::uuid, md5('t' || n / 20)::uuid, 'assistant_message', to_jsonb('answer ' || n),
           now(), now() - n * interval '1 second'
    FROM generate_series(0, 39999) n;
INSERT INTO "Element" (id, "threadId", "stepId", name)
    SELECT 'e' || n, md5('t' || n / 5)::uuid, md5('s' || n * 4)::uuid, 'file' FROM generate_series(0, 499) n;
INSERT INTO "Feedback" (id, "stepId", value)
    SELECT 'f' || n, md5('s' || n * 4)::uuid, 1 FROM generate_series(0, 499) n;
"""
_NO_AUTOVACUUM = "".join(f'ALTER TABLE "{t}" SET (autovacuum_enabled = false);' for t in adoption.TABLES)


def per_row_work(node: dict[str, Any]) -> Iterator[str]:
    """Plan nodes that repeat for each row of another node, unless they are an index lookup."""
    relation = node.get("Relation Name", "")
    if node.get("Parent Relationship") == "SubPlan":
        yield f"{node['Node Type']} {relation} as a sub-plan"
    children = node.get("Plans", [])
    if node["Node Type"] == "Nested Loop":
        inner = children[1]
        if inner["Node Type"] == "Memoize":
            inner = inner["Plans"][0]
        if inner["Node Type"] not in ("Index Scan", "Index Only Scan") or "Index Cond" not in inner:
            yield f"Nested Loop over {inner['Node Type']} {inner.get('Relation Name', '')}"
    for child in children:
        yield from per_row_work(child)


async def plans_without_statistics(database_url: str, rows: str, copies: dict[str, Copy]) -> dict[str, Any]:
    """The plan of every copy SELECT, on old tables never analyzed, moved aside as adoption moves them."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(_NO_AUTOVACUUM + rows)
        never_analyzed = await connection.fetchval(
            "SELECT bool_and(reltuples < 0) FROM pg_class WHERE relname = ANY($1::text[])",
            list(adoption.TABLES),
        )
        assert never_analyzed, "the tables must have no statistics for this test to mean anything"
        async with connection.transaction():
            await connection.execute(f"CREATE SCHEMA {adoption.SIDE_SCHEMA}; {JSON_OBJECT_FUNCTION}")
            for table in adoption.TABLES:
                await connection.execute(f'ALTER TABLE "{table}" SET SCHEMA {adoption.SIDE_SCHEMA}')
            plans = {}
            for table, copy in copies.items():
                explained = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {copy.select(table)}")
                plans[table] = json.loads(explained)[0]["Plan"]
            raise _Rollback(plans)
    except _Rollback as done:
        return done.plans
    finally:
        await connection.close()


class _Rollback(Exception):
    def __init__(self, plans: dict[str, Any]) -> None:
        self.plans = plans


def per_row_work_by_table(plans: dict[str, Any]) -> dict[str, list[str]]:
    return {table: found for table, plan in plans.items() if (found := list(per_row_work(plan)))}


async def test_prisma_copy_reads_each_old_table_once_without_statistics(database_url: str) -> None:
    """No Prisma copy statement has a sub-plan or a nested loop other than index lookups."""
    await create_prisma_schema(database_url)
    plans = await plans_without_statistics(database_url, PRISMA_ROWS, dict(PRISMA_COPY))
    assert per_row_work_by_table(plans) == {}, json.dumps(plans, indent=1)


async def test_openrag_init_copy_reads_each_old_table_once_without_statistics(database_url: str) -> None:
    """No OpenRAG-init copy statement has a sub-plan or a nested loop other than index lookups."""
    await create_openrag_init_schema(database_url)
    plans = await plans_without_statistics(database_url, OPENRAG_INIT_ROWS, dict(OPENRAG_INIT_COPY))
    assert per_row_work_by_table(plans) == {}, json.dumps(plans, indent=1)


def test_a_correlated_newest_step_subquery_is_caught() -> None:
    """The check itself: the plan shape of the old per-thread subquery is reported."""
    backward_scan = {
        "Node Type": "Index Scan Backward",
        "Relation Name": "Step",
        "Parent Relationship": "Outer",
    }
    sub_plan = {"Node Type": "Limit", "Parent Relationship": "SubPlan", "Plans": [backward_scan]}
    plan = {"Node Type": "Seq Scan", "Relation Name": "Thread", "Plans": [sub_plan]}
    assert list(per_row_work(plan)) == ["Limit  as a sub-plan"]
