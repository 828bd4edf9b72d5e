"""Threads: update_thread upserts and merges, get_thread, get_thread_author, delete_thread."""

from __future__ import annotations

from typing import Any

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.types import Feedback

from tests.conformance.factories import create_user, new_id, step_dict, text_element
from tests.conformance.objects import StoredObjects, element_key


async def metadata_after(layer: BaseDataLayer, *updates: dict[str, Any]) -> dict[str, Any] | None:
    """The thread metadata after applying each update_thread(metadata=...) in turn to a new thread."""
    thread_id = new_id()
    for metadata in updates:
        await layer.update_thread(thread_id, metadata=metadata)
    thread = await layer.get_thread(thread_id)
    assert thread is not None
    return thread["metadata"]


async def test_update_thread_creates_a_missing_thread(layer: BaseDataLayer) -> None:
    """update_thread on an unknown id creates the thread with the given name, user and metadata."""
    user, thread_id = await create_user(layer), new_id()

    await layer.update_thread(thread_id, name="First chat", user_id=user.id, metadata={"a": 1})

    thread = await layer.get_thread(thread_id)
    assert thread is not None
    assert (thread["id"], thread["name"], thread["userId"]) == (thread_id, "First chat", user.id)
    assert thread["userIdentifier"] == user.identifier
    assert thread["metadata"] == {"a": 1}


@pytest.mark.builtin_fails("get_thread always returns tags=[]")
async def test_update_thread_stores_tags(layer: BaseDataLayer) -> None:
    """Tags given to update_thread come back from get_thread."""
    thread_id = new_id()

    await layer.update_thread(thread_id, tags=["rag", "urgent"])

    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["tags"] == ["rag", "urgent"]


async def test_update_thread_takes_the_name_from_metadata_when_none_is_given(layer: BaseDataLayer) -> None:
    """An app's `cl.user_session["name"]`, saved into the metadata, names the thread."""
    thread_id = new_id()
    await layer.update_thread(thread_id, name="First message")

    await layer.update_thread(thread_id, metadata={"name": "Named by the app", "chat_profile": "docs"})

    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["name"] == "Named by the app"


async def test_update_thread_name_argument_wins_over_metadata(layer: BaseDataLayer) -> None:
    """A name given explicitly (a rename) is the one stored, whatever the metadata says."""
    thread_id = new_id()

    await layer.update_thread(thread_id, name="Renamed", metadata={"name": "From the session"})

    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["name"] == "Renamed"


async def test_update_thread_with_none_keeps_name_and_user(layer: BaseDataLayer) -> None:
    """Arguments left as None do not change the stored name or user."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(thread_id, name="Kept name", user_id=user.id)

    await layer.update_thread(thread_id, metadata={"b": 2})

    thread = await layer.get_thread(thread_id)
    assert thread is not None
    assert (thread["name"], thread["userId"]) == ("Kept name", user.id)


@pytest.mark.builtin_fails("get_thread always returns tags=[]")
async def test_update_thread_with_none_keeps_tags(layer: BaseDataLayer) -> None:
    """tags=None leaves the stored tags alone."""
    thread_id = new_id()
    await layer.update_thread(thread_id, tags=["kept"])

    await layer.update_thread(thread_id, name="renamed")

    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["tags"] == ["kept"]


async def test_update_thread_without_metadata_leaves_an_empty_object(layer: BaseDataLayer) -> None:
    """Renaming twice, metadata never given, keeps metadata an empty object (resume reads it with .get)."""
    thread_id = new_id()
    await layer.update_thread(thread_id, name="first")

    await layer.update_thread(thread_id, name="second")

    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["metadata"] == {}


async def test_update_thread_metadata_adds_new_keys_and_keeps_others(layer: BaseDataLayer) -> None:
    """New metadata keys are merged in; keys not mentioned stay."""
    assert await metadata_after(layer, {"a": 1}, {"b": 2}) == {"a": 1, "b": 2}


async def test_update_thread_metadata_overwrites_a_key(layer: BaseDataLayer) -> None:
    """A key given again takes the new value."""
    assert await metadata_after(layer, {"a": 1, "b": 2}, {"a": "new"}) == {"a": "new", "b": 2}


async def test_update_thread_metadata_key_set_to_none_is_removed(layer: BaseDataLayer) -> None:
    """A key whose new value is None disappears from the metadata."""
    assert await metadata_after(layer, {"a": 1, "b": 2}, {"a": None}) == {"b": 2}


async def test_update_thread_metadata_nested_value_is_replaced(layer: BaseDataLayer) -> None:
    """The merge is shallow: a nested dict replaces the stored one instead of merging into it."""
    merged = await metadata_after(layer, {"env": {"x": 1, "y": 2}}, {"env": {"y": 3}})
    assert merged == {"env": {"y": 3}}


async def test_get_thread_author_returns_the_users_identifier(layer: BaseDataLayer) -> None:
    """get_thread_author is the identifier of the thread's user."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(thread_id, user_id=user.id)

    assert await layer.get_thread_author(thread_id) == user.identifier


