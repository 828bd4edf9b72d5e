"""Rollback safety: on a database managed by this package, Chainlit's built-in `ChainlitDataLayer` still
reads what we wrote and writes what we read, so an operator can remove the decorator and keep their data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.types import Feedback, Pagination, ThreadFilter

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.conformance.objects import fetch
from tests.legacy_data import Conversation, builtin_layer, close_builtin, write_with_builtin_layer
from tests.services import s3_client

pytestmark = pytest.mark.usefixtures("chainlit_context")


@pytest.fixture
async def ours(
    database_url: str, s3_environ: dict[str, str], s3_server: str
) -> AsyncIterator[OpenRAGDataLayer]:
    """OpenRAGDataLayer on a database upgraded to head, with its bucket created."""
    await upgrade_async(database_url)
    client = s3_client(s3_server)
    client.create_bucket(Bucket=s3_environ["BUCKET_NAME"])
    client.close()
    layer = OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": database_url, **s3_environ}))
    yield layer
    await layer.close()


@pytest.fixture
async def theirs(
    ours: OpenRAGDataLayer, database_url: str, s3_server: str, bucket_name: str
) -> AsyncIterator[ChainlitDataLayer]:
    """Chainlit's built-in layer on the same (managed) database and bucket."""
    layer = builtin_layer(database_url, s3_server, bucket_name)
    yield layer
    await close_builtin(layer)


# --- written by ours, read by theirs ------------------------------------------------------------------------


@pytest.fixture
async def our_talk(ours: OpenRAGDataLayer) -> Conversation:
    """The conversation written through OpenRAGDataLayer (the same calls Chainlit makes)."""
    return await write_with_builtin_layer(ours)  # type: ignore[arg-type]  # any BaseDataLayer


async def test_builtin_layer_reads_our_user(our_talk: Conversation, theirs: ChainlitDataLayer) -> None:
    """get_user returns the id and metadata we stored."""
    user = await theirs.get_user(our_talk.identifier)
    assert user is not None
    assert (user.id, user.metadata) == (our_talk.user_id, our_talk.user_metadata)


async def test_builtin_layer_lists_our_thread(our_talk: Conversation, theirs: ChainlitDataLayer) -> None:
    """list_threads shows our thread to its user."""
    page = await theirs.list_threads(Pagination(first=10), ThreadFilter(userId=our_talk.user_id))
    assert [(t["id"], t["name"]) for t in page.data] == [(our_talk.thread_id, our_talk.name)]


async def test_builtin_layer_reads_our_thread_with_messages_and_feedback(
    our_talk: Conversation, theirs: ChainlitDataLayer
) -> None:
    """get_thread returns our messages in order, the answer with its feedback."""
    thread = await theirs.get_thread(our_talk.thread_id)
    assert thread is not None
    assert thread["metadata"] == our_talk.thread_metadata
    assert [(s["id"], s["output"]) for s in thread["steps"]] == [
        (our_talk.question_id, our_talk.question),
        (our_talk.answer_id, our_talk.answer),
    ]
    feedback = thread["steps"][1].get("feedback")
    assert feedback is not None and (feedback["id"], feedback["value"]) == (our_talk.feedback_id, 1)


async def test_builtin_layer_serves_our_element_file(
    our_talk: Conversation, theirs: ChainlitDataLayer
) -> None:
    """The element we uploaded has the key layout theirs expects, and their signed URL serves it."""
    thread = await theirs.get_thread(our_talk.thread_id)
    assert thread is not None
    [element] = thread["elements"] or []
    assert (element["objectKey"], element["type"]) == (our_talk.object_key, "text")
    assert await fetch(element["url"]) == our_talk.file_content


async def test_builtin_layer_gets_our_element_by_id(
    our_talk: Conversation, theirs: ChainlitDataLayer
) -> None:
    """get_element finds the element in its thread."""
    element = await theirs.get_element(our_talk.thread_id, our_talk.element_id)
    assert element is not None and element["name"] == "notes.txt"


async def test_builtin_layer_deletes_our_thread_and_its_file(
    our_talk: Conversation, theirs: ChainlitDataLayer, s3_server: str, bucket_name: str
) -> None:
    """delete_thread removes the thread and the object we stored."""
    await theirs.delete_thread(our_talk.thread_id)
    assert await theirs.get_thread(our_talk.thread_id) is None
    client = s3_client(s3_server)
    listed = client.list_objects_v2(Bucket=bucket_name).get("Contents", [])
    client.close()
    assert listed == []


# --- written by theirs, read by ours ------------------------------------------------------------------------


@pytest.fixture
async def their_talk(theirs: ChainlitDataLayer) -> Conversation:
    """The conversation written through Chainlit's built-in layer on the managed database."""
    return await write_with_builtin_layer(theirs)


async def test_our_layer_reads_their_user(their_talk: Conversation, ours: OpenRAGDataLayer) -> None:
    user = await ours.get_user(their_talk.identifier)
    assert user is not None
    assert (user.id, user.metadata) == (their_talk.user_id, their_talk.user_metadata)


async def test_our_layer_reads_their_thread_with_messages_and_feedback(
    their_talk: Conversation, ours: OpenRAGDataLayer
) -> None:
    thread = await ours.get_thread(their_talk.thread_id)
    assert thread is not None
    assert (thread["name"], thread["tags"]) == (their_talk.name, their_talk.tags)
    assert [(s["id"], s["output"]) for s in thread["steps"]] == [
        (their_talk.question_id, their_talk.question),
        (their_talk.answer_id, their_talk.answer),
    ]
    feedback = thread["steps"][1].get("feedback")
    assert feedback is not None and feedback["id"] == their_talk.feedback_id


async def test_our_layer_serves_their_element_file(their_talk: Conversation, ours: OpenRAGDataLayer) -> None:
    thread = await ours.get_thread(their_talk.thread_id)
    assert thread is not None
    [element] = thread["elements"] or []
    assert element["objectKey"] == their_talk.object_key
    assert await fetch(element["url"], ours) == their_talk.file_content


async def test_our_layer_lists_their_thread(their_talk: Conversation, ours: OpenRAGDataLayer) -> None:
    page = await ours.list_threads(Pagination(first=10), ThreadFilter(userId=their_talk.user_id))
    assert [t["id"] for t in page.data] == [their_talk.thread_id]


async def test_builtin_feedback_update_is_read_by_our_layer(
    their_talk: Conversation, theirs: ChainlitDataLayer, ours: OpenRAGDataLayer
) -> None:
    """Feedback changed by theirs (value 0, new comment) is what ours shows."""
    await theirs.upsert_feedback(
        Feedback(id=their_talk.feedback_id, forId=their_talk.answer_id, value=0, comment="wrong")
    )
    thread = await ours.get_thread(their_talk.thread_id)
    assert thread is not None
    feedback = thread["steps"][1].get("feedback")
    assert feedback is not None and (feedback["value"], feedback["comment"]) == (0, "wrong")


async def test_our_feedback_filter_finds_feedback_written_by_theirs(
    their_talk: Conversation, ours: OpenRAGDataLayer
) -> None:
    """Their feedback rows carry no thread id; the trigger fills it, so our feedback filter sees them."""
    page = await ours.list_threads(Pagination(first=10), ThreadFilter(userId=their_talk.user_id, feedback=1))
    assert [t["id"] for t in page.data] == [their_talk.thread_id]
