"""Alembic environment: async engine, our own version table, an advisory lock around upgrades."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from chainlit_openrag_datalayer.config import Settings
from chainlit_openrag_datalayer.migrations import lock_schema
from chainlit_openrag_datalayer.schema import VERSION_TABLE, metadata


def run_migrations(connection: Connection) -> tuple[str | None, str | None]:
    """Run the requested migrations; returns the revision before and after."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        lock_schema(connection)
        before = context.get_context().get_current_revision()
        context.run_migrations()
        return before, context.get_context().get_current_revision()


def report(before: str | None, after: str | None) -> str:
    """What `alembic upgrade` did, in one line (Alembic itself prints nothing without a logging config)."""
    if before == after:
        return f"chainlit-openrag-datalayer schema is already at {after or 'no revision'}: nothing to do."
    return f"chainlit-openrag-datalayer schema migrated from {before or 'no revision'} to {after}."


async def run_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    settings = Settings.from_env({**os.environ, "DATABASE_URL": url} if url else os.environ)
    engine = settings.cli_connector().engine()
    try:
        async with engine.connect() as connection:
            before, after = await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()
    context.config.print_stdout(report(before, after))


given = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: run them against the database.")
elif given is not None:
    run_migrations(given)
else:
    asyncio.run(run_online())
