"""Real faults for real services: a TCP endpoint that can be cut and restored, and a storage that stalls.

Cutting the proxy in front of moto is what clients see when S3 goes away: open connections are
reset and new ones refused on the same port, until it comes back (with its objects, which moto keeps).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit

from chainlit_openrag_datalayer.storage.local import LocalStorage
from tests.services import LOOPBACK, free_port


class CuttableProxy:
    """A loopback TCP proxy to `upstream_url`; `cut()` drops every connection and stops listening;
    `stall()` keeps them all open and forwards nothing more (a hung server, a half-dead network)."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or LOOPBACK, parts.port or 80)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port, reuse_address=True)

    def stall(self) -> None:
        """Accept and hold connections, forward nothing, until `resume()`."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._flowing.set()  # connections held by a stall end: their transports are closed
        if server is not None:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()  # a stalled proxy holds new connections too
        try:
            if self._server is None:  # cut meanwhile
                raise ConnectionResetError
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                _pipe(reader, upstream_writer, self._flowing), _pipe(upstream_reader, writer, self._flowing)
            )
        finally:
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


class StalledStorage(LocalStorage):
    """LocalStorage whose uploads wait until `resume()`: writes pile up as during a long S3 outage."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._open = asyncio.Event()

    def resume(self) -> None:
        self._open.set()

    def stall(self) -> None:
        self._open.clear()

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        await self._open.wait()
        await super().put(key, source, mime, filename)


class UnreachableStorage(LocalStorage):
    """LocalStorage whose uploads always fail the way an unreachable S3 endpoint does."""

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        raise ConnectionRefusedError(f"connection refused while uploading {key}")
