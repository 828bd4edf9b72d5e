"""PgBouncer in transaction mode, with fewer server connections than clients: the app, migrations and
the CLI work through it out of the box (the conformance suite also runs through it: ``-m pgbouncer``)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import User

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.cli_support import run_cli
from tests.conformance.factories import message_dict, step_dict
from tests.services import PgBouncer

SESSIONS, TURNS = 24, 5


async def test_named_prepared_statements_break_through_this_pgbouncer(
    pgbouncer: PgBouncer, database_url: str
) -> None:
    """The set-up can fail: asyncpg's own statement cache, as the issue saw it, breaks through it."""
    url = pgbouncer.url(database_url)

    async def queries(n: int) -> None:
        connection = await asyncpg.connect(url)
        try:
            for i in range(20):
                assert await connection.fetchval("SELECT $1::int + $2::int", n, i) == n + i
        finally:
            await connection.close()

    with pytest.raises(asyncpg.PostgresError, match="prepared statement"):
        await asyncio.gather(*(queries(n) for n in range(8)))


async def test_the_pooler_is_detected_and_every_call_works(pgbouncer_layer: OpenRAGDataLayer) -> None:
    """The layer notices PgBouncer (statements go unnamed) and a chat's calls work."""
    user = await pgbouncer_layer.create_user(User(identifier=f"user-{uuid4()}"))
    assert user is not None and pgbouncer_layer.database.behind_pooler


async def test_many_sessions_through_a_smaller_server_pool(pgbouncer_layer: OpenRAGDataLayer) -> None:
    """24 sessions at once, each with its own thread, through 2 server connections: every write lands,
    every read answers."""
    layer = pgbouncer_layer
    user = await layer.create_user(User(identifier=f"user-{uuid4()}"))
    assert user is not None

    async def session() -> str:
        thread_id = str(uuid4())
        await layer.update_thread(thread_id, name="a chat", user_id=user.id)
        for turn in range(TURNS):
            await layer.create_step(message_dict(thread_id, f"question {turn}"))
            await layer.create_step(step_dict(thread_id, output=f"answer {turn}"))
            await layer.list_threads(Pagination(first=20), ThreadFilter(userId=user.id))
        return thread_id

    thread_ids = await asyncio.gather(*(session() for _ in range(SESSIONS)))
    threads = await asyncio.gather(*(layer.get_thread(thread_id) for thread_id in thread_ids))
    assert [len(thread["steps"]) for thread in threads if thread] == [2 * TURNS] * SESSIONS


async def test_migrations_and_commands_work_through_pgbouncer(
    pgbouncer: PgBouncer, database_url: str
) -> None:
    """``upgrade``, ``current`` and ``purge`` as an operator runs them, against PgBouncer's address."""
    environ = {"DATABASE_URL": pgbouncer.url(database_url)}
    for command in (("upgrade",), ("current",), ("purge", "--older-than", "90d", "--dry-run")):
        result = run_cli(environ, *command)
        assert result.returncode == 0, result.stderr
    assert "(head)" in run_cli(environ, "current").stdout
