"""Calls a user waits on never wait behind background writes for a connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import User

from chainlit_openrag_datalayer.database import write_slots
from tests.conformance.factories import new_id, step_dict
from tests.reliability.conftest import LayerFactory
from tests.statement_log import StatementLog

POOL_SIZE = 4


@pytest.mark.parametrize(("pool_size", "slots"), [(1, 1), (2, 1), (4, 3), (20, 15)])
def test_a_quarter_of_the_pool_is_kept_for_requests(pool_size: int, slots: int) -> None:
    """Background writes may hold all connections but a quarter (at least one, unless there is one)."""
    assert write_slots(pool_size) == slots


async def test_requests_are_answered_while_every_write_is_stuck(
    make_layer: LayerFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more writes blocked on a lock than the pool has connections, login, the sidebar and opening a
    thread still answer: the writes hold their slots, and a connection stays free."""
    statements = StatementLog.watch(monkeypatch)
    layer = await make_layer(pool_size=POOL_SIZE, statement_timeout=60, write_retry_seconds=120)
    user = await layer.create_user(User(identifier=f"user-{new_id()}"))
    assert user is not None
    admin = await asyncpg.connect(database_url)
    transaction = admin.transaction()
    await transaction.start()
    await admin.execute('LOCK TABLE "Step" IN SHARE MODE')  # step upserts wait; reads do not
    writes = [
        asyncio.ensure_future(layer.create_step(step_dict(new_id(), output="stuck")))
        for _ in range(2 * POOL_SIZE)
    ]
    try:
        requests = asyncio.gather(
            layer.get_user(user.identifier),
            layer.list_threads(Pagination(first=20), ThreadFilter(userId=user.id)),
            layer.get_thread(new_id()),
        )
        done, _ = await asyncio.wait({requests, *writes}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {requests}, "a request waited until a write gave way"
        found, page, thread = requests.result()
        assert found is not None and page.data == [] and thread is None
    finally:
        await transaction.rollback()
        await admin.close()
    await asyncio.gather(*writes)
    assert await statements.sent() == 1 + 2 * POOL_SIZE + 4  # one round trip each, nothing more
