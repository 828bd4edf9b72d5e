"""The storage interface: where element files live, and how their keys are made."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote

MAX_SEGMENT = 200  # percent-encoding can triple UTF-8; S3 keys stop at 1024 bytes, file names at 255


@runtime_checkable
class ElementStorage(Protocol):
    """What the data layer needs from an object store. Deleting a missing key counts as done."""

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        """Store ``source`` (bytes, or a file streamed from disk) under ``key``."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes, in chunks; ``FileNotFoundError`` when the key does not exist."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove every key; missing ones are ignored."""

    def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, datetime]]:
        """Every key under ``prefix`` with its last-modified time (for ``sweep`` and ``erase-user``)."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""


@runtime_checkable
class PresigningStorage(ElementStorage, Protocol):
    """A store that can hand the browser a URL of its own (S3's presigned URLs)."""

    async def url(self, key: str) -> str:
        """A URL the browser can GET the object from, valid for a limited time."""


def _key_segment(value: str) -> str:
    """An id as exactly one key segment: percent-encoded, never ``.``/``..``, at most 200 bytes.

    Each special form contains something ``quote`` never produces (``%2E``, a lone ``%``), so two
    ids never share a segment.
    """
    segment = quote(value.encode("utf-8", "surrogatepass"), safe="")
    if not segment.strip("."):
        segment = segment.replace(".", "%2E") or "%"
    if len(segment) > MAX_SEGMENT:
        segment = "%sha256-" + hashlib.sha256(segment.encode()).hexdigest()
    return segment


def thread_prefix(thread_id: str) -> str:
    """Where a thread's objects live: ``threads/{thread}/``, the id escaped."""
    return f"threads/{_key_segment(thread_id)}/"


def object_key(thread_id: str | None, element_id: str) -> str:
    """Chainlit's own key layout, ``threads/{thread}/files/{element}``, with ids escaped."""
    if thread_id is None:
        return f"files/{_key_segment(element_id)}"
    return f"{thread_prefix(thread_id)}files/{_key_segment(element_id)}"
