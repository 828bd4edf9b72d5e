"""Statements counted where they leave: asyncpg's query logger on every connection of the layers' pools."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from chainlit_openrag_datalayer.connection import Connector

Init = Callable[[asyncpg.Connection], Awaitable[None]]


class StatementLog:
    """How many statements the pools opened since ``watch`` sent to PostgreSQL (each one a round trip).

    A pooled connection reports its statements once its ``init`` (the JSON codecs) has run, so opening
    and growing a pool count nothing.
    """

    def __init__(self) -> None:
        self._sent = 0

    @classmethod
    def watch(cls, monkeypatch: pytest.MonkeyPatch) -> StatementLog:
        log = cls()
        create_pool = Connector.create_pool

        async def logged_pool(connector: Connector, *, init: Init | None = None, **options: Any) -> Any:
            async def init_then_log(connection: asyncpg.Connection) -> None:
                if init is not None:
                    await init(connection)
                connection.add_query_logger(log._record)

            return await create_pool(connector, init=init_then_log, **options)

        monkeypatch.setattr(Connector, "create_pool", logged_pool)
        return log

    async def sent(self) -> int:
        """The count so far: asyncpg reports each statement in a callback of the next loop iteration."""
        await asyncio.sleep(0)
        return self._sent

    def _record(self, query: Any) -> None:
        self._sent += 1

    async def of(self, call: Callable[[], Awaitable[Any]]) -> int:
        """Statements sent while ``call`` ran."""
        before = await self.sent()
        await call()
        return await self.sent() - before
