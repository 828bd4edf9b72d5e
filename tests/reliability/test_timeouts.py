"""Timeouts: with PostgreSQL stalled or blocked, every call ends within its documented bound.

A stalled server is a real TCP listener that accepts and never answers (``silent_listener``), or a
proxy that stops forwarding mid-life (``CuttableProxy.stall``); a blocked statement waits on a lock
another session holds. The figures (how long each call took to fail) are printed with the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from chainlit.types import Pagination, ThreadFilter

from chainlit_openrag_datalayer import DatabaseUnavailableError, OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.connection import APPLICATION_NAME
from chainlit_openrag_datalayer.data_layer import AWAITED_WRITE_SECONDS
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.cli_support import run_cli
from tests.conformance.factories import new_id, step_dict
from tests.reliability.conftest import LayerFactory, layer_settings
from tests.reliability.faults import CuttableProxy
from tests.reliability.figures import FIGURES
from tests.services import LOOPBACK, PostgresServer, silent_listener

BOUND = 1.0  # DATABASE_CONNECT_TIMEOUT and DATABASE_STATEMENT_TIMEOUT in these tests, in seconds
# How much later than its bound a call may end on a loaded machine before the test calls it hung: a
# liveness check, not a measurement (the figures report what was measured). A command's bound also
# counts the start of a Python process, which takes seconds on a busy machine.
GRACE = 15.0
COMMAND_START = 60.0
T = TypeVar("T")
WAITING = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"


async def ended(call: Awaitable[T], bound: float, what: str) -> T | BaseException:
    """The call's result or error; the test fails if it is still waiting well past ``bound``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=bound + GRACE)
    if not done:
        task.cancel()
        pytest.fail(f"{what} is still waiting {bound + GRACE:g} s later: no timeout applies")
    FIGURES.stalls.append((what, bound, loop.time() - started))
    return task.exception() or task.result()


def stalled_url(port: int) -> str:
    return f"postgresql://postgres@{LOOPBACK}:{port}/chainlit"


def quick(**overrides: Any) -> dict[str, Any]:
    return {"connect_timeout": BOUND, "statement_timeout": BOUND, **overrides}


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session on the test's database, to hold locks."""
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def test_get_user_on_a_stalled_database_fails_within_the_statement_timeout(tmp_path: Path) -> None:
    """A fresh layer whose server accepts and never answers: ``get_user`` (each login) ends in time."""
    with silent_listener() as port:
        layer = OpenRAGDataLayer(layer_settings(stalled_url(port), tmp_path, **quick()))
        outcome = await ended(layer.get_user("alice"), BOUND, "get_user, fresh layer")
        await ended(layer.close(), BOUND * 2, "close, fresh layer")
    assert isinstance(outcome, TimeoutError)


