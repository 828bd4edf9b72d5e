"""A mounted Chainlit app stops cleanly on SIGTERM, with no shutdown code from the app's author.

uvicorn serves a FastAPI app that mounts `app_example.py` at /chainlit (Starlette runs no lifespan of a
mounted app, so Chainlit never calls the layer's close()). 500 writes are waiting when SIGTERM arrives
(a lock on "Step" holds them until the app has begun to shut down): every one is stored, in each thread's
order, the process exits within Docker's 10 s grace, and the embedded PostgreSQL is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from chainlit.step import StepDict

from tests.browser.app_server import MountedApp, app_folder, postgres_processes, stop_leftover_postgres
from tests.reliability.figures import FIGURES
from tests.services import LOOPBACK, PostgresServer, postgres_bin_dir

PARENT = "tests.reliability.shutdown_app:app"
GRACE_SECONDS = 10  # docker stop's default between SIGTERM and SIGKILL
THREADS, STEPS, UPDATES = 20, 5, 4
WRITES = THREADS * STEPS * (UPDATES + 1)  # 500
RERUN = re.compile(r"\((\d+) of them run again after a cancellation\)")


@pytest.fixture(params=["postgres", "embedded"])
def app(request: pytest.FixtureRequest) -> Iterator[tuple[MountedApp, list[str]]]:
    """The app, started, and psql's arguments to reach its database."""
    root = app_folder(f"openrag-shutdown-{request.param}-")
    settings = {"CHAINLIT_AUTH_SECRET": f"shutdown-{uuid4().hex}"}
    psql = ["-h", str(root / ".chainlit" / "pgdata"), "-d", "postgres"]
    if request.param == "postgres":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        database = f"shutdown_{uuid4().hex}"
        settings.update(DATABASE_URL=postgres.create_database(database), DATABASE_AUTO_MIGRATE="true")
        request.addfinalizer(lambda: postgres.drop_database(database))
        psql = ["-h", LOOPBACK, "-p", str(postgres.port), "-d", database]
    app = MountedApp(root, settings, ("alice", "alice-password"), parent=PARENT)
    try:
        app.start()
        yield app, psql
    finally:
        app.stop()
        stop_leftover_postgres(root / ".chainlit" / "pgdata")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def steps_locked(psql_arguments: list[str]) -> Iterator[Callable[[], None]]:
    """Hold a lock on "Step" that makes writes wait (reads pass) until the yielded release() is called."""
    command = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-t", "-A", "-U", "postgres", *psql_arguments]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as psql:
        assert psql.stdin is not None and psql.stdout is not None
        psql.stdin.write("BEGIN; LOCK TABLE \"Step\" IN EXCLUSIVE MODE; SELECT 'locked';\n")
        psql.stdin.flush()
        assert psql.stdout.readline().strip() == "locked"

        def release() -> None:
            assert psql.stdin is not None
            if not psql.stdin.closed:
                psql.stdin.write("ROLLBACK;\n")
                psql.stdin.close()

        try:
            yield release
        finally:
            release()


def test_sigterm_stores_every_pending_write_and_stops_everything(
    app: tuple[MountedApp, list[str]], request: pytest.FixtureRequest
) -> None:
    """SIGTERM with 500 fire-and-forget writes pending: all stored in order, prompt exit, no server left."""
    server, psql_arguments = app
    threads = [str(uuid4()) for _ in range(THREADS)]
    query: dict[str, list[str] | int] = {"threads": threads, "steps": STEPS, "updates": UPDATES}
    with steps_locked(psql_arguments) as release:
        fired = httpx.post(f"{server.origin}/burst", params=query, timeout=60)
        assert fired.json() == {"fired": WRITES}
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("Server stopping: finishing pending writes")
        release()
        assert server.wait(GRACE_SECONDS) == -signal.SIGTERM, server.log_tail()
    seconds = time.monotonic() - signalled
    assert f"Shutting down: {WRITES} pending writes finished" in server.log_path.read_text(), (
        server.log_tail()
    )
    pgdata = server.root / ".chainlit" / "pgdata"
    assert postgres_processes(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()

    server.start()
    stored = httpx.get(f"{server.origin}/stored", params={"threads": threads}, timeout=60).json()
    assert stored == {f"{thread}-{number}": str(UPDATES) for thread in threads for number in range(STEPS)}
    FIGURES.shutdowns.append((request.node.callspec.id, WRITES, seconds))


def test_writes_cut_short_by_the_end_of_asyncio_run_are_stored(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without uvicorn, the end of asyncio.run (which cancels every task) finishes the layer's writes."""
    from chainlit.context import init_http_context

    from chainlit_openrag_datalayer import OpenRAGDataLayer
    from chainlit_openrag_datalayer.migrations import upgrade_async
    from tests.reliability.conftest import layer_settings

    thread_id = str(uuid4())
    settings = layer_settings(database_url, tmp_path / "files")

    async def fire_and_return() -> None:
        await upgrade_async(database_url)
        init_http_context()
        layer = OpenRAGDataLayer(settings)
        await layer.get_user("nobody")  # opens the pool, as a login does
        fired = []
        for number in range(STEPS * 10):
            step_id = f"{thread_id}-{number}"
            fired.append(asyncio.ensure_future(layer.create_step(_message(thread_id, step_id, "0"))))
            fired.append(asyncio.ensure_future(layer.update_step(_message(thread_id, step_id, "1"))))
        await asyncio.sleep(0)  # every write starts; the return leaves them pending

    async def read_back() -> dict[str, str]:
        layer = OpenRAGDataLayer(settings)
        try:
            thread = await layer.get_thread(thread_id)
        finally:
            await layer.close()
        assert thread is not None
        return {step["id"]: step["output"] for step in thread["steps"]}

    caplog.set_level(logging.INFO, logger="chainlit_openrag_datalayer")
    asyncio.run(fire_and_return())
    rerun = RERUN.findall(caplog.text)
    assert rerun and int(rerun[-1]) > 0, caplog.text
    assert asyncio.run(read_back()) == {f"{thread_id}-{number}": "1" for number in range(STEPS * 10)}


def _message(thread_id: str, step_id: str, output: str) -> StepDict:
    return {"id": step_id, "threadId": thread_id, "type": "assistant_message", "output": output}
