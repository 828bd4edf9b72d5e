"""The migrations and schema.py describe the same tables: an empty database upgraded to head matches the
MetaData, as Alembic's autogenerate compares them (columns, types, nullability, server defaults, indexes,
foreign keys)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, DefaultClause, MetaData, Text, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from chainlit_openrag_datalayer.connection import Connector, parse_database_url
from chainlit_openrag_datalayer.migrations import upgrade_async
from chainlit_openrag_datalayer.schema import VERSION_TABLE, metadata

# Revision 0002 creates these only where pg_trgm is available, which MetaData cannot say.
OPTIONAL_INDEXES = {"Thread": "Thread_name_trgm_idx", "Step": "Step_output_trgm_idx"}


def same_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """PostgreSQL writes `gen_random_uuid()::text` back as `(gen_random_uuid())::text`: the same default.
    None lets Alembic compare the rest (it evaluates both sides, which a random default never passes)."""
    if inspected_default is None or rendered_metadata_default is None:
        return None
    bare = [re.sub(r"[()\s]", "", default) for default in (inspected_default, rendered_metadata_default)]
    return False if bare[0] == bare[1] else None


def ours(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Our version table is Alembic's, not schema.py's; the optional indexes are not in MetaData."""
    if type_ == "table":
        return name != VERSION_TABLE
    if type_ == "index":
        return name not in OPTIONAL_INDEXES.values()
    return True


def differences(target: MetaData) -> Callable[[Connection], list[Any]]:
    def compare(connection: Connection) -> list[Any]:
        options = {"compare_type": True, "compare_server_default": same_default, "include_name": ours}
        return list(compare_metadata(MigrationContext.configure(connection, opts=options), target))

    return compare


@pytest.fixture
async def at_head(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection to an empty database upgraded to head."""
    await upgrade_async(database_url)
    engine = Connector(parse_database_url(database_url)).engine()  # the way the CLI connects
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


def summary(diff: list[Any]) -> set[tuple[str, str, str]]:
    """(change, table, column) for each difference; column changes come in lists of one."""
    changes = [change[0] if isinstance(change, list) else change for change in diff]
    return {
        (change[0], change[2], change[3] if isinstance(change[3], str) else change[3].name)
        for change in changes
    }


async def test_head_matches_schema_py_and_a_drift_is_reported(at_head: AsyncConnection) -> None:
    """No differences; a column and a server default that schema.py has and the migrations lack are both
    reported (so the check, and its leniency on how PostgreSQL writes defaults back, still bite)."""
    assert await at_head.run_sync(differences(metadata)) == []

    drifted = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["Thread"].append_column(Column("summary", Text, nullable=True))
    drifted.tables["User"].c.id.server_default = DefaultClause(text("md5(random()::text)"))
    assert summary(await at_head.run_sync(differences(drifted))) == {
        ("add_column", "Thread", "summary"),
        ("modify_default", "User", "id"),
    }


async def test_the_optional_search_indexes_exist_where_pg_trgm_does(at_head: AsyncConnection) -> None:
    """The indexes the comparison leaves out are there (the suite's PostgreSQL ships pg_trgm)."""

    def index_names(connection: Connection) -> dict[str, set[str]]:
        inspector = inspect(connection)
        return {
            table: {index["name"] or "" for index in inspector.get_indexes(table)}
            for table in OPTIONAL_INDEXES
        }

    found = await at_head.run_sync(index_names)
    assert all(name in found[table] for table, name in OPTIONAL_INDEXES.items())