async def test_awaited_writes_on_a_stalled_database_return_then_give_up_in_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``update_thread`` returns after 2 s and its write is given up after WRITE_RETRY_SECONDS, logged;
    ``upsert_feedback`` fails within the statement timeout."""
    from chainlit.types import Feedback

    with silent_listener() as port:
        layer = OpenRAGDataLayer(layer_settings(stalled_url(port), tmp_path, **quick(write_retry_seconds=2)))
        thread_id = new_id()
        returned = await ended(
            layer.update_thread(thread_id, name="x"), AWAITED_WRITE_SECONDS, "update_thread"
        )
        feedback = Feedback(forId=new_id(), value=1, comment=None)
        failed = await ended(layer.upsert_feedback(feedback), BOUND, "upsert_feedback")
        with caplog.at_level(logging.ERROR, logger="chainlit_openrag_datalayer"):
            await ended(layer.close(), 2 + BOUND, "close with a write still retrying")
    assert returned is None and isinstance(failed, TimeoutError)
    assert f"update_thread for thread {thread_id} failed (TimeoutError" in caplog.text
    assert "the write is lost" in caplog.text


async def test_calls_on_an_open_pool_fail_in_time_while_the_server_hangs_then_recover(
    postgres_server: PostgresServer, database_url: str, tmp_path: Path, chainlit_context: None
) -> None:
    """Connections already open stop answering: reads and searches fail in time; service resumes by itself."""
    await upgrade_async(database_url)
    proxy = CuttableProxy(f"http://{LOOPBACK}:{postgres_server.port}")
    await proxy.start()
    url = database_url.replace(f":{postgres_server.port}/", f":{proxy.port}/")
    layer = OpenRAGDataLayer(layer_settings(url, tmp_path, **quick()))
    try:
        assert await layer.get_user("alice") is None
        proxy.stall()
        assert isinstance(await ended(layer.get_user("alice"), BOUND, "get_user, open pool"), TimeoutError)
        search = layer.list_threads(Pagination(first=10), ThreadFilter(userId=new_id(), search="hello"))
        assert isinstance(await ended(search, BOUND, "list_threads search, open pool"), TimeoutError)
        proxy.resume()
        assert await layer.get_user("alice") is None
    finally:
        await layer.close()
        await proxy.cut()


async def test_a_search_blocked_on_the_server_is_cancelled_there(
    make_layer: LayerFactory, admin: asyncpg.Connection
) -> None:
    """Past DATABASE_STATEMENT_TIMEOUT the statement is cancelled on the server, not left waiting."""
    layer = await make_layer(**quick())
    await layer.get_user("opens the pool")
    async with admin.transaction():
        await admin.execute('LOCK TABLE "Thread" IN ACCESS EXCLUSIVE MODE')
        search = layer.list_threads(Pagination(first=10), ThreadFilter(userId=new_id(), search="hello"))
        assert isinstance(await ended(search, BOUND, "list_threads search, blocked"), TimeoutError)
        for _ in range(int(GRACE * 10)):  # the cancel request travels on a connection of its own
            if not await admin.fetchval(WAITING, APPLICATION_NAME):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the timed-out search still waits on the server")


async def test_a_write_blocked_on_a_lock_lets_other_threads_write(
    make_layer: LayerFactory, admin: asyncpg.Connection
) -> None:
    """A write stuck behind a row lock holds its connection one statement timeout at most: with a
    one-connection pool, another thread's write still lands, and the stuck one lands after the lock."""
    layer = await make_layer(**quick(pool_size=1, write_retry_seconds=60))
    stuck, other = new_id(), new_id()
    await layer.create_step(step_dict(stuck, output="a"))
    transaction = admin.transaction()
    await transaction.start()
    await admin.execute('SELECT 1 FROM "Thread" WHERE id = $1 FOR UPDATE', stuck)
    blocked = asyncio.ensure_future(layer.create_step(step_dict(stuck, output="b")))
    try:
        await ended(layer.create_step(step_dict(other, output="c")), BOUND, "another thread's write")
        assert not blocked.done()
        assert await admin.fetchval('SELECT count(*) FROM "Step" WHERE "threadId" = $1', other) == 1
    finally:
        await transaction.rollback()
    await ended(blocked, 60, "the blocked write, once the lock is gone")
    assert await admin.fetchval('SELECT count(*) FROM "Step" WHERE "threadId" = $1', stuck) == 2


async def test_migrations_the_factory_and_commands_give_up_on_a_stalled_server(tmp_path: Path) -> None:
    """``upgrade``, the ``@cl.data_layer`` factory and the CLI fail within DATABASE_CONNECT_TIMEOUT."""
    with silent_listener() as port:
        environ = {"DATABASE_URL": stalled_url(port), "DATABASE_CONNECT_TIMEOUT": str(BOUND)}
        connector = Settings.from_env(environ).cli_connector()
        outcome = await ended(upgrade_async(connector), BOUND, "upgrade")
        assert isinstance(outcome, TimeoutError)
        factory = asyncio.to_thread(OpenRAGDataLayer.from_env, environ)
        assert isinstance(await ended(factory, BOUND, "the @cl.data_layer factory"), DatabaseUnavailableError)
        command = asyncio.to_thread(run_cli, environ, "current")
        result = await ended(command, BOUND + COMMAND_START, "the CLI (current), process start included")
    assert not isinstance(result, BaseException)
    assert result.returncode == 1 and "DATABASE_CONNECT_TIMEOUT" in result.stderr


async def test_a_command_blocked_on_the_server_fails_within_the_cli_statement_timeout(
    database_url: str, admin: asyncpg.Connection
) -> None:
    """A command's statement waiting on a lock is cancelled after CLI_STATEMENT_TIMEOUT: exit 1."""
    await upgrade_async(database_url)
    environ = {"DATABASE_URL": database_url, "CLI_STATEMENT_TIMEOUT": str(BOUND)}
    async with admin.transaction():
        await admin.execute("LOCK TABLE chainlit_openrag_datalayer_version IN ACCESS EXCLUSIVE MODE")
        command = asyncio.to_thread(run_cli, environ, "current")
        result = await ended(command, BOUND + COMMAND_START, "the CLI blocked, process start included")
    assert not isinstance(result, BaseException)
    assert result.returncode == 1 and "CLI_STATEMENT_TIMEOUT" in result.stderr
