"""Erasure is durable: after delete_thread, erase-user or purge, the writes an open tab or a queue still
sends for those threads (on this worker or another) bring none of their content back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import chainlit as cl
import pytest
from chainlit.types import Feedback
from chainlit.user import User
from sqlalchemy.ext.asyncio import AsyncEngine

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings, WriteRefusedError, maintenance
from tests.conformance.factories import step_dict
from tests.reliability.conftest import LayerFactory
from tests.reliability.faults import StalledStorage
from tests.reliability.inputs import fresh_id
from tests.reliability.test_secrets import database_text


class Chat:
    """One user's thread, written the way a live Chainlit session writes it; ``ERASED`` marks its content."""

    def __init__(self, layer: OpenRAGDataLayer, user_id: str, identifier: str) -> None:
        self.layer, self.user_id, self.identifier = layer, user_id, identifier
        self.thread_id, self.step_id = fresh_id(), fresh_id()
        self.erased = f"erased-{fresh_id()}"

    async def talk(self) -> None:
        await self.layer.update_thread(self.thread_id, name=self.erased, user_id=self.user_id)
        await self.layer.create_step(step_dict(self.thread_id, step_id=self.step_id, output=self.erased))
        await self.layer.create_element(self.file())
        await self.layer.upsert_feedback(Feedback(forId=self.step_id, value=1, comment=self.erased))

    def file(self) -> cl.File:
        content = self.erased.encode()
        return cl.File(content=content, name="notes.txt", thread_id=self.thread_id, for_id=self.step_id)

    async def late_writes(self, layer: OpenRAGDataLayer) -> None:
        """What an open tab still sends: the streamed answer, a file, the session on disconnect, a rating."""
        await layer.update_step(step_dict(self.thread_id, step_id=self.step_id, output=f"{self.erased} more"))
        await layer.create_step(step_dict(self.thread_id, output=self.erased))
        await layer.create_element(self.file())
        await layer.update_thread(self.thread_id, user_id=self.user_id, metadata={"messages": [self.erased]})
        with pytest.raises(WriteRefusedError, match="thread was deleted"):
            await layer.upsert_feedback(
                Feedback(forId=self.step_id, value=0, comment=self.erased, threadId=self.thread_id)
            )

    async def assert_gone(self, layer: OpenRAGDataLayer, database_url: str) -> None:
        assert await layer.get_thread(self.thread_id) is None
        assert self.erased not in await database_text(database_url)
        assert [key async for key, _ in layer.storage.objects(f"threads/{self.thread_id}/")] == []


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """What the operations commands (`erase-user`, `purge`) run on."""
    engine = Settings.from_env({"DATABASE_URL": database_url}).cli_connector().engine()
    yield engine
    await engine.dispose()


async def new_chat(layer: OpenRAGDataLayer) -> Chat:
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}"))
    assert user is not None
    chat = Chat(layer, user.id, user.identifier)
    await chat.talk()
    return chat


async def test_own_delete_thread_is_not_revived_by_the_open_tab(
    layer: OpenRAGDataLayer, database_url: str
) -> None:
    """The user deletes a thread from the sidebar while its tab keeps streaming and then disconnects."""
    chat = await new_chat(layer)

    await layer.delete_thread(chat.thread_id)
    await chat.late_writes(layer)

    await chat.assert_gone(layer, database_url)


Erase = Callable[[AsyncEngine, OpenRAGDataLayer, Chat], Awaitable[object]]


async def erase_user(engine: AsyncEngine, layer: OpenRAGDataLayer, chat: Chat) -> object:
    return await maintenance.erase_user(engine, layer.storage, chat.identifier)


async def purge(engine: AsyncEngine, layer: OpenRAGDataLayer, chat: Chat) -> object:
    plan = await maintenance.purge_plan(engine, timedelta(0), user_identifier=chat.identifier)
    return await maintenance.purge(engine, layer.storage, plan)


@pytest.mark.parametrize("erase", [erase_user, purge], ids=["erase-user", "purge"])
async def test_operator_erasure_is_not_undone_by_late_writes_of_any_worker(
    make_layer: LayerFactory, engine: AsyncEngine, database_url: str, erase: Erase
) -> None:
    """`erase-user` / `purge` run while the user's tab is open: the late writes, through the worker that
    served the chat and through another one, re-create nothing (no ownerless thread, no text, no file)."""
    serving, other_worker = await make_layer(), await make_layer()
    chat = await new_chat(serving)

    await erase(engine, serving, chat)
    await chat.late_writes(serving)
    await chat.late_writes(other_worker)

    await chat.assert_gone(serving, database_url)


async def test_writes_queued_during_erasure_are_dropped_with_their_file(
    make_layer: LayerFactory, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    """Writes waiting behind a stalled upload when `erase-user` runs land afterwards: refused, and the
    uploaded file removed again."""
    storage = StalledStorage(tmp_path / "files")
    storage.resume()
    layer = await make_layer(storage=storage)
    chat = await new_chat(layer)
    storage.stall()  # uploads wait from here on, as during an S3 outage
    queued = [
        asyncio.ensure_future(layer.create_element(chat.file())),
        asyncio.ensure_future(
            layer.update_step(step_dict(chat.thread_id, step_id=chat.step_id, output=chat.erased))
        ),
    ]
    await asyncio.sleep(0.1)

    await erase_user(engine, layer, chat)
    storage.resume()
    await asyncio.gather(*queued)

    await chat.assert_gone(layer, database_url)


async def test_deleted_thread_ids_are_forgotten_after_the_retention(
    layer: OpenRAGDataLayer, database_url: str
) -> None:
    """A deleted thread's id is kept 30 days; the next delete after that forgets it."""
    old, recent = fresh_id(), fresh_id()
    await layer.delete_thread(old)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """UPDATE "DeletedThread" SET "deletedAt" = now() - interval '31 days' WHERE id = $1""", old
        )
        await layer.delete_thread(recent)
        remembered = await connection.fetch('SELECT id FROM "DeletedThread"')
    finally:
        await connection.close()

    assert [row["id"] for row in remembered] == [recent]
