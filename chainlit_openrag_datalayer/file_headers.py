"""How a browser is told to treat an element file: its media type, and shown or downloaded under which name.

The type comes from the uploading browser, unchecked. The served route and S3 (which sends back what was
stored with the object) give the same answer, so that no upload renders as a page on either origin.
"""

from __future__ import annotations

import re
from urllib.parse import quote

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


def mime_essence(mime: str) -> str:
    """``type/subtype`` in lower case, parameters dropped; ``application/octet-stream`` if unparsable.

    The type comes from the uploading browser: ``audio/mpeg, text/html`` must not pass for audio.
    """
    essence = mime.split(";", 1)[0].strip(" \t").lower()
    return essence if _MEDIA_TYPE.fullmatch(essence) else "application/octet-stream"


def content_disposition(filename: str, mime: str) -> str:
    """RFC 6266 header: ``inline`` only for ``INLINE_TYPES``, else ``attachment``; an ASCII fallback
    name and the exact one in RFC 5987 ``filename*``."""
    disposition = "inline" if mime_essence(mime) in INLINE_TYPES else "attachment"
    cleaned = "".join(ch for ch in filename if ch.isprintable() and ch not in "\r\n")
    fallback = "".join(ch if ch.isascii() and ch not in '"\\/;' else "_" for ch in cleaned) or "file"
    encoded = quote(cleaned.replace("/", "_").replace("\\", "_"), safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
