"""LocalStorage: element files in a folder on disk, for development and the zero-setup default.

Files and the folders the storage creates are readable by the app's own user only (0600 and 0700).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..errors import StorageError

_CHUNK = 256 * 1024
_MKDIR_ATTEMPTS = 3


class LocalStorage:
    """Objects are files under ``root``; a key can never reach outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        """The file for ``key``; refuses keys that would escape ``root`` (``..``, absolute paths)."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError(f"Object key {key!r} escapes the storage folder {self.root}.")
        return path

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        await asyncio.to_thread(self._write, self.path(key), source)

    @staticmethod
    def _write(target: Path, source: bytes | Path) -> None:
        partial = target.with_name(target.name + ".partial")
        for attempt in range(_MKDIR_ATTEMPTS):
            try:
                _make_private_folders(target.parent)
                # 0600 from the start: writing into an existing file keeps its mode.
                os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                if isinstance(source, Path):
                    shutil.copyfile(source, partial)  # streams in chunks, never the whole file in memory
                else:
                    partial.write_bytes(source)
                break
            except FileNotFoundError:  # a delete removed the emptied folder in between: make it again
                if attempt == _MKDIR_ATTEMPTS - 1 or (isinstance(source, Path) and not source.exists()):
                    raise
        partial.replace(target)  # readers never see half a file

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                yield chunk
        finally:
            handle.close()

    async def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, datetime]]:
        """Every key under ``prefix`` with its last-modified time (for ``sweep`` and ``erase-user``)."""
        for key, modified in await asyncio.to_thread(self._files, prefix):
            yield key, modified

    def _files(self, prefix: str) -> list[tuple[str, datetime]]:
        found = []
        for path in self.root.rglob("*") if self.root.is_dir() else ():
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(".partial"):
                found.append((key, datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)))
        return found

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove each file, then each folder it leaves empty (up to, never including, ``root``)."""
        for key in keys:
            await asyncio.to_thread(self._remove, self.path(key))

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root or not folder.is_relative_to(self.root):
                return
            try:
                folder.rmdir()  # only succeeds on an empty folder
            except OSError:  # not empty (another object, or a concurrent upload), or already gone
                return

    async def close(self) -> None:
        """Nothing to release."""


def _make_private_folders(folder: Path) -> None:
    """``folder`` and its missing parents, each 0700 (``mkdir(parents=True)`` gives parents the default)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
