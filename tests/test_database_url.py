"""DATABASE_URL: libpq's URL rules as asyncpg reads them, for every path; errors that say the fix."""

from __future__ import annotations

from urllib.parse import quote
from uuid import uuid4

import asyncpg
import pytest

from chainlit_openrag_datalayer import (
    ConfigurationError,
    DatabaseUnavailableError,
    OpenRAGDataLayer,
    Settings,
)
from chainlit_openrag_datalayer.connection import parse_database_url
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.secure_postgres import PASSWORD, PASSWORD_USER, SecurePostgres

ENCODED = quote(PASSWORD, safe="")


@pytest.fixture
async def password_database(secure_postgres: SecurePostgres) -> str:
    """A fresh database on the server that checks passwords."""
    name = f"url_{uuid4().hex}"
    secure_postgres.server.create_database(name)
    return name


def test_percent_encoded_password_reaches_asyncpg_decoded() -> None:
    """The user info is percent-decoded, as libpq does: the DSN asyncpg reads is the URL as written."""
    url = parse_database_url(f"postgres://chainlit:{ENCODED}@rdb:5432/chainlit?sslmode=require")
    assert url.dsn == f"postgresql://chainlit:{ENCODED}@rdb:5432/chainlit?sslmode=require"
    assert url.hosts == (("rdb", 5432),)


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://chainlit:p@ss@rdb:5432/chainlit",  # a raw '@'
        "postgresql://chainlit:pa/ss@rdb:5432/chainlit",  # a raw '/'
        "postgresql://chainlit:pa?ss@rdb:5432/chainlit",  # a raw '?'
        "postgresql://chainlit:pa#ss@rdb:5432/chainlit",  # a raw '#'
        "postgresql://chainlit:100%@rdb:5432/chainlit",  # a '%' that is no escape
        "postgresql://chainlit:secret@rdb:port/chainlit",  # not a port
    ],
)
def test_a_password_written_raw_is_refused_with_the_fix(raw: str) -> None:
    """Each URL character in a raw password is refused, naming the escapes, and never echoes the password."""
    with pytest.raises(ConfigurationError, match="%40 %3A %2F %3F %23 %25") as raised:
        parse_database_url(raw)
    assert "chainlit" not in str(raised.value)  # neither the URL nor any part of it


@pytest.mark.parametrize(
    ("parameter", "advice"),
    [
        ("ssl=require", "sslmode="),
        ("connect_timeout=5", "DATABASE_CONNECT_TIMEOUT"),
        ("statement_cache_size=0", "PgBouncer"),
        ("prepared_statement_cache_size=0", "PgBouncer"),
        ("keepalives=1", "asyncpg does not implement"),
    ],
)
def test_parameters_postgresql_would_refuse_are_refused_with_advice(parameter: str, advice: str) -> None:
    """Parameters asyncpg would send on as server settings (PostgreSQL then refuses them) fail early."""
    with pytest.raises(ConfigurationError, match=advice):
        parse_database_url(f"postgresql://u@rdb/chainlit?{parameter}")


def test_the_logged_form_hides_passwords() -> None:
    """``display`` (logs, errors) shows hosts and parameters, never the password or the key's password."""
    url = parse_database_url("postgresql://u:s3cret@h1:5432,h2:5433/db?sslpassword=k3y&application_name=x")
    assert url.display == "postgresql://u:***@h1:5432,h2:5433/db?sslpassword=***&application_name=x"
    assert url.hosts == (("h1", 5432), ("h2", 5433))
    assert "s3cret" not in repr(url)


def test_socket_directories_and_schemes() -> None:
    """The embedded server's socket URL, IPv6 literals and SQLAlchemy's scheme are understood."""
    assert parse_database_url("postgresql://postgres:@/postgres?host=/run/pg").hosts == (("/run/pg", None),)
    assert parse_database_url("postgresql+asyncpg://u@[::1]:5433/db").hosts == (("::1", 5433),)
    with pytest.raises(ConfigurationError, match="postgresql://"):
        parse_database_url("mysql://u@h/db")


async def test_a_password_with_every_url_character_logs_in_on_every_path(
    secure_postgres: SecurePostgres, password_database: str, chainlit_context: None
) -> None:
    """Percent-encoded, ``p@ss:w/rd?#%41 é`` logs in for migrations (SQLAlchemy) and the pool (asyncpg)."""
    url = secure_postgres.url(password_database, PASSWORD_USER, ENCODED)
    await upgrade_async(url)
    layer = OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    try:
        assert await layer.get_user("nobody") is None
    finally:
        await layer.close()


async def test_a_percent_escape_in_the_url_is_always_decoded(
    secure_postgres: SecurePostgres, password_database: str, chainlit_context: None
) -> None:
    """``%41`` written raw is an ``A``: the server refuses the login, and the app says where it connected."""
    url = secure_postgres.url(password_database, PASSWORD_USER, quote(PASSWORD, safe="%"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        await (await asyncpg.connect(parse_database_url(url).dsn)).close()
    with pytest.raises(DatabaseUnavailableError, match="password authentication failed") as raised:
        OpenRAGDataLayer.from_env({"DATABASE_URL": url})
    assert PASSWORD not in str(raised.value) and ":***@" in str(raised.value)


def test_application_arguments_the_settings_own_are_refused() -> None:
    """``connect_args`` may not set what DATABASE_URL or a setting owns."""
    with pytest.raises(ConfigurationError, match="host, timeout"):
        Settings.from_env({}, connect_args={"host": "elsewhere", "timeout": 1})
