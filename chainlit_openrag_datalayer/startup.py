"""Start-up policy: what must hold before the layer stores anything, and how it is brought about.

Without ``DATABASE_URL`` an embedded server is used, migrated on first use; with it, the schema is
migrated only when ``DATABASE_AUTO_MIGRATE`` says so. Either way the schema must then be at this
package's head, and a pooler in front of PostgreSQL (PgBouncer) is detected, since it rules out named
prepared statements. ``check_ready`` asks the same of the database for the ``@cl.data_layer`` factory.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from . import migrations
from .config import Settings
from .connection import Connector, behind_pooler
from .embedded import check_safe_start, require_embedded_postgres
from .errors import DatabaseUnavailableError, DataLayerError


async def make_ready(connector: Connector, *, migrate: bool) -> bool:
    """Bring the schema to head when ``migrate``, refuse one that is not; True when a pooler is in front
    (asked on the same connection)."""
    if migrate:
        # Workers starting together wait on an advisory lock; existing schemas are not converted here.
        await migrations.upgrade_async(connector, adopt=False)
    async with connector.connection() as connection:
        await migrations.check(connection)
        return await behind_pooler(connection)


def check_ready(settings: Settings) -> None:
    """Blocking: raise what to fix when history could not be stored (for the ``@cl.data_layer`` factory).

    The server must answer and its schema be at this package's head (``DATABASE_AUTO_MIGRATE`` first
    brings it there); without ``DATABASE_URL`` the ``[embedded]`` extra must be installed and able to start
    without letting other local users in.
    """
    if settings.database_url is None:
        require_embedded_postgres()
        check_safe_start(settings.embedded_dir)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openrag-datalayer-check") as executor:
        executor.submit(asyncio.run, _check_ready(settings)).result()


async def _check_ready(settings: Settings) -> None:
    connector = settings.connector()
    try:
        await make_ready(connector, migrate=settings.auto_migrate)
    except DataLayerError:
        raise
    except (
        OSError,
        asyncio.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        SQLAlchemyError,
    ) as error:
        raise DatabaseUnavailableError(
            f"cannot use the database at {connector.url.display} ({type(error).__name__}: {error}). "
            "Check DATABASE_URL and that PostgreSQL accepts connections from here."
        ) from error
