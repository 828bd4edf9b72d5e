"""``doctor``: check a deployment end to end and say what to fix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import uuid4

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from . import adoption, migrations
from .config import Settings
from .connection import Connector, behind_pooler
from .errors import DataLayerError
from .errors import describe as describe_error
from .storage import ElementStorage, LocalStorage, PresigningStorage, describe, storage_for

PROBE = b"chainlit-openrag-datalayer doctor probe"
# served.ROUTE_PATH, and the served route's answer to a URL without its grant (served imports Chainlit,
# which the CLI never imports; tests/browser/test_served_mounts.py checks they agree).
SERVED_ROUTE = "/openrag-datalayer/files"
SERVED_ROUTE_ANSWER = "incomplete file URL"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def _database(connector: Connector) -> str:
    try:
        async with connector.connection() as connection:
            version = await connection.fetchval("SHOW server_version")
            pooled = await behind_pooler(connection)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise DataLayerError(
            f"cannot connect to {connector.url.display} ({describe_error(error)}). Check DATABASE_URL "
            "(host, port, user, password, database name) and that PostgreSQL accepts connections from here."
        ) from error
    return f"PostgreSQL {version}{' behind a pooler (statements sent unnamed)' if pooled else ''}"


async def _schema(connector: Connector, engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        shape = (await connection.run_sync(adoption.detect)).shape
    if shape is not adoption.Shape.MANAGED:
        raise DataLayerError(f"the database is {shape.value}. Run: {migrations.UPGRADE_COMMAND}")
    async with connector.connection() as connection:
        await migrations.check(connection)
    return f"at head {migrations.head_revision()}"


async def _bucket(storage: ElementStorage, key: str) -> str:
    if isinstance(storage, LocalStorage) and not storage.root.is_dir():
        raise DataLayerError(
            f"the local storage folder {storage.root} does not exist. Without BUCKET_NAME the app keeps "
            "files in LOCAL_STORAGE_DIR (default .chainlit/element-files) under the directory it runs in: "
            "run doctor there, pass --app-dir, or set LOCAL_STORAGE_DIR as the app does. (The folder "
            "appears with the app's first upload.)"
        )
    await storage.put(key, PROBE, "text/plain", "doctor.txt")
    return f"probe object written to {describe(storage)}"


async def _round_trip(settings: Settings, storage: ElementStorage, key: str) -> str:
    if settings.served_urls or not isinstance(storage, PresigningStorage):
        return "element URLs are served by the Chainlit app: nothing to sign (--app-url URL checks the app)"
    url = await storage.url(key)
    host = httpx.URL(url).host
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        raise DataLayerError(
            f"GET {host} failed ({error}). Browsers fetch element files from this host: set "
            "APP_AWS_PUBLIC_ENDPOINT to the S3 address browsers reach, or use STORAGE_URL_MODE=served."
        ) from error
    if response.status_code != 200 or response.content != PROBE:
        raise DataLayerError(
            f"GET {host} answered {response.status_code}: the presigned URL does not serve the object. "
            "Check that APP_AWS_PUBLIC_ENDPOINT reaches the same S3 server as DEV_AWS_ENDPOINT."
        )
    return f"presigned GET via {host} returned the object"


async def _app_route(app_url: str) -> str:
    """Served URLs (all of them, or PDFs, text and charts next to presigned ones) start with the app's
    public root: the layer's file route must answer under ``app_url``, with its refusal of a URL
    without a grant."""
    url = app_url.rstrip("/") + SERVED_ROUTE
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        raise DataLayerError(f"GET {url} failed ({error}): is the app running at {app_url}?") from error
    if response.status_code != 403 or response.text != SERVED_ROUTE_ANSWER:
        kind = response.headers.get("content-type", "no content type")
        raise DataLayerError(
            f"GET {url} answered {response.status_code} ({kind}), not the layer's file route: served "
            f"element URLs would not open under {app_url}. Pass the address the chat opens at, mount path "
            'included (mounted with mount_chainlit(app, ..., path="/chainlit"): http://HOST:PORT/chainlit; '
            "chainlit run --root-path /chat: http://HOST:PORT/chat), and check that the app there uses "
            "OpenRAGDataLayer."
        )
    return f"served element URLs open under {app_url} (its file route answers at {url})"


async def _run(name: str, work: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await work())
    except Exception as error:  # doctor reports every failure instead of stopping at the first
        return Check(name, False, str(error) or type(error).__name__)


async def diagnose(settings: Settings, app_url: str | None = None) -> list[Check]:
    """Database reachable, schema at head, bucket writable, element URL round trip; with ``app_url`` (the
    chat's address), the layer's file route answers there."""
    connector = settings.cli_connector()
    engine = connector.engine()
    storage = storage_for(settings)
    key = f"doctor/{uuid4()}.txt"
    try:
        checks = [await _run("database reachable", lambda: _database(connector))]
        if checks[0].ok:
            checks.append(await _run("schema at head", lambda: _schema(connector, engine)))
        checks.append(await _run("storage writable", lambda: _bucket(storage, key)))
        if checks[-1].ok:
            checks.append(await _run("element URL round trip", lambda: _round_trip(settings, storage, key)))
            await storage.delete([key])
        if app_url is not None:
            checks.append(await _run("app file route", lambda: _app_route(app_url)))
        return checks
    finally:
        await engine.dispose()
        await storage.close()
