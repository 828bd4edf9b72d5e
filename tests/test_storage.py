"""The ElementStorage protocol, run over S3Storage (moto over HTTP) and LocalStorage (a folder).

`-m s3` or `-m local` picks one backend. What only one backend does (S3's stored headers and presigned
URLs; the local folder tree) is tested at the end of this file, in tests/test_presign.py and in
tests/test_local_storage.py.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from chainlit_openrag_datalayer import Settings
from chainlit_openrag_datalayer.storage import (
    ElementStorage,
    LocalStorage,
    S3Storage,
    object_key,
    thread_prefix,
)
from tests.reliability.test_served_files import SERVED_AS

# Ids as clients send them: each must give a key that stores, reads, lists and deletes as itself.
HOSTILE_IDS = [
    "..", ".", "../../etc/passwd", "/", "/etc/passwd", "a/b", "%2F", "..%2F..", "%", "~", " ", "\\..\\",
    "\x00", "\ud800", "\r\n", "ü ñ", "\U0001f600", "?x=1#y", "*", "é" * 300,
]  # fmt: skip
# File names and types as browsers send them, in pairs.
HOSTILE_UPLOADS = [
    ('"; rm -rf /', ""), ("a\r\nX-Injected: 1", "text/html"), ("../../etc/passwd", "audio/mpeg, text/html"),
    ("ü ñ.txt", "TEXT/PLAIN; charset=utf-8"), ("", "\r\nX: y"), ("\x00\x1b[2J", "ü/ñ"),
    ("é" * 300, "x" * 1000),
]  # fmt: skip


@pytest.fixture
async def s3_storage(s3_environ: dict[str, str]) -> AsyncIterator[S3Storage]:
    """S3Storage on the moto server, with a bucket that does not exist yet (it makes it on first use)."""
    s3 = Settings.from_env(s3_environ).s3
    assert s3 is not None
    storage = S3Storage(s3)
    yield storage
    await storage.close()


@pytest.fixture
async def local_storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    """LocalStorage in a folder that does not exist yet."""
    storage = LocalStorage(tmp_path / "files")
    yield storage
    await storage.close()


@pytest.fixture(
    params=[
        pytest.param("s3_storage", marks=pytest.mark.s3, id="s3"),
        pytest.param("local_storage", marks=pytest.mark.local, id="local"),
    ]
)
def storage(request: pytest.FixtureRequest) -> ElementStorage:
    """The storage under test."""
    backend: ElementStorage = request.getfixturevalue(request.param)
    return backend


def new_key() -> str:
    return object_key(str(uuid4()), str(uuid4()))


async def stored(storage: ElementStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def keys_under(storage: ElementStorage, prefix: str = "") -> list[str]:
    return sorted([key async for key, _ in storage.objects(prefix)])


def test_each_backend_is_an_element_storage(storage: ElementStorage) -> None:
    assert isinstance(storage, ElementStorage)


async def test_put_bytes_then_read_returns_them(storage: ElementStorage) -> None:
    key, content = new_key(), os.urandom(1000)
    await storage.put(key, content, "application/octet-stream", "blob.bin")
    assert await stored(storage, key) == content


async def test_an_empty_object_reads_back_empty(storage: ElementStorage) -> None:
    key = new_key()
    await storage.put(key, b"", "text/plain", "empty.txt")
    assert await stored(storage, key) == b""
    assert await keys_under(storage) == [key]


async def test_put_of_a_file_on_disk_stores_its_bytes_and_reads_in_chunks(
    storage: ElementStorage, tmp_path: Path
) -> None:
    """A file larger than one read chunk (256 KiB) comes back whole, in more than one chunk."""
    source, content = tmp_path / "upload.bin", os.urandom(1024 * 1024 + 1)
    source.write_bytes(content)
    key = new_key()
    await storage.put(key, source, "application/pdf", "report.pdf")
    chunks = [chunk async for chunk in storage.read(key)]
    assert len(chunks) > 1 and b"".join(chunks) == content
    assert source.read_bytes() == content  # the source is left as it was


async def test_put_again_replaces_the_object(storage: ElementStorage) -> None:
    key = new_key()
    await storage.put(key, b"first", "text/plain", "a.txt")
    await storage.put(key, b"second", "text/plain", "a.txt")
    assert await stored(storage, key) == b"second"
    assert await keys_under(storage) == [key]


async def test_read_of_a_missing_key_raises_file_not_found(storage: ElementStorage) -> None:
    await storage.put(new_key(), b"another object", "text/plain", "a.txt")  # the bucket or folder exists
    with pytest.raises(FileNotFoundError):
        await stored(storage, new_key())


async def test_read_before_anything_was_stored_raises_file_not_found(storage: ElementStorage) -> None:
    """No bucket or folder yet: still "not found", not a backend error."""
    with pytest.raises(FileNotFoundError):
        await stored(storage, new_key())


async def test_delete_removes_the_given_keys_only(storage: ElementStorage) -> None:
    thread_id = str(uuid4())
    keys = [object_key(thread_id, str(n)) for n in range(3)]
    for key in keys:
        await storage.put(key, key.encode(), "text/plain", "a.txt")
    await storage.delete(keys[:2])
    assert await keys_under(storage) == [keys[2]]
    assert await stored(storage, keys[2]) == keys[2].encode()
    with pytest.raises(FileNotFoundError):
        await stored(storage, keys[0])


async def test_delete_of_missing_keys_counts_as_done(storage: ElementStorage) -> None:
    """Deleting twice, deleting keys never stored and deleting nothing all succeed and change nothing."""
    kept, deleted = new_key(), new_key()
    await storage.put(kept, b"kept", "text/plain", "a.txt")
    await storage.put(deleted, b"deleted", "text/plain", "b.txt")
    await storage.delete([deleted])
    await storage.delete([deleted, new_key()])
    await storage.delete([])
    assert await keys_under(storage) == [kept]


async def test_delete_before_anything_was_stored_counts_as_done(storage: ElementStorage) -> None:
    await storage.delete([new_key()])
    assert await keys_under(storage) == []


async def test_objects_lists_the_keys_under_a_prefix_with_utc_times(storage: ElementStorage) -> None:
    """S3's LastModified has whole seconds, so the window is widened by a second each side."""
    mine, other = str(uuid4()), str(uuid4())
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    mine_keys = sorted(object_key(mine, str(n)) for n in range(3))
    for key in [*mine_keys, object_key(other, "0"), object_key(None, "loose")]:
        await storage.put(key, b"x", "text/plain", "a.txt")
    after = datetime.now(timezone.utc) + timedelta(seconds=1)

    listed = [item async for item in storage.objects(thread_prefix(mine))]
    assert sorted(key for key, _ in listed) == mine_keys
    assert all(modified.utcoffset() == timedelta(0) and before <= modified <= after for _, modified in listed)
    assert len(await keys_under(storage)) == 5


