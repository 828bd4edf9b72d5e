"""Served element URLs: the Chainlit server streams element files itself.

A URL carries its grant (``file_grants``: object key, file name, type, owner, thread, expiry, signed) in
the query string. The route serves what the layer gives it (``serve``: signer, storage, threads). It
refuses a tampered, expired or foreign grant, and, when the app requires login, a user who is neither
the thread's owner nor a viewer Chainlit admits to the thread (see ``admitted_to_thread``).

The route sits beside Chainlit's own routes and the URLs carry the path prefix browsers use for them,
however the app is served: ``chainlit run`` (with or without ``--root-path``), or mounted in a FastAPI
app with ``mount_chainlit(app, target=..., path=...)``, behind a proxy prefix or not. It is there from the
start: both import Chainlit's server before they load the app, and so before the app imports this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from chainlit.auth import get_current_user, require_login, reuseable_oauth
from chainlit.data import get_data_layer
from chainlit.types import ThreadDict
from chainlit.user import User
from fastapi import Depends, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from .file_grants import FileGrant, GrantSigner, InvalidGrant
from .file_headers import content_disposition, mime_essence
from .storage import ElementStorage

logger = logging.getLogger(__name__)

ROUTE_PATH = "/openrag-datalayer/files"
# Element types Chainlit's front end reads with fetch() (pdf.js for PDFs; TaskList even with
# credentials) rather than an <img>/<audio>/<video>/<a> tag. Cross-origin they would need the bucket
# to send CORS headers for the app's origin, so presigned mode still serves these from the app.
SCRIPT_FETCHED_TYPES = frozenset({"text", "plotly", "dataframe", "tasklist", "pdf"})
# Every served file: no script, plugin or form of it runs, and the browser never guesses another type.
SECURITY_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
# The ASGI root_path of the request (or socket) being served, recorded as Chainlit's app routes it.
_request_root_path: ContextVar[str | None] = ContextVar("openrag_datalayer_root_path", default=None)
# What the route serves: the files of each open layer, the latest last (see ``serve``).
_serving: list[ServedFiles] = []


@dataclass(frozen=True, eq=False)
class ServedFiles:
    """What the route serves, given by the layer that made the URLs: the signer of its grants, its
    storage, and how to read a thread (to ask Chainlit's share decision again)."""

    signer: GrantSigner
    storage: ElementStorage
    read_thread: Callable[[str], Awaitable[ThreadDict | None]]

    def url(
        self,
        key: str,
        name: str,
        mime: str,
        owner: str | None,
        thread: str | None = None,
        now: float | None = None,
    ) -> str:
        """A served URL for ``key``, under the path prefix browsers use for Chainlit's routes."""
        query = self.signer.sign(key, name, mime, owner, thread, now)
        return f"{public_root_path()}{ROUTE_PATH}?{urlencode(query)}"


def serve(files: ServedFiles) -> None:
    """Serve ``files`` on the route until ``withdraw(files)``; the latest given is the one served."""
    ensure_route()
    _serving.append(files)


def withdraw(files: ServedFiles) -> None:
    """Stop serving ``files`` (their layer is closing); safe to call twice."""
    with contextlib.suppress(ValueError):
        _serving.remove(files)


def _served_files() -> ServedFiles | None:
    """The files the route serves. Chainlit builds its data layer on first use, so until a layer has given
    its files, have Chainlit build it (the layer calls ``serve``): a restarted app's first request may be
    a file URL."""
    if not _serving:
        get_data_layer()  # type: ignore[no-untyped-call]
    return _serving[-1] if _serving else None


def ensure_route() -> None:
    """Add the file route to Chainlit's app, beside its own routes and ahead of its catch-all page route."""
    from chainlit.server import app

    routes = app.router.routes
    if any(isinstance(route, RootPathRecorder) for route in routes):
        return
    app.add_api_route(
        chainlit_route_prefix() + ROUTE_PATH, serve_file, methods=["GET"], include_in_schema=False
    )
    routes.insert(0, routes.pop())
    routes.insert(0, RootPathRecorder())


def public_root_path() -> str:
    """The path prefix of Chainlit's routes as browsers reach them (``/chainlit`` when mounted there).

    Inside a request, or a websocket event: the ASGI ``root_path`` it came through (mounts, ``--root-path``,
    a proxy prefix the app was told about) plus the prefix of Chainlit's own routes. Elsewhere: what
    Chainlit gives its front end, ``CHAINLIT_PARENT_ROOT_PATH`` + ``CHAINLIT_ROOT_PATH``.
    """
    recorded = _request_root_path.get()
    if recorded is None:
        root = os.environ.get("CHAINLIT_PARENT_ROOT_PATH", "") + os.environ.get("CHAINLIT_ROOT_PATH", "")
    else:
        root = recorded + chainlit_route_prefix()
    return root.rstrip("/")


def chainlit_route_prefix() -> str:
    """Where Chainlit's routes start inside its own app: its router's prefix (``--root-path`` on Chainlit
    2.12, nothing on 2.2, where uvicorn's ``root_path`` carries it instead)."""
    from chainlit.server import router

    return str(router.prefix)


class RootPathRecorder(BaseRoute):
    """First of Chainlit's routes; matches nothing. It records the request's ASGI ``root_path`` for
    ``public_root_path()``: the request's own task (and the socket.io handlers it starts) sees it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] in ("http", "websocket"):
            _request_root_path.set(scope.get("root_path", "").rstrip("/"))
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError("RootPathRecorder never matches")

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


async def logged_in_user(token: Annotated[str | None, Depends(reuseable_oauth)]) -> User | None:
    """The user of the request; None without login or a valid token (``serve_file`` answers then)."""
    try:
        user: User | None = await get_current_user(token)  # type: ignore[arg-type]
    except HTTPException:
        return None
    return user


async def serve_file(
    request: Request, current_user: Annotated[User | None, Depends(logged_in_user)]
) -> Response:
    """GET handler: check the grant, then the user, then stream the object.

    The grant first: a URL without one is refused with 403 "incomplete file URL" whether or not the
    request is logged in, which is how ``doctor --app-url`` recognises the route.
    """
    files = _served_files()
    if files is None:
        return PlainTextResponse("served files are not enabled", status_code=404)
    try:
        grant = files.signer.verify(request.query_params)
    except InvalidGrant as error:
        return PlainTextResponse(str(error), status_code=403)
    if require_login():  # type: ignore[no-untyped-call]
        if current_user is None:
            return PlainTextResponse("log in to read this file", status_code=401)
        if (
            grant.user
            and grant.user != current_user.identifier
            and not await admitted_to_thread(files.read_thread, grant.thread, current_user)
        ):
            return PlainTextResponse("this file belongs to another user", status_code=403)
    chunks: AsyncIterator[bytes] = files.storage.read(grant.key)
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError:
        return PlainTextResponse("file not found", status_code=404)
    return StreamingResponse(_prepend(first, chunks), headers=_headers(grant))


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def admitted_to_thread(
    read_thread: Callable[[str], Awaitable[ThreadDict | None]], thread_id: str, viewer: User
) -> bool:
    """Chainlit's own decision for a non-author (``GET /project/share/{thread}``), asked again now.

    Admitted when the thread is shared (``metadata.is_shared``) or the app's
    ``@cl.on_shared_thread_view`` says so; an error in that callback counts as no. Chainlit releases
    without thread sharing (no ``on_shared_thread_view``, e.g. 2.2.1) admit the owner only.
    """
    from chainlit.config import config

    if not thread_id or not hasattr(config.code, "on_shared_thread_view"):
        return False
    thread = await read_thread(thread_id)
    if thread is None:
        return False
    metadata = thread.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_shared"):
        return True
    callback = config.code.on_shared_thread_view
    if callback is None:
        return False
    try:
        return bool(await callback(thread, viewer))
    except Exception:
        logger.exception("on_shared_thread_view failed for thread %s: the file is refused", thread_id)
        return False


def _headers(grant: FileGrant) -> dict[str, str]:
    """The type's essence, inline only for the allowlist; sandboxed and never sniffed."""
    mime = mime_essence(grant.mime)
    return {
        # Text the layer writes is UTF-8; a browser left to guess would show it as Windows-1252.
        "Content-Type": f"{mime}; charset=utf-8" if mime == "text/plain" else mime,
        "Content-Disposition": content_disposition(grant.name, mime),
        "Cache-Control": f"private, max-age={max(grant.expires - int(time.time()), 0)}",
        **SECURITY_HEADERS,
    }


if "chainlit.server" in sys.modules:  # the app is loading: the route is there before its first request
    ensure_route()
