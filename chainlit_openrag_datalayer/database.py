"""The database handle: opens on first use (embedded server, migrations, schema check), runs statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, RowMapping
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import convert, migrations
from .config import Settings
from .embedded import EmbeddedPostgres

OnOpen = Callable[[URL, bool], None]


class Database:
    """One engine per process, created on first use; ``on_open(url, embedded)`` is told once."""

    def __init__(self, settings: Settings, on_open: OnOpen) -> None:
        self.settings = settings
        self._on_open = on_open
        self._embedded: EmbeddedPostgres | None = None
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()

    async def engine(self) -> AsyncEngine:
        """The engine, checked against the migration head before its first use."""
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    self._engine = await self._open()
        return self._engine

    async def _open(self) -> AsyncEngine:
        url = self.settings.database_url
        if url is None:  # zero-setup default: an embedded server, migrated on first use
            self._embedded = EmbeddedPostgres(self.settings.embedded_dir)
            url = await asyncio.to_thread(self._embedded.start)
        if self._embedded is not None or self.settings.auto_migrate:
            # Workers starting together wait on an advisory lock; existing schemas are not converted here.
            await migrations.upgrade_async(url, adopt=False)
        engine = create_async_engine(
            url,
            pool_size=self.settings.pool_size,
            max_overflow=self.settings.pool_size,
            isolation_level="AUTOCOMMIT",  # every write is one statement: one round trip
            json_serializer=convert.dumps,
            hide_parameters=True,  # errors and logs never show values (metadata may hold secrets)
        )
        try:
            await migrations.check(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._on_open(url, self._embedded is not None)
        return engine

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for several statements in a row."""
        async with (await self.engine()).connect() as connection:
            yield connection

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[RowMapping]:
        """Run one statement on a pooled connection."""
        async with self.connection() as connection:
            return await rows(connection, statement, params)

    async def close(self) -> None:
        """Dispose of the pool and stop the embedded server this process started; safe twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def rows(
    connection: AsyncConnection, statement: Executable, params: Mapping[str, Any]
) -> Sequence[RowMapping]:
    """The statement's rows as mappings (none for a write without RETURNING)."""
    result = await connection.execute(statement, params)
    return result.mappings().all() if result.returns_rows else []
