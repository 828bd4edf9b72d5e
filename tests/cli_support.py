"""Shared by the CLI and maintenance tests: a managed database holding conversations written by our layer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import asyncpg
import chainlit.data
import pytest
from chainlit.context import init_http_context

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
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

    async def age_thread(self, thread_id: str, days: int) -> None:
        """Move the thread's last activity `days` into the past."""
        await self.sql(
            """UPDATE "Thread" SET "updatedAt" = now() - make_interval(days => $2) WHERE id = $1""",
            thread_id,
            days,
        )


async def chainlit_http_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP Chainlit context, so `@queue_until_user_message` methods run at once; no global data layer."""
    monkeypatch.setattr(chainlit.data, "_data_layer", None)
    monkeypatch.setattr(chainlit.data, "_data_layer_initialized", True)
    init_http_context()


async def open_deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    """Upgrade the database and open our layer on it (the layer creates the bucket on first upload)."""
    await upgrade_async(database_url)
    environ = {"DATABASE_URL": database_url, **s3_environ}
    layer = OpenRAGDataLayer(Settings.from_env(environ))
    yield Deployment(environ, layer)
    await layer.close()


def run_cli(environ: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m chainlit_openrag_datalayer ARGS` with only `environ` and the basics set."""
    basics = {key: os.environ[key] for key in ("PATH", "HOME", "CHAINLIT_APP_ROOT") if key in os.environ}
    env = {
        **basics,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-m", "chainlit_openrag_datalayer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
