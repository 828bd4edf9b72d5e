"""Bad input, property-based: every value is stored faithfully or normalised as documented, none raises."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import chainlit.data
import httpx
import pytest
from chainlit.step import StepDict
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import User
from hypothesis import given

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import text_element
from tests.reliability.chat import stored_bytes
from tests.reliability.figures import FIGURES
from tests.reliability.inputs import (
    EXAMPLES,
    IDS,
    METADATA,
    NONEMPTY_TEXT,
    TEXT,
    TIMESTAMPS,
    fresh_id,
    nested,
)
from tests.reliability.oracle import as_json, iso, normalised, parsed_time, redacted, same_json


def raw_step(thread_id: str, step_id: str, **fields: Any) -> StepDict:
    """A step dict as Chainlit sends it, with `fields` as given (any type)."""
    return cast(StepDict, {"id": step_id, "threadId": thread_id, "type": "tool", "name": "tool", **fields})


async def stored_step(layer: OpenRAGDataLayer, thread_id: str, step_id: str) -> StepDict:
    thread = await layer.get_thread(thread_id)
    assert thread is not None, f"thread {thread_id!r} not found"
    steps = {step["id"]: step for step in thread["steps"]}
    assert step_id in steps, f"step {step_id!r} not in thread {thread_id!r}"
    return steps[step_id]


@EXAMPLES
@given(name=TEXT, input=TEXT, output=TEXT, thread_name=TEXT)
async def test_any_text_is_stored_or_normalised(
    layer: OpenRAGDataLayer, name: str, input: str, output: str, thread_name: str
) -> None:
    """Step name, input, output and the thread name come back equal, NUL and lone surrogates as U+FFFD."""
    FIGURES.tried("text")
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, name=name, input=input, output=output))
    await layer.update_thread(thread_id, name=thread_name)

    step = await stored_step(layer, thread_id, step_id)
    thread = await layer.get_thread(thread_id)
    assert (step["name"], step["input"], step["output"]) == tuple(map(normalised, (name, input, output)))
    assert thread is not None and thread["name"] == normalised(thread_name)


@pytest.mark.parametrize("megabytes", [3, 6])
async def test_huge_streamed_output_is_stored_whole(layer: OpenRAGDataLayer, megabytes: int) -> None:
    """A model answer of several MB (any unicode, NULs included), streamed in updates, is stored whole."""
    FIGURES.tried("huge output")
    rng = random.Random(megabytes)
    alphabet = "abc \n\x00\ud800\u00e9\u4e2d\U0001f600'%_\\"
    chunk = "".join(rng.choice(alphabet) for _ in range(64 * 1024))
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, output=""))
    output = ""
    for _ in range(megabytes * 16):
        output += chunk
    for part in (output[: len(output) // 2], output):
        await layer.update_step(raw_step(thread_id, step_id, output=part))
    await layer.update_thread(thread_id, name=output)

    thread = await layer.get_thread(thread_id)
    assert (await stored_step(layer, thread_id, step_id))["output"] == normalised(output)
    assert thread is not None and thread["name"] == normalised(output)[:255]


@EXAMPLES
@given(metadata=METADATA)
async def test_metadata_values_are_stored_as_documented_json(
    layer: OpenRAGDataLayer, metadata: dict[Any, Any]
) -> None:
    """datetime, bytes, sets, NaN, inf, Decimal, objects, odd keys: stored as the documented JSON."""
    FIGURES.tried("metadata")
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, metadata=metadata))
    await layer.update_thread(thread_id, metadata=metadata)

    step = await stored_step(layer, thread_id, step_id)
    thread = await layer.get_thread(thread_id)
    assert same_json(step["metadata"], redacted(as_json(metadata)))
    kept = {key: value for key, value in metadata.items() if value is not None}  # None removes a key
    assert thread is not None and same_json(thread["metadata"], redacted(as_json(kept)))


@pytest.mark.parametrize("depth", [10, 63, 64, 65, 200, 900])
async def test_deeply_nested_metadata_is_cut_to_a_string(layer: OpenRAGDataLayer, depth: int) -> None:
    """Nesting deeper than 64 levels is stored, replaced by "[nested too deep]" at level 64."""
    FIGURES.tried("deep metadata")
    thread_id, step_id = fresh_id(), fresh_id()
    metadata = {"deep": nested(depth, "bottom")}
    await layer.create_step(raw_step(thread_id, step_id, metadata=metadata))

    assert same_json((await stored_step(layer, thread_id, step_id))["metadata"], as_json(metadata))


@EXAMPLES
@given(created=TIMESTAMPS, start=TIMESTAMPS, end=TIMESTAMPS)
async def test_any_timestamp_is_kept_or_replaced(
    layer: OpenRAGDataLayer, created: Any, start: Any, end: Any
) -> None:
    """Parseable timestamps come back in UTC; garbage becomes the server's clock (createdAt) or nothing."""
    FIGURES.tried("timestamps")
    thread_id, step_id = fresh_id(), fresh_id()
    before = datetime.now(timezone.utc)
    await layer.create_step(raw_step(thread_id, step_id, createdAt=created, start=start, end=end))
    after = datetime.now(timezone.utc)

    step = await stored_step(layer, thread_id, step_id)
    expected_created = parsed_time(created)
    if expected_created is None:
        assert step["createdAt"] is not None and iso(before) <= step["createdAt"] <= iso(after)
    else:
        assert step["createdAt"] == iso(expected_created)
    for sent, stored in ((start, step["start"]), (end, step["end"])):
        moment = parsed_time(sent)
        assert stored == (None if moment is None else iso(moment))