@pytest.mark.builtin_fails("raises ValueError('Thread ... not found')")
async def test_get_thread_author_of_unknown_thread_is_empty(layer: BaseDataLayer) -> None:
    """get_thread_author of a thread that does not exist is ''."""
    assert await layer.get_thread_author(new_id()) == ""


@pytest.mark.builtin_fails("raises ValueError('Thread ... not found')")
async def test_get_thread_author_of_thread_without_user_is_empty(layer: BaseDataLayer) -> None:
    """get_thread_author of a thread with no user is ''."""
    thread_id = new_id()
    await layer.update_thread(thread_id, name="anonymous")

    assert await layer.get_thread_author(thread_id) == ""


async def test_get_thread_unknown_returns_none(layer: BaseDataLayer) -> None:
    """get_thread of an id nobody created is None."""
    assert await layer.get_thread(new_id()) is None


async def test_delete_thread_removes_the_thread(layer: BaseDataLayer) -> None:
    """After delete_thread, get_thread returns None."""
    thread_id = new_id()
    await layer.create_step(step_dict(thread_id, output="hello"))

    await layer.delete_thread(thread_id)

    assert await layer.get_thread(thread_id) is None


async def test_delete_thread_removes_its_objects(layer: BaseDataLayer, stored_objects: StoredObjects) -> None:
    """The files of the thread's elements are deleted from the bucket."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id))
    element = text_element(thread_id, step_id)
    await layer.create_element(element)
    assert stored_objects.keys(f"threads/{thread_id}/") == [element_key(thread_id, element.id)]

    await layer.delete_thread(thread_id)

    assert stored_objects.keys(f"threads/{thread_id}/") == []


@pytest.mark.builtin_fails("a late write re-creates the deleted thread, without owner, with its content")
async def test_delete_thread_is_not_revived_by_late_writes(layer: BaseDataLayer) -> None:
    """Writes an open tab sends after the delete (step, element, session metadata) bring nothing back."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id, output="erased answer"))
    await layer.create_element(text_element(thread_id, step_id))
    await layer.upsert_feedback(Feedback(forId=step_id, value=1, threadId=thread_id))

    await layer.delete_thread(thread_id)
    await layer.update_step(step_dict(thread_id, step_id=step_id, output="erased answer, streamed on"))
    await layer.create_element(text_element(thread_id, step_id))
    await layer.update_thread(thread_id, metadata={"messages": ["erased question"]})

    assert await layer.get_thread(thread_id) is None


async def test_delete_thread_keeps_other_threads(layer: BaseDataLayer) -> None:
    """Deleting one thread leaves another thread and its steps intact."""
    deleted, kept = new_id(), new_id()
    await layer.create_step(step_dict(deleted))
    await layer.create_step(step_dict(kept, output="still here"))

    await layer.delete_thread(deleted)

    thread = await layer.get_thread(kept)
    assert thread is not None and [step["output"] for step in thread["steps"]] == ["still here"]


async def test_delete_thread_unknown_is_a_noop(layer: BaseDataLayer) -> None:
    """Deleting a thread that does not exist does not raise, creates nothing and leaves other threads."""
    unknown, kept = new_id(), new_id()
    await layer.create_step(step_dict(kept, output="still here"))

    await layer.delete_thread(unknown)

    assert await layer.get_thread(unknown) is None
    thread = await layer.get_thread(kept)
    assert thread is not None and [step["output"] for step in thread["steps"]] == ["still here"]
