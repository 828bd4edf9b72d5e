"""Round trips per Chainlit call, counted (not timed): a regression in statements fails CI."""

from __future__ import annotations

import chainlit as cl
import pytest
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import User

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import PNG_BYTES, new_id, step_dict, timestamp
from tests.statement_log import StatementLog


@pytest.fixture
def layer(openrag_layer: OpenRAGDataLayer) -> OpenRAGDataLayer:
    return openrag_layer


@pytest.fixture
async def counter(layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch) -> StatementLog:
    log = StatementLog.watch(monkeypatch)
    await layer.database.pool()  # the start-up schema check is not counted
    return log


async def test_every_write_is_one_statement(layer: OpenRAGDataLayer, counter: StatementLog) -> None:
    """create_step, update_step, create_element, update_thread, feedback and deletes: one statement each."""
    user = await layer.create_user(User(identifier=f"user-{new_id()}"))
    assert user is not None
    thread_id, parent_id, step_id = new_id(), new_id(), new_id()
    child = step_dict(thread_id, step_id=step_id, parent_id=parent_id, output="hi", created_at=timestamp())
    image = cl.Image(content=PNG_BYTES, name="pixel.png", thread_id=thread_id, for_id=step_id)
    counts = {
        "create_user": await counter.of(lambda: layer.create_user(User(identifier=user.identifier))),
        "create_step (thread missing)": await counter.of(lambda: layer.create_step(child)),
        "update_step (parent missing)": await counter.of(
            lambda: layer.update_step({**child, "output": "hello"})
        ),
        "update_thread": await counter.of(lambda: layer.update_thread(thread_id, name="n", user_id=user.id)),
        "create_element": await counter.of(lambda: layer.create_element(image)),
        "upsert_feedback": await counter.of(lambda: layer.upsert_feedback(Feedback(forId=step_id, value=1))),
        "delete_element": await counter.of(lambda: layer.delete_element(image.id, thread_id)),
        "delete_step": await counter.of(lambda: layer.delete_step(step_id)),
        "delete_thread": await counter.of(lambda: layer.delete_thread(thread_id)),
    }
    assert counts == dict.fromkeys(counts, 1)


async def test_reads_take_a_constant_number_of_statements(
    layer: OpenRAGDataLayer, counter: StatementLog
) -> None:
    """Reads take a fixed number of statements whatever the thread's size (get_thread: 2)."""
    user = await layer.create_user(User(identifier=f"user-{new_id()}"))
    assert user is not None
    thread_id = new_id()
    await layer.update_thread(thread_id, name="big", user_id=user.id)
    for index in range(30):
        await layer.create_step(
            step_dict(thread_id, output=f"step {index}", created_at=timestamp(seconds=index))
        )
    for index in range(5):
        await layer.create_element(
            cl.Text(content=f"text {index}", name=f"t{index}.txt", thread_id=thread_id)
        )
    page = Pagination(first=10)
    counts = {
        "get_user": await counter.of(lambda: layer.get_user(user.identifier)),
        "get_thread_author": await counter.of(lambda: layer.get_thread_author(thread_id)),
        "get_thread": await counter.of(lambda: layer.get_thread(thread_id)),
        "list_threads": await counter.of(lambda: layer.list_threads(page, ThreadFilter(userId=user.id))),
        "list_threads search": await counter.of(
            lambda: layer.list_threads(page, ThreadFilter(userId=user.id, search="step", feedback=1))
        ),
        "get_favorite_steps": await counter.of(lambda: layer.get_favorite_steps(user.id)),
    }
    assert counts == {
        "get_user": 1,
        "get_thread_author": 1,
        "get_thread": 2,
        "list_threads": 1,
        "list_threads search": 1,
        "get_favorite_steps": 1,
    }
