"""Order and concurrency: racing sessions store exactly what Chainlit's calls imply, in Chainlit's order."""

from __future__ import annotations

import asyncio
import logging
import os
import random

import pytest
from chainlit.types import Pagination, ThreadFilter

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import create_user
from tests.reliability.chat import Reference, Session, differences
from tests.reliability.conftest import LayerFactory
from tests.reliability.figures import FIGURES, FULL

SESSIONS, TURNS = (200, 20) if FULL else (20, 5)


async def thread_ids_listed(layer: OpenRAGDataLayer, user_id: str) -> list[str]:
    """Every thread list_threads shows the user, page by page (small pages, so cursors are exercised)."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await layer.list_threads(Pagination(first=7, cursor=cursor), ThreadFilter(userId=user_id))
        ids += [thread["id"] for thread in page.data]
        if not page.pageInfo.hasNextPage:
            return ids
        cursor = page.pageInfo.endCursor


async def read_while_writing(layer: OpenRAGDataLayer, sessions: list[Session], rng: random.Random) -> None:
    """Pool pressure: reads that compete with the writes for the few pooled connections."""
    while True:
        session = rng.choice(sessions)
        await layer.get_thread(session.reference.thread_id)
        await layer.list_threads(Pagination(first=20), ThreadFilter(userId=session.reference.user_id))
        await asyncio.sleep(rng.uniform(0, 0.01))


async def chat_later(session: Session, delay: float) -> Reference:
    await asyncio.sleep(delay)
    return await session.chat(TURNS)


async def test_racing_sessions_store_exactly_what_chainlit_sent(
    make_layer: LayerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """N sessions x M turns of unawaited writes: no step lost, duplicated or stale, no error logged."""
    seed = int(os.environ.get("RELIABILITY_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    caplog.set_level(logging.WARNING)
    layer = await make_layer(pool_size=rng.choice([1, 2, 3]))
    users = [await create_user(layer) for _ in range(max(1, SESSIONS // 4))]
    sessions = [Session(layer, rng.choice(users).id, random.Random(rng.random())) for _ in range(SESSIONS)]
    readers = [
        asyncio.create_task(read_while_writing(layer, sessions, random.Random(seed + i))) for i in range(3)
    ]
    try:
        references = await asyncio.gather(*(chat_later(s, rng.uniform(0, 0.2)) for s in sessions))
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    problems = [problem for ref in references for problem in await differences(layer, ref)]
    for user in users:
        listed = await thread_ids_listed(layer, user.id)
        owned = sorted(ref.thread_id for ref in references if ref.user_id == user.id)
        if sorted(listed) != owned:
            problems.append(f"list_threads for {user.identifier}: {len(listed)} listed, {len(owned)} owned")
    errors = [record.getMessage()[:300] for record in caplog.records if record.levelno >= logging.ERROR]
    FIGURES.sessions += SESSIONS
    FIGURES.turns += SESSIONS * TURNS
    FIGURES.lost_writes += sum(" lost" in problem for problem in problems)
    assert not problems, f"seed {seed}: {len(problems)} differences: {problems[:10]}"
    assert not errors, f"seed {seed}: {len(errors)} errors logged: {errors[:5]}"
