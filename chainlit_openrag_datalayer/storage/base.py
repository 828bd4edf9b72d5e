"""The storage interface: where element files live, and how their keys and headers are made."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote

MAX_SEGMENT = 200  # percent-encoding can triple UTF-8; S3 keys stop at 1024 bytes, file names at 255
# RFC 9110 media type: token "/" token, where a token is one or more of these characters.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
# The only types a browser may display from the app's origin (exact essences); anything else,
# HTML, SVG and XML included, is a download.
INLINE_TYPES = frozenset(
    {
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
        "audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/x-wav", "audio/webm", "audio/aac",
        "audio/flac", "video/mp4", "video/webm", "video/ogg", "video/quicktime",
        "application/pdf", "text/plain",
    }
)  # fmt: skip


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


def mime_essence(mime: str) -> str:
    """``type/subtype`` in lower case, parameters dropped; ``application/octet-stream`` if unparsable.

    The type comes from the uploading browser: ``audio/mpeg, text/html`` must not pass for audio.
    """
    essence = mime.split(";", 1)[0].strip(" \t").lower()
    return essence if _MEDIA_TYPE.fullmatch(essence) else "application/octet-stream"


def is_inline(mime: str) -> bool:
    """Whether a file of this type may be shown in the browser rather than downloaded."""
    return mime_essence(mime) in INLINE_TYPES


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """RFC 6266 header with an ASCII fallback and the exact name in RFC 5987 ``filename*``."""
    cleaned = "".join(ch for ch in filename if ch.isprintable() and ch not in "\r\n")
    fallback = "".join(ch if ch.isascii() and ch not in '"\\/;' else "_" for ch in cleaned) or "file"
    encoded = quote(cleaned.replace("/", "_").replace("\\", "_"), safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
