"""The database handle: a pool opened on first use (what must hold first: ``startup``), statements run on it.

Statements are built with SQLAlchemy Core (``read_queries``, ``write_queries``) and compiled once;
each call then goes straight to an asyncpg pool. Measured on loopback (2 cores), a step upsert took
~870 µs through SQLAlchemy's async engine and ~230 µs as the same SQL on asyncpg: the per-call engine
machinery (greenlet hop, pool events, parameter and result processing) cost more than the round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from . import normalise, startup
from .config import Settings
from .embedded import EmbeddedPostgres
from .errors import DatabaseUnavailableError
from .schema import Row

logger = logging.getLogger(__name__)

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
    """One asyncpg pool per process, opened on first use (and logged once, at INFO).

    Calls a user waits on and the background write queue share the pool, but background writes hold at
    most ``write_slots(pool_size)`` connections: the others stay free for the calls Chainlit awaits.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.behind_pooler = False
        self._embedded: EmbeddedPostgres | None = None
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Task[asyncpg.Pool] | None = None
        self._write_slots = asyncio.Semaphore(write_slots(settings.pool_size))
        self._compiled: dict[int, tuple[Executable, CompiledStatement]] = {}
        self._releasing: set[asyncio.Future[None]] = set()

    async def pool(self) -> asyncpg.Pool:
        """The pool, checked against the migration head before its first use.

        Opening runs once, as a task of its own: a caller that stops waiting (its deadline passed)
        leaves it running for the next one; a failed opening is tried again by the next call.
        """
        if self._pool is not None:
            return self._pool
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.ensure_future(self._open())
            opening.add_done_callback(self._opened)
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            if opening.cancelled():  # close() gave up on it, not a cancellation of this call
                raise DatabaseUnavailableError("the layer closed while the database was opening") from None
            raise

    def _opened(self, opening: asyncio.Task[asyncpg.Pool]) -> None:
        if self._opening is opening:
            self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self._pool = opening.result()

    async def _open(self) -> asyncpg.Pool:
        url = self.settings.database_url
        if url is None:  # zero-setup default: an embedded server, migrated on first use
            self._embedded = EmbeddedPostgres(self.settings.embedded_dir)
            url = await asyncio.to_thread(self._embedded.start)
        connector = self.settings.connector(url)
        migrate = self._embedded is not None or self.settings.auto_migrate
        self.behind_pooler = await startup.make_ready(connector, migrate=migrate)
        if self.behind_pooler:
            logger.info("A pooler (PgBouncer?) is in front of PostgreSQL: statements are sent unnamed")
        pool = await connector.create_pool(
            max_size=self.settings.pool_size,
            prepared_statements=not self.behind_pooler,
            init=_set_codecs,
            reset=_keep_session,
        )
        logger.info(
            "Database pool open on %s%s", connector.url.display, " (embedded)" * (self._embedded is not None)
        )
        return pool

    def compiled(self, statement: Executable) -> CompiledStatement:
        """Compile once per statement object (the query builders return cached objects)."""
        cached = self._compiled.get(id(statement))
        if cached is None or cached[0] is not statement:
            cached = (statement, CompiledStatement.of(statement))
            self._compiled[id(statement)] = cached
        return cached[1]

    async def execute(
        self, statement: Executable, params: Mapping[str, Any], *, background: bool = False
    ) -> Sequence[Row]:
        """Run one statement on a pooled connection: one round trip, bounded by the statement timeout.

        A ``background`` write first waits for one of its slots, so that writes never take the
        connections kept for the calls a user waits on.
        """
        compiled = self.compiled(statement)
        arguments = compiled.arguments(params)
        pool = await self.pool()
        async with self._write_slots if background else contextlib.nullcontext():
            connection = await pool.acquire()
            try:
                rows: Sequence[Row] = await connection.fetch(compiled.sql, *arguments)
            except BaseException:
                # Cut short (a timeout): the cancel request may take a connect timeout to reach a
                # hung server, and the pool waits for it before taking the connection back.
                self._release_later(pool, connection)
                raise
            await pool.release(connection)
        return rows

    def _release_later(self, pool: asyncpg.Pool, connection: asyncpg.Connection) -> None:
        release = asyncio.ensure_future(pool.release(connection))
        self._releasing.add(release)
        release.add_done_callback(self._released)

    def _released(self, release: asyncio.Future[None]) -> None:
        self._releasing.discard(release)
        if not release.cancelled() and release.exception() is not None:
            logger.debug("A connection could not be released: %r", release.exception())

    async def close(self) -> None:
        """Close the pool and stop the embedded server this process started; safe twice."""
        opening, self._opening = self._opening, None
        if opening is not None:
            # An opening in progress (a server starting) gets a moment to finish before it is cancelled.
            await asyncio.wait({opening}, timeout=self.settings.connect_timeout)
            opening.cancel()
            with contextlib.suppress(BaseException):
                self._pool = self._pool or await opening
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.settings.connect_timeout)
            except asyncio.TimeoutError:  # connections stuck on a stalled server
                pool.terminate()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def write_slots(pool_size: int) -> int:
    """Connections background writes may hold: a quarter of the pool (at least one) stays for requests."""
    return max(1, pool_size - max(1, pool_size // 4))


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (``RESET ALL``, ``UNLISTEN *``...): a second round trip per
    call, and nothing to undo, since the layer never changes session state or opens a transaction."""


async def _set_codecs(connection: asyncpg.Connection) -> None:
    """JSON columns in and out as Python values, made storable by ``normalise.dumps``."""
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=normalise.dumps, decoder=normalise.loads, schema="pg_catalog"
        )