async def test_objects_of_an_empty_store_is_empty(storage: ElementStorage) -> None:
    assert await keys_under(storage) == []
    assert await keys_under(storage, thread_prefix(str(uuid4()))) == []


async def test_keys_from_hostile_ids_store_list_and_delete_as_themselves(storage: ElementStorage) -> None:
    """Whatever a client sends as thread or element id, the object sits under that thread's prefix only."""
    by_thread = {hostile: object_key(hostile, str(uuid4())) for hostile in HOSTILE_IDS}
    by_element = [object_key(str(uuid4()), hostile) for hostile in HOSTILE_IDS]
    keys = [*by_thread.values(), *by_element]
    assert len(set(keys)) == len(keys)
    for key in keys:
        await storage.put(key, key.encode(), "text/plain", "a.txt")

    for hostile, key in by_thread.items():
        assert await keys_under(storage, thread_prefix(hostile)) == [key], ascii(hostile)
    assert await keys_under(storage) == sorted(keys)
    for key in keys:
        assert await stored(storage, key) == key.encode(), key
    await storage.delete(keys)
    assert await keys_under(storage) == []


async def test_any_file_name_and_type_are_stored(storage: ElementStorage) -> None:
    """Names and types come from the uploading browser: quotes, line breaks, paths, non-ASCII, garbage."""
    for name, mime in HOSTILE_UPLOADS:
        key = new_key()
        await storage.put(key, name.encode("utf-8", "surrogatepass"), mime, name)
        assert await stored(storage, key) == name.encode("utf-8", "surrogatepass"), (name, mime)


async def test_uploads_racing_deletes_under_one_prefix_all_land(storage: ElementStorage) -> None:
    """A delete emptying a thread's folder while an upload goes into it: every kept upload is there."""
    thread_id = str(uuid4())
    keys = [object_key(thread_id, str(n)) for n in range(40)]

    async def put_then_delete(key: str, keep: bool) -> None:
        await storage.put(key, b"x", "text/plain", "x.txt")
        if not keep:
            await storage.delete([key])

    await asyncio.gather(*(put_then_delete(key, keep=n % 2 == 0) for n, key in enumerate(keys)))
    assert await keys_under(storage) == sorted(keys[0::2])


async def test_close_twice_is_harmless_and_keeps_what_was_stored(storage: ElementStorage) -> None:
    """Chainlit's shutdown hook may close the layer while a late write still comes: the store stays usable."""
    key = new_key()
    await storage.put(key, b"before", "text/plain", "a.txt")
    await storage.close()
    await storage.close()
    assert await stored(storage, key) == b"before"
    await storage.put(key, b"after", "text/plain", "a.txt")
    assert await stored(storage, key) == b"after"


async def test_close_before_any_use_is_harmless(storage: ElementStorage) -> None:
    await storage.close()
    await storage.close()
    assert await keys_under(storage) == []


# --- S3 only: what the bucket serves when the browser follows a presigned URL ----------------------


@pytest.mark.s3
async def test_s3_serves_the_type_essence_and_disposition_the_served_route_sends(
    s3_storage: S3Storage,
) -> None:
    """An HTML "audio" upload must not render on the bucket's origin: for every type the served-file
    route is tested with, the object carries the same type (without the route's charset) and disposition."""
    async with httpx.AsyncClient() as client:
        for mime, (served_type, disposition) in SERVED_AS.items():
            key = new_key()
            await s3_storage.put(key, b"<script>alert(1)</script>", mime, 'report "final".pdf')
            response = await client.get(await s3_storage.url(key))
            assert response.status_code == 200 and response.content == b"<script>alert(1)</script>"
            assert response.headers["content-type"] == served_type.partition(";")[0], mime
            assert response.headers["content-disposition"] == (
                f"{disposition}; filename=\"report _final_.pdf\"; filename*=UTF-8''report%20%22final%22.pdf"
            ), mime