@EXAMPLES
@given(thread_id=IDS, step_id=IDS, element_id=IDS)
async def test_any_ids_are_stored_under_their_normalised_text(
    layer: OpenRAGDataLayer, thread_id: str, step_id: str, element_id: str
) -> None:
    """Ids that are not UUIDs (slashes, `..`, NUL...) work for steps, threads and files; reads never raise.

    Examples share one database and ids repeat across them: a step or element id stays in the thread that
    first stored it, and a deleted thread's id is not written again, so each example gets a thread of its
    own (the generated id with a unique suffix) and deletes it at the end.
    """
    FIGURES.tried("ids")
    thread_id += fresh_id()
    content = f"content {fresh_id()}"
    element = text_element(thread_id, step_id, content=content)
    element.id = element_id
    await layer.create_step(raw_step(thread_id, step_id, output="kept"))
    await layer.update_thread(thread_id, name="odd ids")
    await layer.create_element(element)

    thread = await layer.get_thread(normalised(thread_id))
    assert thread is not None and thread["name"] == "odd ids"
    assert normalised(step_id) in {step["id"] for step in thread["steps"]}
    elements = {e["id"]: e for e in thread["elements"] or []}
    key = elements[normalised(element_id)]["objectKey"]
    assert key and key.startswith("threads/") and len(key.split("/")) == 4
    assert await stored_bytes(layer, key) == content.encode()
    await layer.delete_thread(thread_id)


@pytest.fixture
async def witness(layer: OpenRAGDataLayer) -> tuple[str, str, str]:
    """A user's thread with a step and a file: (thread id, step id, element id)."""
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}"))
    assert user is not None
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.update_thread(thread_id, name="witness", user_id=user.id)
    await layer.create_step(raw_step(thread_id, step_id, output="kept"))
    element = text_element(thread_id, step_id)
    await layer.create_element(element)
    return thread_id, step_id, element.id


@EXAMPLES
@given(any_id=IDS)
async def test_reads_and_deletes_with_any_id_never_raise(
    layer: OpenRAGDataLayer, witness: tuple[str, str, str], any_id: str
) -> None:
    """Ids come from clients (URLs, websocket auth): a read of an unknown id finds nothing, a delete is done
    and touches nothing else."""
    FIGURES.tried("ids")
    thread_id, step_id, element_id = witness
    assert await layer.get_thread(any_id) is None
    assert await layer.get_thread_author(any_id) == ""
    assert await layer.get_element(any_id, any_id) is None
    assert await layer.get_user(any_id) is None
    page = await layer.list_threads(Pagination(first=5, cursor=any_id), ThreadFilter(userId=any_id))
    assert page.data == [] and not page.pageInfo.hasNextPage
    await layer.delete_step(any_id)
    await layer.delete_element(any_id, any_id)
    await layer.delete_thread(any_id)

    thread = await layer.get_thread(thread_id)
    assert thread is not None and [step["id"] for step in thread["steps"]] == [step_id]
    assert [element["id"] for element in thread["elements"] or []] == [element_id]


