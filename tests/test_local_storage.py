"""LocalStorage on a real folder: deleting an object removes the folders it leaves empty, never the root.

What every storage does (put, read, delete, objects, close) is in tests/test_storage.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.migrations import upgrade_async
from chainlit_openrag_datalayer.storage import LocalStorage, object_key
from tests.conformance.factories import step_dict, text_element


def tree(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


async def test_deleting_the_last_object_removes_its_folders_but_not_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    key = object_key(str(uuid4()), str(uuid4()))
    await storage.put(key, b"content", "text/plain", "a.txt")
    await storage.delete([key])
    assert (tmp_path / "files").is_dir()
    assert await asyncio.to_thread(tree, tmp_path / "files") == []


async def test_a_folder_that_still_holds_an_object_stays(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    thread_id = str(uuid4())
    kept, deleted = object_key(thread_id, "kept"), object_key(thread_id, "deleted")
    for key in (kept, deleted):
        await storage.put(key, b"content", "text/plain", "a.txt")
    await storage.delete([deleted])
    folder = f"threads/{thread_id}"
    expected = ["threads", folder, f"{folder}/files", f"{folder}/files/kept"]
    assert await asyncio.to_thread(tree, tmp_path) == expected


@pytest.fixture
async def local_layer(
    database_url: str, tmp_path: Path, chainlit_context: None
) -> AsyncIterator[OpenRAGDataLayer]:
    await upgrade_async(database_url)
    layer = OpenRAGDataLayer(
        Settings.from_env({"DATABASE_URL": database_url, "LOCAL_STORAGE_DIR": str(tmp_path / "files")})
    )
    yield layer
    await layer.close()


async def test_delete_thread_leaves_no_empty_folder_behind(
    local_layer: OpenRAGDataLayer, tmp_path: Path
) -> None:
    """Issue #12: an empty `threads/<id>/files/` stayed behind each deleted thread."""
    thread_id, step_id = str(uuid4()), str(uuid4())
    await local_layer.create_step(step_dict(thread_id, step_id=step_id))
    await local_layer.create_element(text_element(thread_id, step_id))
    assert await asyncio.to_thread(tree, tmp_path / "files") != []
    await local_layer.delete_thread(thread_id)
    assert await asyncio.to_thread(tree, tmp_path / "files") == []
    assert (tmp_path / "files").is_dir()
