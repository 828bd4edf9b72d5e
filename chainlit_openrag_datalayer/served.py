"""Served element URLs: the Chainlit server streams element files itself.

A URL carries its grant (object key, file name, type, owner, expiry) in the query string, signed
with HMAC-SHA256 under a key derived from ``CHAINLIT_AUTH_SECRET``. The route refuses a tampered,
expired or foreign grant, and, when the app requires login, a user who is not the thread's owner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from chainlit.auth import get_current_user, require_login
from chainlit.data import get_data_layer
from chainlit.user import User
from fastapi import Depends, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from .storage.base import content_disposition

logger = logging.getLogger(__name__)

ROUTE_PATH = "/openrag-datalayer/files"
# Types a browser may render from our origin; anything else (HTML, SVG...) is a download.
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain")
INLINE_PREFIXES = ("audio/", "video/")
_FIELDS = ("k", "n", "m", "u", "e")


class InvalidGrant(Exception):
    """The URL was not signed by this app's secret, was altered, or has expired."""


@dataclass(frozen=True)
class FileGrant:
    """What a served URL allows: read ``key`` until ``expires``, as ``user`` (empty: anyone)."""

    key: str
    name: str
    mime: str
    user: str
    expires: int


class UrlSigner:
    """Makes and checks served URLs."""

    def __init__(self, secret: str | None, expiry_seconds: int) -> None:
        if secret is None:
            secret = secrets.token_urlsafe(32)
            logger.warning(
                "CHAINLIT_AUTH_SECRET is not set: element URLs are signed with a per-process key and "
                "stop working after a restart or on another worker. Set it (chainlit create-secret)."
            )
        self._key = hmac.new(
            secret.encode(), b"chainlit-openrag-datalayer/element-url", hashlib.sha256
        ).digest()
        self.expiry_seconds = expiry_seconds

    def url(self, key: str, name: str, mime: str, user: str | None, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.expiry_seconds)
        values = {"k": key, "n": name, "m": mime, "u": user or "", "e": str(expires)}
        values["s"] = self._signature(values)
        return f"{_root_path()}{ROUTE_PATH}?{urlencode(values)}"

    def verify(self, query: Mapping[str, str], now: float | None = None) -> FileGrant:
        if any(field not in query for field in (*_FIELDS, "s")):
            raise InvalidGrant("incomplete file URL")
        if not hmac.compare_digest(self._signature(query), query["s"]):
            raise InvalidGrant("file URL signature does not match")
        if not query["e"].isdigit() or int(query["e"]) < (time.time() if now is None else now):
            raise InvalidGrant("file URL has expired: reload the thread for a fresh one")
        return FileGrant(
            key=query["k"], name=query["n"], mime=query["m"], user=query["u"], expires=int(query["e"])
        )

    def _signature(self, values: Mapping[str, str]) -> str:
        message = json.dumps([values[field] for field in _FIELDS]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def ensure_route() -> None:
    """Mount the file route on Chainlit's app, ahead of its catch-all front-end route."""
    from chainlit.server import app

    path = _root_path() + ROUTE_PATH
    if any(getattr(route, "path", None) == path for route in app.router.routes):
        return
    app.add_api_route(path, serve_file, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())


async def serve_file(
    request: Request, current_user: Annotated[User | None, Depends(get_current_user)]
) -> Response:
    """GET handler: check the grant and the user, then stream the object."""
    layer = get_data_layer()  # type: ignore[no-untyped-call]
    signer, storage = getattr(layer, "url_signer", None), getattr(layer, "storage", None)
    if signer is None or storage is None:
        return PlainTextResponse("served files are not enabled", status_code=404)
    try:
        grant = signer.verify(request.query_params)
    except InvalidGrant as error:
        return PlainTextResponse(str(error), status_code=403)
    if require_login():  # type: ignore[no-untyped-call]
        if current_user is None:
            return PlainTextResponse("log in to read this file", status_code=401)
        if grant.user and grant.user != current_user.identifier:
            return PlainTextResponse("this file belongs to another user", status_code=403)
    chunks: AsyncIterator[bytes] = storage.read(grant.key)
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError:
        return PlainTextResponse("file not found", status_code=404)
    return StreamingResponse(_prepend(first, chunks), media_type=grant.mime, headers=_headers(grant))


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def _headers(grant: FileGrant) -> dict[str, str]:
    inline = grant.mime in INLINE_TYPES or grant.mime.startswith(INLINE_PREFIXES)
    headers = {
        "Content-Disposition": content_disposition(grant.name, "inline" if inline else "attachment"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": f"private, max-age={max(grant.expires - int(time.time()), 0)}",
    }
    if not inline:  # an uploaded HTML or SVG file must never run scripts on the app's origin
        headers["Content-Security-Policy"] = "sandbox"
    return headers


def _root_path() -> str:
    from chainlit.config import config

    root_path: str = config.run.root_path
    return root_path.rstrip("/")
