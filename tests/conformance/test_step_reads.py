"""Reading steps back: order, favorites, JSON-ready values and UTC timestamps."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from chainlit.types import Feedback

from tests.conformance.factories import (
    create_user,
    full_step_dict,
    message_dict,
    new_id,
    parse_timestamp,
    step_dict,
    text_element,
    timestamp,
)
from tests.conformance.reads import step_of, steps_of, thread_of
from tests.conformance.versions import since

requires_favorites = since("2.10.0", "step favorites (set_step_favorite)")


async def test_get_thread_returns_steps_in_creation_order(layer: BaseDataLayer) -> None:
    """Steps come back in the order of their createdAt, oldest first."""
    thread_id, start = new_id(), datetime.now(timezone.utc)
    step_ids = [new_id() for _ in range(5)]
    for index, step_id in enumerate(step_ids):
        await layer.create_step(
            step_dict(thread_id, step_id=step_id, created_at=timestamp(start, seconds=index))
        )

    assert [step["id"] for step in await steps_of(layer, thread_id)] == step_ids


async def test_get_thread_returns_parent_before_child_created_first(layer: BaseDataLayer) -> None:
    """A child persisted before its (earlier) parent still comes back after it."""
    thread_id, parent_id, child_id, start = new_id(), new_id(), new_id(), datetime.now(timezone.utc)
    parent = step_dict(thread_id, step_id=parent_id, type="run", created_at=timestamp(start))
    child = step_dict(
        thread_id, step_id=child_id, parent_id=parent_id, created_at=timestamp(start, seconds=0.5)
    )

    await layer.create_step(child)
    await layer.create_step(parent)

    assert [step["id"] for step in await steps_of(layer, thread_id)] == [parent_id, child_id]


@pytest.mark.builtin_fails(
    "orders by startTime alone; equal times come back in heap order, updated parent last"
)
async def test_get_thread_returns_parent_before_child_with_the_same_timestamp(layer: BaseDataLayer) -> None:
    """With equal createdAt, the parent still comes before its child."""
    thread_id, parent_id, child_id, same = new_id(), new_id(), new_id(), timestamp()

    await layer.create_step(step_dict(thread_id, step_id=child_id, parent_id=parent_id, created_at=same))
    await layer.create_step(step_dict(thread_id, step_id=parent_id, type="run", created_at=same))

    assert [step["id"] for step in await steps_of(layer, thread_id)] == [parent_id, child_id]


@requires_favorites
async def test_set_step_favorite_lists_it_in_favorite_steps(layer: BaseDataLayer) -> None:
    """A step marked favorite is returned by get_favorite_steps for the thread's user."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(thread_id, user_id=user.id)
    favorite = message_dict(thread_id, "remember this", type="assistant_message", author="Assistant")
    await layer.create_step(favorite)
    await layer.create_step(message_dict(thread_id, "not this one"))

    await layer.set_step_favorite(favorite, True)

    favorites = await layer.get_favorite_steps(user.id)
    assert [(step["id"], step["output"]) for step in favorites] == [(favorite["id"], "remember this")]


@requires_favorites
async def test_unset_step_favorite_removes_it_from_favorite_steps(layer: BaseDataLayer) -> None:
    """A step whose favorite flag is cleared is no longer listed."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(thread_id, user_id=user.id)
    step = message_dict(thread_id, "briefly liked", type="assistant_message")
    await layer.create_step(step)
    await layer.set_step_favorite(step, True)

    await layer.set_step_favorite(step, False)

    assert await layer.get_favorite_steps(user.id) == []


@requires_favorites
async def test_get_favorite_steps_ignores_other_users(layer: BaseDataLayer) -> None:
    """Another user's favorite steps are not listed."""
    owner, other, thread_id = await create_user(layer), await create_user(layer), new_id()
    await layer.update_thread(thread_id, user_id=owner.id)
    step = message_dict(thread_id, "mine", type="assistant_message")
    await layer.create_step(step)
    await layer.set_step_favorite(step, True)

    assert await layer.get_favorite_steps(other.id) == []


