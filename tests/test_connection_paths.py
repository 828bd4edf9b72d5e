"""Several hosts (libpq's failover), application_name and target_session_attrs, on every connection path."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.connection import APPLICATION_NAME
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.secure_postgres import SecurePostgres
from tests.services import LOOPBACK, PostgresServer, free_port, silent_listener


def hosts_url(database: str, *ports: int, **query: str) -> str:
    hosts = ",".join(f"{LOOPBACK}:{port}" for port in ports)
    parameters = "&".join(f"{key}={value}" for key, value in query.items())
    return f"postgresql://postgres@{hosts}/{database}" + (f"?{parameters}" if parameters else "")


def name_of(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


async def server_port(settings: Settings) -> tuple[int, int]:
    """The port of the server the asyncpg path and the SQLAlchemy path each reached."""
    connector = settings.connector()
    async with connector.connection() as connection:
        direct = await connection.fetchval("SELECT inet_server_port()")
    engine = connector.engine()
    try:
        async with engine.connect() as connection:
            through_engine = await connection.scalar(text("SELECT inet_server_port()"))
    finally:
        await engine.dispose()
    return int(direct), int(through_engine)


async def test_a_first_host_that_refuses_is_skipped(
    postgres_server: PostgresServer, database_url: str, chainlit_context: None
) -> None:
    """``host1:down,host2:up``: migrations, the start-up check and the pool use the second host."""
    url = hosts_url(
        name_of(database_url), free_port(), postgres_server.port, target_session_attrs="read-write"
    )
    await upgrade_async(url)
    layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    try:
        assert await layer.get_user("nobody") is None
    finally:
        await layer.close()


async def test_a_first_host_that_never_answers_costs_one_connect_timeout(
    postgres_server: PostgresServer, database_url: str, chainlit_context: None
) -> None:
    """A host whose packets vanish is given up after DATABASE_CONNECT_TIMEOUT, and the next one is used
    (the timeout applies to each host, as in libpq, not to all of them together)."""
    await upgrade_async(database_url)
    with silent_listener() as silent:
        url = hosts_url(name_of(database_url), silent, postgres_server.port)
        layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url, "DATABASE_CONNECT_TIMEOUT": "1"})
        try:
            assert await layer.get_user("nobody") is None
        finally:
            await layer.close()


async def test_target_session_attrs_picks_the_server_that_fits(
    postgres_server: PostgresServer, secure_postgres: SecurePostgres, database_url: str
) -> None:
    """A read-only server first: ``read-write`` skips it, ``read-only`` takes it, on both paths."""
    name = name_of(database_url)
    read_only = secure_postgres.server
    read_only.create_database(name)
    admin = await asyncpg.connect(read_only.url("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    for wanted, expected in (("read-write", postgres_server.port), ("read-only", read_only.port)):
        url = hosts_url(name, read_only.port, postgres_server.port, target_session_attrs=wanted)
        assert await server_port(Settings.from_env({"DATABASE_URL": url})) == (expected, expected)


async def test_sessions_carry_an_application_name(
    postgres_server: PostgresServer, database_url: str, chainlit_context: None
) -> None:
    """Sessions show as chainlit-openrag-datalayer in pg_stat_activity, or as the URL's application_name."""
    await upgrade_async(database_url)
    for url, expected in (
        (database_url, APPLICATION_NAME),
        (f"{database_url}?application_name=openrag-chat", "openrag-chat"),
    ):
        layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url})
        try:
            await layer.get_user("nobody")
            names = await application_names(postgres_server, name_of(database_url))
        finally:
            await layer.close()
        assert names == {expected}


async def application_names(server: PostgresServer, database: str) -> set[str]:
    admin = await asyncpg.connect(server.url("postgres"))
    try:
        rows = await admin.fetch("SELECT application_name FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await admin.close()
    return {row["application_name"] for row in rows}


async def test_without_a_standby_standby_is_refused(
    postgres_server: PostgresServer, database_url: str
) -> None:
    """No host is a standby: ``target_session_attrs=standby`` fails after trying each."""
    url = hosts_url(name_of(database_url), free_port(), postgres_server.port, target_session_attrs="standby")
    with pytest.raises(asyncpg.TargetServerAttributeNotMatched):
        await Settings.from_env({"DATABASE_URL": url}).connector().connect()


async def test_without_a_standby_prefer_standby_takes_a_primary(
    postgres_server: PostgresServer, database_url: str
) -> None:
    """``prefer-standby`` looks for a standby on every host, then takes the first that answers."""
    url = hosts_url(
        name_of(database_url), free_port(), postgres_server.port, target_session_attrs="prefer-standby"
    )
    async with Settings.from_env({"DATABASE_URL": url}).connector().connection() as connection:
        assert await connection.fetchval("SELECT inet_server_port()") == postgres_server.port
