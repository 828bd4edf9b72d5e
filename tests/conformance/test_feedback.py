"""Feedback: upsert_feedback, delete_feedback, and how a thread shows it."""

from __future__ import annotations

from typing import Literal

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.types import Feedback, Pagination, ThreadFilter

from tests.conformance.factories import create_user, message_dict, new_id
from tests.conformance.reads import step_of


async def new_message(layer: BaseDataLayer, user_id: str | None = None) -> tuple[str, str]:
    """A thread (of `user_id`, if given) with one assistant message; returns (thread_id, step_id)."""
    thread_id = new_id()
    if user_id is not None:
        await layer.update_thread(thread_id, user_id=user_id)
    message = message_dict(thread_id, "an answer", type="assistant_message", author="Assistant")
    await layer.create_step(message)
    return thread_id, message["id"]


async def test_upsert_feedback_returns_an_id(layer: BaseDataLayer) -> None:
    """upsert_feedback without an id returns a new non-empty id."""
    thread_id, step_id = await new_message(layer)

    feedback_id = await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id))

    assert isinstance(feedback_id, str) and feedback_id


async def test_get_thread_shows_feedback_on_its_step(layer: BaseDataLayer) -> None:
    """The step's feedback carries the id, value and comment given."""
    thread_id, step_id = await new_message(layer)
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=step_id, value=0, threadId=thread_id, comment="wrong")
    )

    feedback = (await step_of(layer, thread_id, step_id)).get("feedback")

    assert feedback is not None
    assert (feedback["id"], feedback["value"], feedback["comment"]) == (feedback_id, 0, "wrong")


async def test_upsert_feedback_with_same_id_updates_it(layer: BaseDataLayer) -> None:
    """A second upsert with the returned id changes value and comment instead of adding feedback."""
    thread_id, step_id = await new_message(layer)
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=step_id, value=0, threadId=thread_id, comment="bad")
    )

    again = await layer.upsert_feedback(
        Feedback(forId=step_id, value=1, threadId=thread_id, id=feedback_id, comment="fixed")
    )

    feedback = (await step_of(layer, thread_id, step_id)).get("feedback")
    assert again == feedback_id
    assert feedback is not None and (feedback["id"], feedback["value"], feedback["comment"]) == (
        feedback_id,
        1,
        "fixed",
    )


async def test_delete_feedback_removes_it(layer: BaseDataLayer) -> None:
    """After delete_feedback the step shows no feedback."""
    thread_id, step_id = await new_message(layer)
    feedback_id = await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id))

    assert await layer.delete_feedback(feedback_id) is True

    assert (await step_of(layer, thread_id, step_id)).get("feedback") is None


@pytest.mark.builtin_fails("list_threads ignores filters.feedback")
@pytest.mark.parametrize("value", [0, 1])
async def test_list_threads_feedback_filter_keeps_threads_with_that_value(
    layer: BaseDataLayer, value: Literal[0, 1]
) -> None:
    """filters.feedback lists only the user's threads with feedback of that value."""
    user = await create_user(layer)
    liked_thread, liked_step = await new_message(layer, user.id)
    disliked_thread, disliked_step = await new_message(layer, user.id)
    await new_message(layer, user.id)
    await layer.upsert_feedback(Feedback(forId=liked_step, value=1, threadId=liked_thread))
    await layer.upsert_feedback(Feedback(forId=disliked_step, value=0, threadId=disliked_thread))

    page = await layer.list_threads(Pagination(first=10), ThreadFilter(userId=user.id, feedback=value))

    assert [thread["id"] for thread in page.data] == [liked_thread if value == 1 else disliked_thread]