@EXAMPLES
@given(name=TEXT)
async def test_any_file_name_is_stored_and_served_safely(
    layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """File names with quotes, slashes, `..` and control characters: stored, and served with a safe header."""
    FIGURES.tried("file names")
    from chainlit.server import app

    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    thread_id, content = fresh_id(), f"file {fresh_id()}"
    await layer.create_element(text_element(thread_id, None, content=content, name=name))
    thread = await layer.get_thread(thread_id)
    assert thread is not None and [e["name"] for e in thread["elements"] or []] == [normalised(name)]
    url = (thread["elements"] or [])[0]["url"]
    assert url is not None

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        response = await client.get(url)
    assert response.status_code == 200 and response.text == content
    header = response.headers["content-disposition"]
    assert header.isprintable() and header.isascii()


@pytest.fixture
async def two_users(layer: OpenRAGDataLayer) -> tuple[str, str]:
    users = [await layer.create_user(User(identifier=f"user-{fresh_id()}")) for _ in range(2)]
    return users[0].id, users[1].id  # type: ignore[union-attr]


@EXAMPLES
@given(search=NONEMPTY_TEXT)
async def test_search_with_any_text_finds_own_threads_only(
    layer: OpenRAGDataLayer, two_users: tuple[str, str], search: str
) -> None:
    """SQL and LIKE metacharacters are literal: the user's matching thread is found, another's never."""
    FIGURES.tried("search")
    mine, theirs = two_users
    name = f"<{search}>"
    own, foreign = fresh_id(), fresh_id()
    await layer.update_thread(own, name=name, user_id=mine)
    await layer.update_thread(foreign, name=name, user_id=theirs)

    page = await layer.list_threads(Pagination(first=1000), ThreadFilter(userId=mine, search=search))
    listed = {thread["id"]: thread for thread in page.data}
    assert own in listed and foreign not in listed
    assert all(thread["userId"] == mine for thread in listed.values())
    assert all(normalised(search).lower() in (thread["name"] or "").lower() for thread in listed.values())


@pytest.mark.parametrize("length", [100, 300])
async def test_a_file_with_a_long_id_is_stored(layer: OpenRAGDataLayer, length: int) -> None:
    """Ids are text of any length: a long non-ASCII element id still gets its file stored."""
    FIGURES.tried("ids")
    thread_id = fresh_id()
    element = text_element(thread_id, None, content="long id")
    element.id = "\u00e9" * length
    await layer.create_element(element)

    stored = await layer.get_element(thread_id, element.id)
    assert stored is not None and stored["objectKey"]
    assert await stored_bytes(layer, stored["objectKey"]) == b"long id"


EDGE_TIMES = [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("sNaN"), None),
        (Decimal("-sNaN"), None),
        *((moment, moment.isoformat(timespec="microseconds")) for moment in EDGE_TIMES),
    ],
    ids=repr,
)
async def test_edge_metadata_values_are_normalised_not_raised(
    layer: OpenRAGDataLayer, value: Any, expected: str | None
) -> None:
    """Values at the edge of their type: a signalling NaN is null like any NaN; a datetime whose UTC form
    leaves the years 1-9999 keeps its local ISO form."""
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, metadata={"edge": value}))

    assert (await stored_step(layer, thread_id, step_id))["metadata"] == {"edge": expected}


@pytest.mark.parametrize("moment", [moment.isoformat() for moment in EDGE_TIMES])
async def test_edge_timestamps_are_kept_or_replaced_not_raised(layer: OpenRAGDataLayer, moment: str) -> None:
    """A time whose UTC form leaves the years 1-9999 is unparseable: createdAt is the server's clock, start
    and end stay empty."""
    thread_id, step_id = fresh_id(), fresh_id()
    before = datetime.now(timezone.utc)
    await layer.create_step(raw_step(thread_id, step_id, createdAt=moment, start=moment, end=moment))
    after = datetime.now(timezone.utc)

    step = await stored_step(layer, thread_id, step_id)
    assert step["createdAt"] is not None and iso(before) <= step["createdAt"] <= iso(after)
    assert (step["start"], step["end"]) == (None, None)
