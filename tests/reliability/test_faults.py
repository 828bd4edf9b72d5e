"""Faults: writes issued while PostgreSQL restarts or S3 is unreachable are all stored afterwards."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from chainlit.user import User

from chainlit_openrag_datalayer import OpenRAGDataLayer, WriteQueueFullError
from chainlit_openrag_datalayer.config import S3Settings
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.conformance.factories import new_id, step_dict, text_element
from tests.reliability.chat import Reference, Session, differences
from tests.reliability.conftest import layer_settings
from tests.reliability.faults import CuttableProxy, StalledStorage
from tests.reliability.figures import FIGURES, FULL
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, PostgresServer, running_postgres

OUTAGE_SECONDS = 10.0 if FULL else 4.0
SESSIONS, TURNS, PACE = (40, 40, 0.25) if FULL else (6, 16, 0.25)
RETRY_SECONDS = 60


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this module alone: these tests stop and restart it."""
    with running_postgres() as server:
        yield server


@pytest.fixture
async def own_database(own_postgres: PostgresServer) -> str:
    url = own_postgres.create_database(f"faults_{uuid4().hex}")
    await upgrade_async(url)
    return url


@pytest.fixture
async def proxy(s3_server: str) -> AsyncIterator[CuttableProxy]:
    """The session's moto server, reached through a proxy that the test can cut."""
    endpoint = CuttableProxy(s3_server)
    await endpoint.start()
    yield endpoint
    await endpoint.cut()


async def sessions_for(layer: OpenRAGDataLayer, *, file_rate: float) -> list[Session]:
    user = await layer.create_user(User(identifier=f"user-{new_id()}"))
    assert user is not None
    return [Session(layer, user.id, random.Random(i), file_rate=file_rate) for i in range(SESSIONS)]


async def chat_through(
    sessions: list[Session],
    label: str,
    down: Callable[[], Awaitable[None]],
    up: Callable[[], Awaitable[None]],
) -> list[Reference]:
    """Run the sessions; a couple of turns in, take the service down for OUTAGE_SECONDS, then back up."""
    chats = [asyncio.create_task(session.chat(TURNS, pace=PACE)) for session in sessions]
    await asyncio.sleep(2 * PACE)
    issued_before, started = sum(s.writes for s in sessions), time.monotonic()
    await down()
    await asyncio.sleep(OUTAGE_SECONDS)
    held = sum(not task.done() for session in sessions for task in session.tasks)
    await up()
    duration = time.monotonic() - started
    issued_during = sum(s.writes for s in sessions) - issued_before
    references = await asyncio.gather(*chats)
    assert issued_during > 0, "no write was issued during the outage: the load ended too early"
    assert held > 0, "no write was waiting when the service came back: the outage was not felt"
    FIGURES.outages.append((label, duration, issued_during))
    FIGURES.sessions += len(sessions)
    FIGURES.turns += len(sessions) * TURNS
    return references


def errors_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]


def assert_nothing_lost(problems: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """Count lost writes for the figures, then require none, and no ERROR logged."""
    FIGURES.lost_writes += sum(" lost" in problem for problem in problems)
    assert not problems, problems[:10]
    assert not errors_in(caplog)


async def test_writes_during_a_postgres_restart_are_all_stored(
    own_postgres: PostgresServer, own_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops mid-chat and comes back: every step, file and thread name is stored."""
    layer = OpenRAGDataLayer(
        layer_settings(own_database, tmp_path, write_retry_seconds=RETRY_SECONDS, pool_size=3)
    )
    try:
        sessions = await sessions_for(layer, file_rate=0.4)
        references = await chat_through(
            sessions,
            "PostgreSQL stopped and restarted",
            lambda: asyncio.to_thread(own_postgres.stop),
            lambda: asyncio.to_thread(own_postgres.start),
        )
        problems = [problem for ref in references for problem in await differences(layer, ref)]
    finally:
        await layer.close()
    assert_nothing_lost(problems, caplog)


async def test_update_thread_does_not_block_the_chat_during_an_outage(
    own_postgres: PostgresServer, own_database: str, tmp_path: Path
) -> None:
    """With PostgreSQL down, update_thread returns within ~2 s, and the name is stored once it is back."""
    layer = OpenRAGDataLayer(layer_settings(own_database, tmp_path, write_retry_seconds=RETRY_SECONDS))
    thread_id = new_id()
    try:
        await layer.create_step(step_dict(thread_id))
        own_postgres.stop()
        try:
            started = time.monotonic()
            await layer.update_thread(thread_id, name="named during the outage")
            waited = time.monotonic() - started
        finally:
            own_postgres.start()
        await layer.close()  # lets the detached write finish
        layer = OpenRAGDataLayer(layer_settings(own_database, tmp_path))
        thread = await layer.get_thread(thread_id)
    finally:
        await layer.close()
    assert waited < 3.5
    assert thread is not None and thread["name"] == "named during the outage"


async def test_outage_longer_than_the_budget_logs_the_lost_write(
    own_postgres: PostgresServer, own_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A write still failing when WRITE_RETRY_SECONDS is spent is logged at ERROR, naming the step."""
    layer = OpenRAGDataLayer(layer_settings(own_database, tmp_path, write_retry_seconds=1))
    thread_id = new_id()
    lost = step_dict(thread_id, output="never stored")
    try:
        await layer.create_step(step_dict(thread_id))
        own_postgres.stop()
        try:
            with pytest.raises(Exception):  # noqa: B017  # the task fails; Chainlit logs it
                await layer.create_step(lost)
        finally:
            own_postgres.start()
    finally:
        await layer.close()
    assert any(lost["id"] in error and "lost" in error for error in errors_in(caplog)), errors_in(caplog)


async def test_element_writes_during_an_s3_outage_are_all_stored(
    database_url: str,
    proxy: CuttableProxy,
    bucket_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """S3 unreachable for several seconds mid-chat: every file is uploaded and recorded afterwards."""
    await upgrade_async(database_url)
    s3 = S3Settings(bucket_name, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, endpoint_url=proxy.url)
    layer = OpenRAGDataLayer(layer_settings(database_url, tmp_path, s3=s3, write_retry_seconds=RETRY_SECONDS))
    try:
        sessions = await sessions_for(layer, file_rate=1.0)
        references = await chat_through(sessions, "S3 unreachable", proxy.cut, proxy.start)
        problems = [problem for ref in references for problem in await differences(layer, ref)]
    finally:
        await layer.close()
    assert_nothing_lost(problems, caplog)


async def test_writes_past_max_pending_are_refused_loudly(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With MAX_PENDING_WRITES waiting, a new write is refused and logged at ERROR; the others land."""
    await upgrade_async(database_url)
    storage = StalledStorage(tmp_path / "files")
    layer = OpenRAGDataLayer(layer_settings(database_url, tmp_path, max_pending_writes=5), storage)
    elements = [text_element(new_id(), None, content=f"file {i}") for i in range(8)]
    try:
        tasks = [asyncio.ensure_future(layer.create_element(element)) for element in elements]
        await asyncio.sleep(0.2)
        storage.resume()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stored = [await layer.get_element(e.thread_id, e.id) for e in elements]
    finally:
        await layer.close()
    refused = [element.id for element, result in zip(elements, results, strict=True) if result is not None]
    assert len(refused) == 3 and all(stored[i] is not None for i in range(5))
    assert all(isinstance(result, WriteQueueFullError) for result in results if result is not None)
    assert all(any(element_id in error for error in errors_in(caplog)) for element_id in refused)
