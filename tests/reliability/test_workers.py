"""Multi-worker start: processes starting at once on an empty database migrate it exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from chainlit_openrag_datalayer.migrations import head_revision
from chainlit_openrag_datalayer.schema import VERSION_TABLE
from tests.reliability.conftest import AUTH_SECRET
from tests.reliability.figures import FIGURES

WORKERS = 8
# Imports first (seconds each on a busy machine), then every worker waits for the go file, creates its
# layer and writes one step and a thread name.
WORKER = """
import asyncio, logging, os, sys, time
from chainlit.context import init_http_context
from chainlit_openrag_datalayer import OpenRAGDataLayer

async def main() -> None:
    init_http_context()
    layer = OpenRAGDataLayer.from_env()
    thread_id = f"worker-thread-{sys.argv[1]}"
    step = {"id": f"worker-step-{sys.argv[1]}", "threadId": thread_id, "type": "user_message",
            "name": "User", "output": f"hello from worker {sys.argv[1]}"}
    await layer.create_step(step)
    await layer.update_thread(thread_id, name=f"worker {sys.argv[1]}")
    await layer.close()

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
print("ready", flush=True)
while not os.path.exists(os.environ["GO_FILE"]):
    time.sleep(0.005)
asyncio.run(main())
"""

VERSIONS = f'SELECT version_num FROM "{VERSION_TABLE}"'  # noqa: S608  # a constant name


def start_workers(environ: dict[str, str], cwd: Path) -> list[subprocess.Popen[str]]:
    """The worker processes, started together; each prints "ready" once imported."""
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(n)],
            env=environ,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WORKERS)
    ]


async def test_workers_starting_together_migrate_once(
    database_url: str, s3_environ: dict[str, str], tmp_path: Path
) -> None:
    """8 processes with DATABASE_AUTO_MIGRATE=true: all exit 0, one version row, migrations applied once."""
    environ = {
        **os.environ,
        **s3_environ,
        "DATABASE_URL": database_url,
        "DATABASE_AUTO_MIGRATE": "true",
        "CHAINLIT_AUTH_SECRET": AUTH_SECRET,
        "CHAINLIT_APP_ROOT": str(tmp_path),
        "GO_FILE": str(tmp_path / "go"),
    }
    workers = start_workers(environ, tmp_path)
    for worker in workers:  # all imported and waiting
        assert worker.stdout is not None
        assert await asyncio.to_thread(worker.stdout.readline) == "ready\n"
    (tmp_path / "go").touch()
    outputs = await asyncio.gather(
        *(asyncio.to_thread(worker.communicate, timeout=120) for worker in workers)
    )
    logs = "".join(stderr for _, stderr in outputs)
    FIGURES.workers += WORKERS

    assert [worker.returncode for worker in workers] == [0] * WORKERS, logs[-3000:]
    assert "Traceback" not in logs and "ERROR" not in logs, logs[-3000:]
    assert logs.count("Database schema upgraded to") == 1, logs[-3000:]  # logged only when revisions ran
    connection = await asyncpg.connect(database_url)
    try:
        versions = await connection.fetch(VERSIONS)
        names = await connection.fetch('SELECT name FROM "Thread" ORDER BY name')
    finally:
        await connection.close()
    assert [row["version_num"] for row in versions] == [head_revision()]
    assert [row["name"] for row in names] == [f"worker {n}" for n in range(WORKERS)]
