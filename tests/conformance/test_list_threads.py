"""list_threads: scoped to a user, keyset pages, ordered by last activity, literal search."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import PersistedUser

from tests.conformance.factories import create_user, message_dict, new_id, timestamp


async def new_thread(
    layer: BaseDataLayer, user: PersistedUser, name: str = "a chat", message: StepDict | None = None
) -> str:
    """A named thread of `user` holding one user message; returns its id."""
    thread_id = new_id()
    await layer.update_thread(thread_id, name=name, user_id=user.id)
    await layer.create_step(message or message_dict(thread_id, "hello"))
    return thread_id


async def listed_ids(layer: BaseDataLayer, user: PersistedUser, search: str | None = None) -> list[str]:
    page = await layer.list_threads(Pagination(first=50), ThreadFilter(userId=user.id, search=search))
    return [thread["id"] for thread in page.data]


async def all_pages(layer: BaseDataLayer, user: PersistedUser, page_size: int) -> list[list[str]]:
    """Thread ids of every page, following endCursor until hasNextPage is false."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await layer.list_threads(
            Pagination(first=page_size, cursor=cursor), ThreadFilter(userId=user.id)
        )
        pages.append([thread["id"] for thread in page.data])
        if not page.pageInfo.hasNextPage:
            return pages
        assert len(pages) < 100, "pagination does not terminate"
        cursor = page.pageInfo.endCursor


async def test_list_threads_never_shows_another_users_thread(layer: BaseDataLayer) -> None:
    """filters.userId restricts the list to that user's threads."""
    alice, bob = await create_user(layer), await create_user(layer)
    alice_thread = await new_thread(layer, alice)
    await new_thread(layer, bob)

    assert await listed_ids(layer, alice) == [alice_thread]


async def test_list_threads_returns_thread_dicts_with_str_ids(layer: BaseDataLayer) -> None:
    """Each listed thread is a ThreadDict with string id, createdAt, userId and the user's identifier."""
    user = await create_user(layer)
    thread_id = await new_thread(layer, user, name="typed")

    page = await layer.list_threads(Pagination(first=5), ThreadFilter(userId=user.id))

    [thread] = page.data
    assert isinstance(thread["createdAt"], str)
    assert (thread["id"], thread["name"], thread["userId"]) == (thread_id, "typed", user.id)
    assert thread["userIdentifier"] == user.identifier


async def test_list_threads_pages_return_each_thread_once_newest_first(layer: BaseDataLayer) -> None:
    """Following endCursor through pages of 3 yields all 7 threads once, most recent first."""
    user = await create_user(layer)
    created = [await new_thread(layer, user, name=f"chat {index}") for index in range(7)]

    pages = await all_pages(layer, user, page_size=3)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [thread_id for page in pages for thread_id in page] == created[::-1]


@pytest.mark.builtin_fails(
    "keyset on updatedAt < cursor's updatedAt skips threads tied with the cursor", strict=False
)
async def test_list_threads_pages_cover_threads_with_identical_timestamps(layer: BaseDataLayer) -> None:
    """Threads created at the same instant each appear on exactly one page."""
    user, same = await create_user(layer), timestamp()
    thread_ids = [new_id() for _ in range(20)]
    await asyncio.gather(*(layer.update_thread(thread_id, user_id=user.id) for thread_id in thread_ids))
    await asyncio.gather(
        *(layer.create_step(message_dict(tid, "tie", created_at=same)) for tid in thread_ids)
    )

    listed = [thread_id for page in await all_pages(layer, user, page_size=4) for thread_id in page]

    assert sorted(listed) == sorted(thread_ids)


@pytest.mark.builtin_fails("orders by Thread.updatedAt, which create_step never touches")
async def test_list_threads_new_step_moves_thread_to_the_top(layer: BaseDataLayer) -> None:
    """A thread that receives a new message is listed first."""
    user = await create_user(layer)
    older = await new_thread(layer, user)
    newer = await new_thread(layer, user)

    await layer.create_step(message_dict(older, "back again", created_at=timestamp(seconds=1)))

    assert await listed_ids(layer, user) == [older, newer]


@pytest.mark.builtin_fails("update_thread sets Thread.updatedAt, so a metadata write reorders the list")
async def test_list_threads_metadata_update_does_not_move_thread(layer: BaseDataLayer) -> None:
    """A metadata-only update_thread (as on disconnect) does not count as activity."""
    user = await create_user(layer)
    older = await new_thread(layer, user)
    newer = await new_thread(layer, user)

    await layer.update_thread(older, metadata={"chat_profile": "default"})

    assert await listed_ids(layer, user) == [newer, older]


async def test_list_threads_search_matches_thread_name(layer: BaseDataLayer) -> None:
    """search finds a thread by a word of its name."""
    user = await create_user(layer)
    wanted = await new_thread(layer, user, name="Quarterly revenue review")
    await new_thread(layer, user, name="Holiday plans")

    assert await listed_ids(layer, user, search="revenue") == [wanted]


@pytest.mark.builtin_fails("search only looks at thread names")
@pytest.mark.parametrize("message_type", ["user_message", "assistant_message"])
async def test_list_threads_search_matches_message_text(
    layer: BaseDataLayer, message_type: Literal["user_message", "assistant_message"]
) -> None:
    """search finds a thread by the text of one of its messages."""
    user = await create_user(layer)
    thread_id = new_id()
    message = message_dict(thread_id, "the flux capacitor needs 1.21 gigawatts", type=message_type)
    await layer.update_thread(thread_id, name="untitled", user_id=user.id)
    await layer.create_step(message)
    await new_thread(layer, user, name="untitled")

    assert await listed_ids(layer, user, search="capacitor") == [thread_id]


@pytest.mark.builtin_fails("search is passed to ILIKE unescaped, so % is a wildcard")
async def test_list_threads_search_takes_percent_literally(layer: BaseDataLayer) -> None:
    """Searching "50%" matches "50% off" but not "500 items"."""
    user = await create_user(layer)
    wanted = await new_thread(layer, user, name="50% off")
    await new_thread(layer, user, name="500 items")

    assert await listed_ids(layer, user, search="50%") == [wanted]


@pytest.mark.builtin_fails("search is passed to ILIKE unescaped, so _ matches any character")
async def test_list_threads_search_takes_underscore_literally(layer: BaseDataLayer) -> None:
    """Searching "e_a" matches "file_a" but not "fileXa"."""
    user = await create_user(layer)
    wanted = await new_thread(layer, user, name="file_a")
    await new_thread(layer, user, name="fileXa")

    assert await listed_ids(layer, user, search="e_a") == [wanted]


async def test_list_threads_search_takes_quotes_literally(layer: BaseDataLayer) -> None:
    """Single and double quotes in the search text are matched as text, not syntax."""
    user = await create_user(layer)
    wanted = await new_thread(layer, user, name='Bob\'s "big" day')
    await new_thread(layer, user, name="Bob big day")

    assert await listed_ids(layer, user, search='Bob\'s "big"') == [wanted]


@pytest.mark.builtin_fails("search is passed to ILIKE unescaped, so a backslash escapes the closing %")
async def test_list_threads_search_takes_backslash_literally(layer: BaseDataLayer) -> None:
    """A search ending in a backslash matches names containing that backslash."""
    user = await create_user(layer)
    wanted = await new_thread(layer, user, name="C:\\Users\\me")
    await new_thread(layer, user, name="C: drive")

    assert await listed_ids(layer, user, search="C:\\") == [wanted]
