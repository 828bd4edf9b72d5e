"""Elements: files stored in S3 under threads/{threadId}/files/{elementId}, URLs signed when read."""

from __future__ import annotations

import os
from pathlib import Path

import chainlit as cl
import pytest
from chainlit.data.base import BaseDataLayer

from tests.conformance.factories import (
    PNG_BYTES,
    file_element,
    image_element,
    new_id,
    step_dict,
    text_element,
)
from tests.conformance.objects import StoredObjects, element_key, fetch
from tests.conformance.reads import elements_of, step_of


async def new_step(layer: BaseDataLayer) -> tuple[str, str]:
    """A thread with one step; returns (thread_id, step_id)."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id))
    return thread_id, step_id


@pytest.mark.builtin_fails("get_element returns url='None' (str of the NULL url column)")
async def test_get_element_url_serves_the_uploaded_bytes(layer: BaseDataLayer) -> None:
    """create_element with bytes, then GET on get_element's url returns those bytes."""
    thread_id, step_id = await new_step(layer)
    element = image_element(thread_id, step_id)
    await layer.create_element(element)

    stored = await layer.get_element(thread_id, element.id)

    assert stored is not None and await fetch(stored.get("url")) == PNG_BYTES


async def test_create_element_stores_the_object_under_its_key(
    layer: BaseDataLayer, stored_objects: StoredObjects
) -> None:
    """The file lands in the bucket at threads/{threadId}/files/{elementId}."""
    thread_id, step_id = await new_step(layer)
    element = image_element(thread_id, step_id)

    await layer.create_element(element)

    assert stored_objects.keys() == [element_key(thread_id, element.id)]


async def test_create_element_from_path_uploads_the_file(layer: BaseDataLayer, tmp_path: Path) -> None:
    """An element whose content is a file on disk (several MB) is uploaded whole."""
    thread_id, step_id = await new_step(layer)
    path = tmp_path / "report.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    await layer.create_element(file_element(thread_id, step_id, path))

    [stored] = await elements_of(layer, thread_id)
    assert await fetch(stored.get("url")) == path.read_bytes()


async def test_get_thread_returns_elements_with_working_urls(layer: BaseDataLayer) -> None:
    """Each element of get_thread has a URL serving its own content."""
    thread_id, step_id = await new_step(layer)
    text = text_element(thread_id, step_id, content="plain words")
    image = image_element(thread_id, step_id)
    await layer.create_element(text)
    await layer.create_element(image)

    served = {
        element["id"]: await fetch(element.get("url"), layer)
        for element in await elements_of(layer, thread_id)
    }

    assert served == {text.id: b"plain words", image.id: PNG_BYTES}


async def test_get_element_returns_its_fields(layer: BaseDataLayer) -> None:
    """get_element returns the element's id, thread, step, type, name, mime, display, size and page."""
    thread_id, step_id = await new_step(layer)
    element = cl.Pdf(
        content=b"%PDF-1.4", name="paper.pdf", display="side", page=3, thread_id=thread_id, for_id=step_id
    )
    await layer.create_element(element)

    stored = await layer.get_element(thread_id, element.id)

    assert stored is not None
    assert (stored["id"], stored["threadId"], stored["forId"]) == (element.id, thread_id, step_id)
    assert (stored["type"], stored["name"], stored["mime"]) == ("pdf", "paper.pdf", "application/pdf")
    assert (stored["display"], stored["page"]) == ("side", 3)


async def test_custom_element_props_round_trip(layer: BaseDataLayer) -> None:
    """A CustomElement's props come back from get_element."""
    thread_id, step_id = await new_step(layer)
    element = cl.CustomElement(
        name="Chart", props={"points": [1, 2], "title": "t"}, thread_id=thread_id, for_id=step_id
    )
    await layer.create_element(element)

    stored = await layer.get_element(thread_id, element.id)

    assert stored is not None and stored["props"] == {"points": [1, 2], "title": "t"}


async def test_custom_element_update_replaces_its_props(layer: BaseDataLayer) -> None:
    """`CustomElement.update()` sends its full props: a prop it removed does not come back after resume."""
    thread_id, step_id = await new_step(layer)
    element = cl.CustomElement(
        name="Counter", props={"count": 1, "label": "clicks"}, thread_id=thread_id, for_id=step_id
    )
    await layer.create_element(element)

    element.props = {"count": 2}
    await layer.create_element(element)  # what CustomElement.update() calls

    stored = await layer.get_element(thread_id, element.id)
    assert stored is not None and stored["props"] == {"count": 2}


async def test_create_element_before_its_step(layer: BaseDataLayer) -> None:
    """An element persisted before its step is kept, and the step arriving later keeps its own fields."""
    thread_id, step_id = new_id(), new_id()
    element = text_element(thread_id, step_id)

    await layer.create_element(element)
    await layer.create_step(step_dict(thread_id, step_id=step_id, name="late step", output="done"))

    [stored] = await elements_of(layer, thread_id)
    step = await step_of(layer, thread_id, step_id)
    assert (stored["id"], stored["forId"]) == (element.id, step_id)
    assert (step["name"], step["output"]) == ("late step", "done")


@pytest.mark.builtin_fails("create_element returns early when for_id is None")
async def test_create_element_without_step_is_stored(layer: BaseDataLayer) -> None:
    """An element with no step (for_id None) is persisted and readable."""
    thread_id = new_id()
    await layer.update_thread(thread_id, name="attachments")
    element = text_element(thread_id, None, content="orphan")

    await layer.create_element(element)

    stored = await layer.get_element(thread_id, element.id)
    assert stored is not None and stored["name"] == element.name


async def test_delete_element_removes_it_and_its_object(
    layer: BaseDataLayer, stored_objects: StoredObjects
) -> None:
    """After delete_element, get_element is None and the object is gone from the bucket."""
    thread_id, step_id = await new_step(layer)
    element = image_element(thread_id, step_id)
    await layer.create_element(element)

    await layer.delete_element(element.id, thread_id)

    assert await layer.get_element(thread_id, element.id) is None
    assert stored_objects.keys() == []


async def test_element_with_unusual_name_is_stored(layer: BaseDataLayer) -> None:
    """Quotes, non-ASCII characters and slashes in an element's name survive the round trip."""
    thread_id, step_id = await new_step(layer)
    name = 'it\'s a "quoted" naïve ✓ report/2025.txt'
    await layer.create_element(text_element(thread_id, step_id, content="odd", name=name))

    [stored] = await elements_of(layer, thread_id)

    assert stored["name"] == name
    assert await fetch(stored.get("url"), layer) == b"odd"


async def test_get_element_unknown_returns_none(layer: BaseDataLayer) -> None:
    """get_element of an id nobody created is None."""
    thread_id, _ = await new_step(layer)

    assert await layer.get_element(thread_id, new_id()) is None


async def test_get_element_of_another_thread_returns_none(layer: BaseDataLayer) -> None:
    """get_element only finds an element in the thread it belongs to."""
    thread_id, step_id = await new_step(layer)
    other_thread_id, _ = await new_step(layer)
    element = text_element(thread_id, step_id)
    await layer.create_element(element)

    assert await layer.get_element(other_thread_id, element.id) is None
