"""Bulk-load the synthetic history into each schema with COPY, bypassing the layers.

Secondary indexes are dropped before the COPY and rebuilt after it, foreign-key triggers are off
for the loading session (the data is consistent by construction), and the tables are vacuumed and
analyzed at the end, as a long-running database would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import dataset as ds

Record = tuple[Any, ...]
EMPTY = "{}"


def _naive(moment: datetime) -> datetime:
    """Prisma's ``TIMESTAMP(3)``: naive UTC, as ChainlitDataLayer writes it."""
    return moment.replace(tzinfo=None)


def _text(moment: datetime) -> str:
    """SQLAlchemyDataLayer's text timestamps, as Chainlit's ``utc_now()`` writes them."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class TableLoad:
    table: str
    columns: tuple[str, ...]
    records: Callable[[ds.Scale], Iterable[Record]]


def _openrag(scale: ds.Scale) -> list[TableLoad]:
    def users(s: ds.Scale) -> Iterator[Record]:
        return ((u.id, u.identifier, EMPTY, u.created, u.created) for u in ds.users(s))

    def threads(s: ds.Scale) -> Iterator[Record]:
        return ((t.id, t.created, t.updated, t.name, EMPTY, t.user_id, []) for t in ds.threads(s))

    def steps(s: ds.Scale) -> Iterator[Record]:
        for r in ds.steps(s):
            yield (r.id, r.created, r.created, r.thread_id, r.parent_id, r.name, r.type, r.input, r.output,
                   EMPTY, "json", False, r.created, r.created, EMPTY)  # fmt: skip

    def elements(s: ds.Scale) -> Iterator[Record]:
        for e in ds.elements(s):
            yield (e.id, e.thread_id, e.step_id, '{"type": "image"}', "image/png", e.name, e.object_key,
                   "inline", EMPTY)  # fmt: skip

    def feedbacks(s: ds.Scale) -> Iterator[Record]:
        return (
            (f.id, f.step_id, f.thread_id, "user_feedback", float(f.value), None) for f in ds.feedbacks(s)
        )

    return [
        TableLoad("User", ("id", "identifier", "metadata", "createdAt", "updatedAt"), users),
        TableLoad("Thread", ("id", "createdAt", "updatedAt", "name", "metadata", "userId", "tags"), threads),
        TableLoad("Step", ("id", "createdAt", "updatedAt", "threadId", "parentId", "name", "type", "input",
                           "output", "metadata", "showInput", "isError", "startTime", "endTime", "extra"),
                  steps),
        TableLoad("Element", ("id", "threadId", "stepId", "metadata", "mime", "name", "objectKey",
                              "display", "extra"), elements),
        TableLoad("Feedback", ("id", "stepId", "threadId", "name", "value", "comment"), feedbacks),
    ]  # fmt: skip


def _prisma(scale: ds.Scale) -> list[TableLoad]:
    def users(s: ds.Scale) -> Iterator[Record]:
        return ((u.id, _naive(u.created), _naive(u.created), EMPTY, u.identifier) for u in ds.users(s))

    def threads(s: ds.Scale) -> Iterator[Record]:
        for t in ds.threads(s):
            yield (t.id, _naive(t.created), _naive(t.updated), t.name, EMPTY, t.user_id, [])

    def steps(s: ds.Scale) -> Iterator[Record]:
        for r in ds.steps(s):
            at = _naive(r.created)
            yield (r.id, at, at, r.parent_id, r.thread_id, r.input, EMPTY, r.name, r.output, r.type, "json",
                   False, at, at)  # fmt: skip

    # ChainlitDataLayer keeps the element type in metadata, next to copies of a few columns.
    meta = json.dumps({"size": None, "language": None, "display": "inline", "type": "image", "page": None})

    def elements(s: ds.Scale) -> Iterator[Record]:
        for e in ds.elements(s):
            yield (e.id, e.thread_id, e.step_id, meta, "image/png", e.name, e.object_key, "inline", EMPTY)

    def feedbacks(s: ds.Scale) -> Iterator[Record]:
        return ((f.id, f.step_id, "user_feedback", float(f.value), None) for f in ds.feedbacks(s))

    return [
        TableLoad("User", ("id", "createdAt", "updatedAt", "metadata", "identifier"), users),
        TableLoad("Thread", ("id", "createdAt", "updatedAt", "name", "metadata", "userId", "tags"), threads),
        TableLoad("Step", ("id", "createdAt", "updatedAt", "parentId", "threadId", "input", "metadata",
                           "name", "output", "type", "showInput", "isError", "startTime", "endTime"), steps),
        TableLoad("Element", ("id", "threadId", "stepId", "metadata", "mime", "name", "objectKey",
                              "display", "props"), elements),
        TableLoad("Feedback", ("id", "stepId", "name", "value", "comment"), feedbacks),
    ]  # fmt: skip


def _sqlalchemy(scale: ds.Scale) -> list[TableLoad]:
    identifiers = {u.id: u.identifier for u in ds.users(scale)}

    def users(s: ds.Scale) -> Iterator[Record]:
        return ((u.id, u.identifier, EMPTY, _text(u.created)) for u in ds.users(s))

    def threads(s: ds.Scale) -> Iterator[Record]:
        for t in ds.threads(s):
            yield (t.id, _text(t.created), t.name, t.user_id, identifiers[t.user_id], [], EMPTY)

    def steps(s: ds.Scale) -> Iterator[Record]:
        for r in ds.steps(s):
            at = _text(r.created)
            yield (r.id, r.name, r.type, r.thread_id, r.parent_id, False, False, EMPTY, r.input, r.output, at,
                   at, at, "json")  # fmt: skip

    def elements(s: ds.Scale) -> Iterator[Record]:
        for e in ds.elements(s):
            yield (e.id, e.thread_id, "image", e.name, "inline", e.object_key, e.step_id, "image/png", EMPTY)

    def feedbacks(s: ds.Scale) -> Iterator[Record]:
        return ((f.id, f.step_id, f.thread_id, f.value, None) for f in ds.feedbacks(s))

    return [
        TableLoad("users", ("id", "identifier", "metadata", "createdAt"), users),
        TableLoad("threads", ("id", "createdAt", "name", "userId", "userIdentifier", "tags", "metadata"),
                  threads),
        TableLoad("steps", ("id", "name", "type", "threadId", "parentId", "streaming", "isError", "metadata",
                            "input", "output", "createdAt", "start", "end", "showInput"), steps),
        TableLoad("elements", ("id", "threadId", "type", "name", "display", "objectKey", "forId", "mime",
                               "props"), elements),
        TableLoad("feedbacks", ("id", "forId", "threadId", "value", "comment"), feedbacks),
    ]  # fmt: skip


SHAPES: dict[str, Callable[[ds.Scale], list[TableLoad]]] = {
    "openrag": _openrag,
    "prisma": _prisma,
    "sqlalchemy": _sqlalchemy,
}

_SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


async def load(database_url: str, shape: str, scale: ds.Scale, *, analyze: bool = True) -> dict[str, int]:
    """COPY the history into an empty schema of ``shape``; returns rows per table.

    ``analyze=False`` leaves the tables as ``pg_restore`` does: never vacuumed nor analyzed.
    """
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET session_replication_role = replica; SET maintenance_work_mem = '512MB'")
        indexes = await connection.fetch(_SECONDARY_INDEXES)
        for index in indexes:
            await connection.execute(f"DROP INDEX {index['name']}")
        counts = {}
        for table in SHAPES[shape](scale):
            result = await connection.copy_records_to_table(
                table.table, records=table.records(scale), columns=list(table.columns)
            )
            counts[table.table] = int(result.split()[-1])
        for index in indexes:
            await connection.execute(index["definition"])
        if analyze:
            await connection.execute("VACUUM ANALYZE")
        return counts
    finally:
        await connection.close()
