"""Shared by the CLI and maintenance tests: a managed database holding conversations written by our layer,
and the command line run in this process (`main([...])`) or as a subprocess."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.cli import main
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.legacy_data import Conversation, write_with_builtin_layer


@dataclass
class Deployment:
    """A database at head and a bucket, with the environment a CLI run needs."""

    environ: dict[str, str]
    layer: OpenRAGDataLayer
    talks: list[Conversation] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.environ["DATABASE_URL"]

    @property
    def bucket(self) -> str:
        return self.environ["BUCKET_NAME"]

    async def talk(self) -> Conversation:
        """One more conversation (user, thread, question, answer, file, feedback) written by our layer."""
        conversation = await write_with_builtin_layer(self.layer)  # type: ignore[arg-type]
        self.talks.append(conversation)
        return conversation

    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    async def next_second(self) -> None:
        """Wait for the next whole second: `sweep` cuts off on whole seconds (S3's LastModified has no
        fraction), so a sweep with no grace then sees everything written so far as older than its cutoff."""
        await asyncio.sleep(1.01 - datetime.now(timezone.utc).microsecond / 1e6)

    async def age_thread(self, thread_id: str, days: int) -> None:
        """Move the thread's last activity `days` into the past."""
        await self.sql(
            """UPDATE "Thread" SET "updatedAt" = now() - make_interval(days => $2) WHERE id = $1""",
            thread_id,
            days,
        )


async def open_deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    """Upgrade the database and open our layer on it (the layer creates the bucket on first upload)."""
    await upgrade_async(database_url)
    environ = {"DATABASE_URL": database_url, **s3_environ}
    layer = OpenRAGDataLayer(Settings.from_env(environ))
    yield Deployment(environ, layer)
    await layer.close()


def run_cli(
    environ: Mapping[str, str], *args: str, cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """`python -m chainlit_openrag_datalayer ARGS` in a process of its own, with only `environ` and the
    basics set (no CHAINLIT_APP_ROOT: whatever it writes would land in `cwd`)."""
    basics = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env = {
        **basics,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-m", "chainlit_openrag_datalayer", *args],
        env=env,
        cwd=cwd,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


class Terminal(io.StringIO):
    """Standard input as a person at a terminal gives it: ``answer`` typed, ``isatty()`` true."""

    def isatty(self) -> bool:
        return True


class InProcessCli:
    """`main([...])` in this process with `environ` set and output captured: the commands as the
    subprocess runs them, without two seconds of interpreter start-up each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def run(self, environ: Mapping[str, str], *args: str, typed: str | None = None) -> CliResult:
        """Run one command; ``typed`` is what a person types on a terminal, else stdin is not a terminal."""
        self.capsys.readouterr()
        with self.monkeypatch.context() as patch:
            for key, value in environ.items():
                patch.setenv(key, value)
            patch.setattr(sys, "stdin", io.StringIO("") if typed is None else Terminal(typed))
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse: --help, bad usage
                code = int(exit.code or 0)
        out, err = self.capsys.readouterr()
        return CliResult(code, out, err)

    async def __call__(self, environ: Mapping[str, str], *args: str, typed: str | None = None) -> CliResult:
        """From a test's event loop: the command runs its own (`asyncio.run`) in a worker thread."""
        return await asyncio.to_thread(self.run, environ, *args, typed=typed)
