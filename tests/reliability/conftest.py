"""Reliability fixtures: a Chainlit HTTP context, layers on a fresh database, and the final figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from _pytest.terminal import TerminalReporter

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.connection import parse_database_url
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.reliability.figures import FIGURES
from tests.services import LOOPBACK, free_port

AUTH_SECRET = "reliability-suite-secret-0123456789abcdef"
LayerFactory = Callable[..., Awaitable[OpenRAGDataLayer]]


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    figures = (FIGURES.sessions, FIGURES.inputs_tried, FIGURES.outages, FIGURES.workers, FIGURES.shutdowns)
    if any(figures) or FIGURES.stalls:
        terminalreporter.write_sep("=", "reliability figures")
        for line in FIGURES.lines():
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def in_chainlit_context(chainlit_context: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reliability test runs in an HTTP Chainlit context, with this suite's auth secret."""
    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", AUTH_SECRET)


def layer_settings(database_url: str, files: Path, **overrides: Any) -> Settings:
    """Settings for a layer on `database_url` with element files in `files` (served URLs)."""
    values: dict[str, Any] = {
        "database_url": parse_database_url(database_url),
        "local_storage_dir": files,
        "url_secret": AUTH_SECRET,
        # The full load tests keep more writes in flight than the default 10,000 buffer holds (200 sessions
        # firing at once, or 40 busy sessions through a 10 s outage); the bounds have their own tests.
        "max_pending_writes": 200_000,
        "max_pending_write_bytes": 2**32,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def make_layer(database_url: str, tmp_path: Path) -> AsyncIterator[LayerFactory]:
    """Build layers on this test's (upgraded) database; each is closed after the test."""
    await upgrade_async(database_url)
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> OpenRAGDataLayer:
            storage = overrides.pop("storage", None)
            layer = OpenRAGDataLayer(layer_settings(database_url, tmp_path / "files", **overrides), storage)
            stack.push_async_callback(layer.close)
            return layer

        yield make


@pytest.fixture
async def layer(make_layer: LayerFactory) -> OpenRAGDataLayer:
    """A layer with default settings and local element files."""
    return await make_layer()


@pytest.fixture
async def chainlit_http(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Chainlit's app over real HTTP: uvicorn on a loopback port, in this test's event loop; its base URL.

    The test chooses the data layer (``chainlit.data._data_layer``) and whether login is required.
    """
    from chainlit.server import app

    port = free_port()
    config = uvicorn.Config(app, host=LOOPBACK, port=port, lifespan="off", ws="none", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it could not start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await serving
