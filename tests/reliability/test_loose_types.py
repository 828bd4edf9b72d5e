"""Fields Chainlit types loosely are normalised as documented (README "Normalisations"), never lost; a write
PostgreSQL still refuses is logged with ids and the error class only."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import chainlit as cl
import pytest

from chainlit_openrag_datalayer import DataLayerError, OpenRAGDataLayer
from chainlit_openrag_datalayer.errors import log_safe
from tests.conformance.factories import text_element
from tests.reliability.inputs import fresh_id
from tests.reliability.test_bad_input import raw_step, stored_step

SECRET = "user pasted password hunter2"


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("type", None, "undefined"),
        ("type", 3, "3"),
        ("defaultOpen", "yes", True),
        ("defaultOpen", "maybe", None),
        ("defaultOpen", {"open": True}, None),
        ("defaultOpen", 1, True),
        ("autoCollapse", 0.0, False),
        ("autoCollapse", float("nan"), None),
        ("waitForAnswer", "No", False),
        ("isError", "true", True),
        ("isError", [1], False),
        ("tags", "one tag", ["one tag"]),
        ("tags", ["a", None, 3], ["a", "3"]),
        ("tags", 5, ["5"]),
        ("name", ["a", "list"], '["a", "list"]'),
        ("language", 7, "7"),
    ],
)
async def test_loosely_typed_step_field_is_normalised_not_lost(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture, field: str, value: Any, stored: Any
) -> None:
    """A step whose field has an odd type or value is stored, with that field normalised."""
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, output=SECRET, **{field: value}))

    step: dict[str, Any] = dict(await stored_step(layer, thread_id, step_id))
    assert step.get(field) == stored and step["output"] == SECRET
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_step_with_an_empty_thread_id_is_kept_without_thread(layer: OpenRAGDataLayer) -> None:
    """threadId "" names no thread: the step is stored and no thread with an empty id appears."""
    await layer.create_step(raw_step("", fresh_id(), output="kept"))

    assert await layer.get_thread("") is None


async def test_partial_update_keeps_the_stored_type(layer: OpenRAGDataLayer) -> None:
    """`update_step({"id", "threadId", "output"})` (no type) updates the output and keeps the type."""
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(raw_step(thread_id, step_id, type="assistant_message", output="first"))

    await layer.update_step({"id": step_id, "threadId": thread_id, "output": "second"})

    step = await stored_step(layer, thread_id, step_id)
    assert (step["type"], step["output"]) == ("assistant_message", "second")


async def test_partial_update_before_create_takes_the_type_that_arrives_later(
    layer: OpenRAGDataLayer,
) -> None:
    """The partial update lands first (Chainlit's writes race): the create's type wins when it arrives."""
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.update_step({"id": step_id, "threadId": thread_id, "output": "streamed"})
    assert (await stored_step(layer, thread_id, step_id))["type"] == "undefined"

    await layer.create_step(raw_step(thread_id, step_id, type="tool", output=""))

    step = await stored_step(layer, thread_id, step_id)
    assert (step["type"], step["output"]) == ("tool", "streamed")


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [("page", 2**40, None), ("page", True, None), ("page", 3.0, 3), ("auto_play", "yes", True)],
)
async def test_loosely_typed_element_field_is_normalised_not_lost(
    layer: OpenRAGDataLayer, field: str, value: Any, stored: Any
) -> None:
    """An element whose page is out of PostgreSQL's integer range, or a boolean given as text, is stored."""
    thread_id = fresh_id()
    element: cl.Text | cl.Audio = text_element(thread_id, None, content="kept")
    if field == "auto_play":  # only audio and video elements send it, as autoPlay
        element = cl.Audio(content=b"ID3", name="a.mp3", thread_id=thread_id)
    setattr(element, field, value)
    await layer.create_element(element)

    found = await layer.get_element(thread_id, element.id)
    assert found is not None and found.get("autoPlay" if field == "auto_play" else field) == stored


async def test_update_thread_with_odd_name_and_tags_is_stored(layer: OpenRAGDataLayer) -> None:
    """A name that is not text and tags given as one string are stored as text."""
    thread_id = fresh_id()
    await layer.update_thread(thread_id, name=42, tags="docs")  # type: ignore[arg-type]

    thread = await layer.get_thread(thread_id)
    assert thread is not None and (thread["name"], thread["tags"]) == ("42", ["docs"])


async def test_a_write_postgresql_refuses_logs_ids_and_class_only(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread naming an owner that does not exist is refused by PostgreSQL: the ERROR names the thread and
    the error class, and neither the log nor what Chainlit receives quotes a value or a DETAIL line."""
    caplog.set_level(logging.DEBUG)
    thread_id = fresh_id()
    with pytest.raises(DataLayerError) as raised:
        await layer.update_thread(thread_id, user_id=SECRET, metadata={"note": SECRET})

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and thread_id in errors[0] and "ForeignKeyViolationError" in errors[0]
    assert SECRET not in caplog.text and "DETAIL" not in caplog.text
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None


async def test_log_safe_keeps_codes_and_drops_the_failing_row(database_url: str) -> None:
    """PostgreSQL's NOT NULL error quotes the row (DETAIL); its log form is class, SQLSTATE and column."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TEMP TABLE t (secret text, must text NOT NULL)")
        with pytest.raises(asyncpg.NotNullViolationError) as raised:
            await connection.execute("INSERT INTO t VALUES ($1, NULL)", SECRET)
    finally:
        await connection.close()
    assert SECRET in str(raised.value)  # what the old log line carried

    summary = log_safe(raised.value)

    assert SECRET not in summary and "DETAIL" not in summary
    assert summary.startswith("NotNullViolationError (SQLSTATE 23502, table t, column must")
