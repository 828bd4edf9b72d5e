"""The database handle: opens on first use (embedded server, migrations, schema check), runs statements.

Statements are built with SQLAlchemy Core (``queries.py``) and compiled once; each call then goes
straight to an asyncpg pool. Measured on loopback (2 cores), a step upsert took ~870 µs through
SQLAlchemy's async engine and ~230 µs as the same SQL on asyncpg: the per-call engine machinery
(greenlet hop, pool events, parameter and result processing) cost more than the round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import URL
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from . import migrations, normalise
from .config import Settings
from .embedded import EmbeddedPostgres

OnOpen = Callable[[URL, bool], None]
Row = Mapping[str, Any]  # an asyncpg.Record
_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class CompiledStatement:
    """SQL text with ``$n`` placeholders, and how to order a parameter mapping into them."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]

    @classmethod
    def of(cls, statement: Executable) -> CompiledStatement:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        constants = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        return cls(compiled.string, tuple(compiled.positiontup or ()), constants)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """Positional values; every string made storable (ids come straight from clients)."""
        values = (params[name] if name in params else self.constants[name] for name in self.names)
        return [normalise.clean_text(value) if isinstance(value, str) else value for value in values]


class Database:
    """One asyncpg pool per process, created on first use; ``on_open(url, embedded)`` is told once."""

    def __init__(self, settings: Settings, on_open: OnOpen) -> None:
        self.settings = settings
        self.statements_sent = 0  # what tests count: one per round trip
        self._on_open = on_open
        self._embedded: EmbeddedPostgres | None = None
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._compiled: dict[int, tuple[Executable, CompiledStatement]] = {}

    async def pool(self) -> asyncpg.Pool:
        """The pool, checked against the migration head before its first use."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await self._open()
        return self._pool

    async def _open(self) -> asyncpg.Pool:
        url = self.settings.database_url
        if url is None:  # zero-setup default: an embedded server, migrated on first use
            self._embedded = EmbeddedPostgres(self.settings.embedded_dir)
            url = await asyncio.to_thread(self._embedded.start)
        if self._embedded is not None or self.settings.auto_migrate:
            # Workers starting together wait on an advisory lock; existing schemas are not converted here.
            await migrations.upgrade_async(url, adopt=False)
        await migrations.check_url(url)
        pool = await asyncpg.create_pool(
            **_connect_arguments(url),
            min_size=1,
            max_size=self.settings.pool_size,
            init=_set_codecs,
            reset=_keep_session,
        )
        self._on_open(url, self._embedded is not None)
        return pool

    def compiled(self, statement: Executable) -> CompiledStatement:
        """Compile once per statement object (``queries`` builders return cached objects)."""
        cached = self._compiled.get(id(statement))
        if cached is None or cached[0] is not statement:
            cached = (statement, CompiledStatement.of(statement))
            self._compiled[id(statement)] = cached
        return cached[1]

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run one statement on a pooled connection: one round trip."""
        compiled = self.compiled(statement)
        arguments = compiled.arguments(params)
        self.statements_sent += 1
        async with (await self.pool()).acquire() as connection:
            rows: Sequence[Row] = await connection.fetch(compiled.sql, *arguments)
        return rows

    async def close(self) -> None:
        """Close the pool and stop the embedded server this process started; safe twice."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _connect_arguments(url: URL) -> dict[str, Any]:
    """asyncpg's own arguments: no DSN quoting, so any password works; ``?host=`` may be a socket dir."""
    query = dict(url.query)
    arguments: dict[str, Any] = {
        "host": url.host or query.pop("host", None),
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }
    if "ssl" in query:
        arguments["ssl"] = query.pop("ssl")
    if query:
        arguments["server_settings"] = {key: str(value) for key, value in query.items()}
    return {key: value for key, value in arguments.items() if value is not None}


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (``RESET ALL``, ``UNLISTEN *``...): a second round trip per
    call, and nothing to undo, since the layer never changes session state or opens a transaction."""


async def _set_codecs(connection: asyncpg.Connection) -> None:
    """JSON columns in and out as Python values, made storable by ``normalise.dumps``."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=normalise.dumps, decoder=normalise.loads, schema="pg_catalog"
        )