async def test_get_thread_is_json_serializable(layer: BaseDataLayer) -> None:
    """A full thread (user, steps with generation and feedback, elements) survives JSON unchanged."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(
        thread_id, name="serializable", user_id=user.id, metadata={"a": [1, 2]}, tags=["t"]
    )
    step = full_step_dict(thread_id)
    await layer.create_step(step)
    await layer.create_element(text_element(thread_id, step["id"]))
    await layer.upsert_feedback(Feedback(forId=step["id"], value=1, threadId=thread_id, comment="good"))

    thread = await thread_of(layer, thread_id)
    assert json.loads(json.dumps(thread)) == thread
    assert (thread["name"], thread["metadata"]) == ("serializable", {"a": [1, 2]})
    [stored] = thread["steps"]
    assert stored["id"] == step["id"]
    feedback = stored.get("feedback")
    assert feedback is not None and (feedback["value"], feedback.get("comment")) == (1, "good")
    assert [element["name"] for element in thread["elements"] or []] == ["notes.txt"]


@pytest.mark.builtin_fails("timestamps are naive isoformat() strings without Z")
async def test_get_thread_timestamps_are_utc_iso_8601_with_z(layer: BaseDataLayer) -> None:
    """The thread's createdAt and each step's createdAt/start/end end in Z."""
    thread_id = new_id()
    await layer.create_step(full_step_dict(thread_id))

    thread = await thread_of(layer, thread_id)

    stamps: list[str | None] = [thread["createdAt"]]
    for step in thread["steps"]:
        stamps += [step.get("createdAt"), step.get("start"), step.get("end")]
    assert all(isinstance(stamp, str) and stamp.endswith("Z") for stamp in stamps), stamps
    assert all(parse_timestamp(stamp) for stamp in stamps if stamp)


@pytest.mark.builtin_fails("createdAt is the insert time, start/end lose the timezone and microseconds")
async def test_step_timestamps_round_trip(layer: BaseDataLayer) -> None:
    """createdAt, start and end come back as the instants Chainlit sent."""
    thread_id = new_id()
    sent = full_step_dict(thread_id)
    await layer.create_step(sent)

    stored = await step_of(layer, thread_id, sent["id"])

    pairs = {
        "createdAt": (sent.get("createdAt"), stored.get("createdAt")),
        "start": (sent.get("start"), stored.get("start")),
        "end": (sent.get("end"), stored.get("end")),
    }
    for key, (sent_value, stored_value) in pairs.items():
        assert sent_value and stored_value, key
        assert parse_timestamp(stored_value) == parse_timestamp(sent_value), key


@pytest.mark.builtin_fails("parses createdAt with strptime('%Y-%m-%dT%H:%M:%S.%fZ') only")
@pytest.mark.parametrize(
    "created_at",
    ["2025-01-02T03:04:05Z", "2025-01-02T03:04:05.123456+00:00", "2025-01-02T05:04:05+02:00"],
    ids=["z-without-fraction", "utc-offset", "non-utc-offset"],
)
async def test_create_step_accepts_lenient_timestamps(layer: BaseDataLayer, created_at: str) -> None:
    """createdAt with Z, an offset, or no fraction is accepted and stored as the same instant."""
    thread_id, step_id = new_id(), new_id()

    await layer.create_step(step_dict(thread_id, step_id=step_id, created_at=created_at))

    stored = (await step_of(layer, thread_id, step_id)).get("createdAt")
    assert stored and parse_timestamp(stored) == datetime.fromisoformat(created_at)


@pytest.mark.builtin_fails("returns only 14 of StepDict's keys (no streaming, command, modes, tags...)")
async def test_get_thread_returns_every_step_dict_key(layer: BaseDataLayer) -> None:
    """Each step read back carries every key of this Chainlit's StepDict, even when its value is None."""
    thread_id = new_id()
    await layer.create_step(step_dict(thread_id))

    step = (await steps_of(layer, thread_id))[0]

    assert StepDict.__required_keys__ | StepDict.__optional_keys__ <= set(step)
    assert step["streaming"] is False
