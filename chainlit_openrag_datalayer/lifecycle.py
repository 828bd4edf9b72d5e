"""Shutdown without the app's help: pending writes finished, the pool closed, the embedded server stopped.

Under ``chainlit run``, Chainlit's lifespan calls the layer's ``close()``. Mounted in a FastAPI app with
``mount_chainlit``, nothing does: Starlette never runs a mounted app's lifespan. ``ShutdownWatch`` closes
the layer itself, at the first of:

- **uvicorn stopping** (SIGTERM, Ctrl+C): the watch is one of the background tasks uvicorn waits for
  before it exits; once uvicorn has closed its connections (Chainlit's last writes of each session
  included), it closes the layer. uvicorn is found through the signal handler it installs.
- **the end of ``asyncio.run``** (another server, or uvicorn told to quit at once): every pending task is
  cancelled, then awaited, and a task created meanwhile runs to completion; the writes the cancellation
  cut short run again (``WriteSequencer.drain``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # uvicorn checks for a shutdown request as often


class ShutdownWatch:
    """Runs ``on_shutdown`` once, when the server or the event loop stops, unless stopped first."""

    def __init__(self, on_shutdown: Callable[[], Awaitable[None]]) -> None:
        self._on_shutdown = on_shutdown
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        """Start watching (from the running loop): once, and never after ``stop()``; cheap to call again."""
        if self._task is not None or self._stopped:
            return
        server = running_uvicorn_server()
        self._task = asyncio.get_running_loop().create_task(self._watch(server))
        if server is not None:
            tasks: set[asyncio.Task[Any]] = server.server_state.tasks
            tasks.add(self._task)  # uvicorn's shutdown waits for these
            self._task.add_done_callback(tasks.discard)

    def stop(self) -> None:
        """Stop watching without calling ``on_shutdown`` (the layer is closing)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _watch(self, server: Any) -> None:
        try:
            if server is None:
                await asyncio.get_running_loop().create_future()  # resolved by nothing: only cancelled
            else:
                await _uvicorn_stopped(server)
        except asyncio.CancelledError:
            if not self._stopped:  # the event loop is ending
                logger.info("Event loop ending without close(): finishing pending writes, then closing")
                await self._on_shutdown()
            raise
        if not self._stopped:
            logger.info("Server stopping: finishing pending writes, then closing")
            await self._on_shutdown()


async def _uvicorn_stopped(server: Any) -> None:
    """Until uvicorn has been asked to stop and has closed every connection (or was told to hurry)."""
    await _until(lambda: server.should_exit)
    await asyncio.sleep(POLL_SECONDS)  # uvicorn stops accepting connections at its next check
    await _until(lambda: not server.server_state.connections or server.force_exit)


async def _until(condition: Callable[[], bool]) -> None:
    """Poll one of uvicorn's flags: plain attributes, with nothing to await."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(POLL_SECONDS)


def running_uvicorn_server() -> Any:
    """The uvicorn ``Server`` running this process, found through the signal handler it installed."""
    try:
        from uvicorn import Server
    except ImportError:
        return None
    for signum in (signal.SIGTERM, signal.SIGINT):
        owner = getattr(signal.getsignal(signum), "__self__", None)
        if isinstance(owner, Server):
            return owner
    return None
