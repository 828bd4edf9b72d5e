"""Session services (PostgreSQL, moto S3), a fresh database and bucket name per test, a clean environment."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

if TYPE_CHECKING:
    from chainlit_openrag_datalayer import OpenRAGDataLayer
    from tests.cli_support import InProcessCli

from tests import services
from tests.secure_postgres import SecurePostgres, running_secure_postgres
from tests.services import (
    MotoS3Server,
    PgBouncer,
    PostgresServer,
    running_postgres,
)

# Importing chainlit creates `.chainlit/` and `.files/` under CHAINLIT_APP_ROOT (default: the cwd).
# Point it at a throwaway directory before anything imports chainlit.
_CHAINLIT_APP_ROOT = tempfile.mkdtemp(prefix="openrag-chainlit-app-")
os.environ["CHAINLIT_APP_ROOT"] = _CHAINLIT_APP_ROOT

ENVIRONMENT_KEYS_TO_CLEAR = (
    "DATABASE_URL",
    "BUCKET_NAME",
    "DEV_AWS_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "openrag: runs against OpenRAGDataLayer")
    config.addinivalue_line("markers", "builtin: runs against Chainlit's built-in ChainlitDataLayer")
    config.addinivalue_line(
        "markers", "pgbouncer: runs against OpenRAGDataLayer through PgBouncer in transaction mode"
    )
    config.addinivalue_line(
        "markers",
        "builtin_fails(reason, strict=True): the built-in ChainlitDataLayer is known to get this wrong"
        " (an xfail for the builtin parameter only; strict=False where its failure depends on timing)",
    )
    config.addinivalue_line("markers", "s3: runs against S3Storage on the moto server")
    config.addinivalue_line("markers", "local: runs against LocalStorage in a folder")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Turn `builtin_fails(reason, strict=True)` into an xfail on the builtin parameter only."""
    for item in items:
        known_failure = item.get_closest_marker("builtin_fails")
        if known_failure is not None and item.get_closest_marker("builtin") is not None:
            reason = known_failure.args[0] if known_failure.args else "known built-in layer failure"
            strict = known_failure.kwargs.get("strict", True)
            item.add_marker(pytest.mark.xfail(strict=strict, reason=f"built-in layer: {reason}"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CHAINLIT_APP_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the developer's AWS setup and data-layer variables out of every test."""
    missing = tmp_path_factory.getbasetemp() / "no-such-aws-file"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    for key in list(os.environ):
        if key in ENVIRONMENT_KEYS_TO_CLEAR or key.startswith("APP_AWS_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on a free loopback port for the whole session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the session's server: two server connections per
    database, fewer than a layer's pool opens."""
    bouncer = PgBouncer(postgres_server, server_pool=2)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def secure_postgres() -> Iterator[SecurePostgres]:
    """A second cluster for the session, configured like production: TLS, passwords, client certificates."""
    with running_secure_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 on a free loopback port; yields its endpoint URL."""
    server = MotoS3Server()
    server.start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database; dropped after the test."""
    name = f"test_{uuid4().hex}"
    url = postgres_server.create_database(name)
    yield url
    if postgres_server.pid() is not None:
        postgres_server.drop_database(name)


@pytest.fixture
def bucket_name() -> str:
    """A bucket name no test has used; the bucket itself does not exist yet."""
    return f"test-bucket-{uuid4().hex}"


@pytest.fixture
def s3_environ(s3_server: str, bucket_name: str) -> dict[str, str]:
    """The S3 variables of Settings.from_env, pointing at the moto server and this test's bucket."""
    return services.s3_environ(s3_server, bucket_name)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    """The command line run in this process: `await cli(environ, "purge", ...)` or `cli.run(...)`."""
    from tests.cli_support import InProcessCli

    return InProcessCli(monkeypatch, capsys)


@pytest.fixture
async def chainlit_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP Chainlit context, so `@queue_until_user_message` methods run at once; no global data layer."""
    import chainlit.data
    from chainlit.context import init_http_context

    monkeypatch.setattr(chainlit.data, "_data_layer", None)
    monkeypatch.setattr(chainlit.data, "_data_layer_initialized", True)
    init_http_context()


@pytest.fixture
async def openrag_layer(
    database_url: str, s3_environ: dict[str, str], chainlit_context: None
) -> AsyncIterator[OpenRAGDataLayer]:
    """OpenRAGDataLayer on a freshly upgraded database and a bucket that does not exist yet."""
    from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
    from chainlit_openrag_datalayer.migrations import upgrade_async

    await upgrade_async(database_url)
    layer = OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": database_url, **s3_environ}))
    yield layer
    await layer.close()


@pytest.fixture
async def pgbouncer_layer(
    pgbouncer: PgBouncer, database_url: str, s3_environ: dict[str, str], chainlit_context: None
) -> AsyncIterator[OpenRAGDataLayer]:
    """OpenRAGDataLayer through PgBouncer, migrated and checked through it too."""
    from chainlit_openrag_datalayer import OpenRAGDataLayer
    from chainlit_openrag_datalayer.migrations import upgrade_async

    url = pgbouncer.url(database_url)
    await upgrade_async(url)
    layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url, **s3_environ})
    yield layer
    await layer.close()
