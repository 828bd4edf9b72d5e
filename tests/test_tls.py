"""TLS up to verify-full, client certificates and an application's own SSL context, on every path.

Against a real server with a CA made for the test (``tests/secure_postgres.py``): migrations
(SQLAlchemy), the start-up check and the pool (asyncpg), and the CLI all connect the same way.
"""

from __future__ import annotations

import ssl
from uuid import uuid4

import asyncpg
import pytest
from chainlit.user import User

from chainlit_openrag_datalayer import DatabaseUnavailableError, OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.cli_support import run_cli
from tests.secure_postgres import CERT_USER, SecurePostgres


@pytest.fixture
async def tls_database(secure_postgres: SecurePostgres) -> str:
    name = f"tls_{uuid4().hex}"
    secure_postgres.server.create_database(name)
    return name


async def other_sessions(secure: SecurePostgres, database: str) -> list[asyncpg.Record]:
    """TLS use and application name of every session on ``database`` (the layer's pool)."""
    connection = await asyncpg.connect(secure.server.url("postgres"), ssl=False)
    try:
        return list(
            await connection.fetch(
                "SELECT s.ssl, a.application_name FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                "WHERE a.datname = $1",
                database,
            )
        )
    finally:
        await connection.close()


def verify_full(secure: SecurePostgres, database: str, ca: str, **query: str) -> str:
    return secure.url(database, sslmode="verify-full", sslrootcert=ca, **query)


async def test_verify_full_with_the_right_ca_connects_on_every_path(
    secure_postgres: SecurePostgres, tls_database: str, chainlit_context: None
) -> None:
    """Migrations, the start-up check and every pooled connection use verified TLS."""
    url = verify_full(secure_postgres, tls_database, str(secure_postgres.ca_file))
    await upgrade_async(url)
    layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    try:
        await layer.create_user(User(identifier="alice"))
        sessions = await other_sessions(secure_postgres, tls_database)
    finally:
        await layer.close()
    assert sessions and all(session["ssl"] for session in sessions)


async def test_verify_full_with_another_ca_is_refused_on_every_path(
    secure_postgres: SecurePostgres, tls_database: str, chainlit_context: None
) -> None:
    """A server certificate the configured CA did not sign is refused: migrations, factory and pool."""
    url = verify_full(secure_postgres, tls_database, str(secure_postgres.wrong_ca_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        await upgrade_async(url)
    with pytest.raises(DatabaseUnavailableError, match="certificate verify failed"):
        OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    layer = OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": url}))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await layer.get_user("alice")
    finally:
        await layer.close()


async def test_a_client_certificate_logs_in_where_the_server_requires_one(
    secure_postgres: SecurePostgres, tls_database: str, chainlit_context: None
) -> None:
    """``sslcert``/``sslkey`` authenticate a role that may log in with a certificate only."""
    ca = str(secure_postgres.ca_file)
    cert, key = str(secure_postgres.client_cert), str(secure_postgres.client_key)
    without = secure_postgres.url(tls_database, CERT_USER, sslmode="verify-full", sslrootcert=ca)
    with pytest.raises(DatabaseUnavailableError, match="requires a valid client certificate"):
        OpenRAGDataLayer.from_env({"DATABASE_URL": without})
    url = secure_postgres.url(
        tls_database, CERT_USER, sslmode="verify-full", sslrootcert=ca, sslcert=cert, sslkey=key
    )
    await upgrade_async(url)
    layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    try:
        assert await layer.create_user(User(identifier="bob")) is not None
    finally:
        await layer.close()


async def test_an_application_ssl_context_and_settings_apply_on_every_path(
    secure_postgres: SecurePostgres, tls_database: str, chainlit_context: None
) -> None:
    """``connect_args``: the app's SSL context (its CA, checked) and server settings, migrations included."""
    url = secure_postgres.url(tls_database)
    environ = {"DATABASE_URL": url, "DATABASE_AUTO_MIGRATE": "true"}
    wrong = ssl.create_default_context(cafile=str(secure_postgres.wrong_ca_file))
    with pytest.raises(DatabaseUnavailableError, match="certificate verify failed"):
        OpenRAGDataLayer.from_env(environ, connect_args={"ssl": wrong})
    context = ssl.create_default_context(cafile=str(secure_postgres.ca_file))
    settings = {"application_name": "openrag-chat"}
    layer = OpenRAGDataLayer.from_env(environ, connect_args={"ssl": context, "server_settings": settings})
    try:
        assert await layer.get_user("nobody") is None
        sessions = await other_sessions(secure_postgres, tls_database)
    finally:
        await layer.close()
    assert sessions and all(s["ssl"] and s["application_name"] == "openrag-chat" for s in sessions)


async def test_commands_verify_the_server_too(secure_postgres: SecurePostgres, tls_database: str) -> None:
    """The CLI connects with the same rules: the right CA works, another one is refused, exit code 1."""
    good = verify_full(secure_postgres, tls_database, str(secure_postgres.ca_file))
    assert run_cli({"DATABASE_URL": good}, "upgrade").returncode == 0
    assert run_cli({"DATABASE_URL": good}, "current").returncode == 0
    refused = run_cli(
        {"DATABASE_URL": verify_full(secure_postgres, tls_database, str(secure_postgres.wrong_ca_file))},
        "current",
    )
    assert refused.returncode == 1
    assert "certificate verify failed" in refused.stderr and "Traceback" not in refused.stderr
