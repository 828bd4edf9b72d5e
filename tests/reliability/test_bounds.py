"""Bounds a client or an outage can push: bytes held by pending writes, and the depth of parent chains."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import chainlit as cl
import pytest

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import step_dict
from tests.reliability.conftest import LayerFactory
from tests.reliability.faults import StalledStorage
from tests.reliability.inputs import fresh_id

MIB = 2**20


async def test_pending_writes_are_bounded_in_bytes(
    make_layer: LayerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """S3 stalls while 1 MiB files keep coming: past MAX_PENDING_WRITE_MB (3 here) new writes are refused
    and logged at ERROR with their ids, whatever MAX_PENDING_WRITES allows; the accepted ones land."""
    storage = StalledStorage(tmp_path / "files")
    layer = await make_layer(storage=storage, max_pending_writes=10_000, max_pending_write_bytes=3 * MIB)
    elements = [cl.File(content=b"x" * MIB, name="part.bin", thread_id=fresh_id()) for _ in range(6)]

    tasks = [asyncio.ensure_future(layer.create_element(element)) for element in elements]
    await asyncio.sleep(0.2)
    storage.resume()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    refused = [element.id for element, result in zip(elements, results, strict=True) if result is not None]
    assert refused == [element.id for element in elements[3:]]
    for element in elements[:3]:
        assert await layer.get_element(element.thread_id, element.id) is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert all(any(element_id in error for error in errors) for element_id in refused)


async def test_a_write_larger_than_the_bound_alone_still_goes(make_layer: LayerFactory) -> None:
    """A single write bigger than the bound is accepted when nothing else is pending."""
    layer = await make_layer(max_pending_write_bytes=MIB)
    thread_id = fresh_id()
    await layer.create_step(step_dict(thread_id, output="y" * (2 * MIB)))

    thread = await layer.get_thread(thread_id)
    assert thread is not None and len(thread["steps"][0]["output"]) == 2 * MIB


async def test_a_parent_chain_deeper_than_python_recursion_opens(layer: OpenRAGDataLayer) -> None:
    """A client writes 3,000 steps, each the parent of the previous one (children first): get_thread
    returns them all, each after its parent (it raised RecursionError past ~1,000)."""
    thread_id = fresh_id()
    ids = [fresh_id() for _ in range(3_000)]
    for index in reversed(range(len(ids))):
        parent = ids[index - 1] if index else None
        await layer.create_step(step_dict(thread_id, step_id=ids[index], parent_id=parent))

    thread = await layer.get_thread(thread_id)

    assert thread is not None and [step["id"] for step in thread["steps"]] == ids
