"""One way to connect: ``DATABASE_URL`` checked once, every connection of the package opened by ``Connector``.

The runtime pool (asyncpg), start-up migrations, the schema check, ``upgrade`` and the CLI (SQLAlchemy
over asyncpg) all open their connections with ``Connector.connect``: the same hosts, TLS files,
timeouts and application arguments on every path.

``DATABASE_URL`` is read with libpq's URL rules as asyncpg implements them (asyncpg parses it; this
module only refuses what asyncpg would misread): user name and password are percent-decoded, so
``@ : / ? # %`` in a password are written ``%40 %3A %2F %3F %23 %25``; several hosts are tried in order
(``host1:5432,host2:5432``, with ``target_session_attrs``); ``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey``... configure TLS; any other parameter (``application_name``, ``options``...) is sent to the
server as a setting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .errors import ConfigurationError

APPLICATION_NAME = "chainlit-openrag-datalayer"
_SCHEMES = ("postgresql", "postgres")
_DRIVERS = ("", "+asyncpg", "+psycopg", "+psycopg2")
# RFC 3986: authority, path, query, fragment.
_URL = re.compile(
    r"(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?", re.DOTALL
)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NOT_FOR_ASYNCPG = "is a libpq option asyncpg does not implement: remove it from DATABASE_URL"
_POOLER_DETECTED = (
    "is not needed: a transaction-mode pooler such as PgBouncer is detected and prepared statements are "
    "turned off by themselves (README: Production database); remove it from DATABASE_URL"
)
# Query parameters asyncpg would send to PostgreSQL as settings, which the server then refuses.
_REFUSED_PARAMETERS = {
    "ssl": "is SQLAlchemy's spelling: write sslmode=disable|allow|prefer|require|verify-ca|verify-full",
    "connect_timeout": "is DATABASE_CONNECT_TIMEOUT here (seconds, per host): remove it from DATABASE_URL",
    "statement_cache_size": _POOLER_DETECTED,
    "prepared_statement_cache_size": _POOLER_DETECTED,
    **dict.fromkeys(
        (
            "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
            "hostaddr", "gssencmode", "sslsni", "sslcompression", "channel_binding", "require_auth",
            "requirepeer", "load_balance_hosts", "replication", "fallback_application_name",
        ),
        _NOT_FOR_ASYNCPG,
    ),
}  # fmt: skip
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
# asyncpg.connect() arguments an application may pass (the rest come from DATABASE_URL and the settings).
APP_CONNECT_ARGUMENTS = frozenset(
    {
        "user", "password", "passfile", "database", "ssl", "direct_tls", "server_settings",
        "target_session_attrs", "krbsrvname", "gsslib", "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
    }
)  # fmt: skip
_ENCODING_HINT = (
    "percent-encode the user name and password: @ : / ? # % are %40 %3A %2F %3F %23 %25 "
    "(README: DATABASE_URL)"
)
_DBAPI = PGDialect_asyncpg.import_dbapi()  # type: ignore[no-untyped-call]
# What makes libpq try the next host: no answer, a refusal, a server starting or full, the wrong role.
_NEXT_HOST_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.TargetServerAttributeNotMatched,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


@dataclass(frozen=True)
class DatabaseUrl:
    """``DATABASE_URL`` once checked: asyncpg connects with ``dsn``; ``display`` is safe to log."""

    dsn: str
    display: str
    hosts: tuple[tuple[str, int | None], ...]
    names_application: bool = False
    target_session_attrs: str | None = None

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.display!r})"


def parse_database_url(raw: str) -> DatabaseUrl:
    """Check ``postgresql://user:password@host:5432/db?sslmode=...``; errors never echo the password."""
    scheme, separator, rest = raw.strip().partition("://")
    if not separator or scheme.lower() not in {s + d for s in _SCHEMES for d in _DRIVERS}:
        raise ConfigurationError(
            f"DATABASE_URL must start with postgresql:// (got {scheme[:20] + separator!r}...)."
        )
    parts = _URL.fullmatch(rest)
    assert parts is not None, "every string matches the RFC 3986 pattern"
    authority, path, query_string = parts["authority"], parts["path"] or "", parts["query"] or ""
    userinfo, has_userinfo, hostspec = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    # A raw '@', '/', '?' or '#' in a password leaves an '@' after the host, or a fragment.
    if parts["fragment"] is not None:
        raise ConfigurationError(f"DATABASE_URL contains '#': {_ENCODING_HINT}.")
    if "@" in userinfo or "@" in path or (not has_userinfo and "@" in query_string):
        raise ConfigurationError(f"DATABASE_URL has an '@' after the host, or two: {_ENCODING_HINT}.")
    if any(_BAD_ESCAPE.search(value) for value in (user, password, path)):
        raise ConfigurationError(f"DATABASE_URL has a '%' that starts no %XX escape: {_ENCODING_HINT}.")
    query = _query(query_string)
    hosts = _hosts(hostspec) or _hosts(query.get("host", ""), query.get("port"))
    shown_query = "&".join(f"{k}={'***' if k in _SECRET_PARAMETERS else v}" for k, v in query.items())
    shown_user = f"{user}{':***' if password else ''}{'@' if has_userinfo else ''}"
    shown_path = f"{path}{'?' if query else ''}{shown_query}"
    return DatabaseUrl(
        dsn=f"postgresql://{rest}",
        display=f"postgresql://{shown_user}{hostspec}{shown_path}",
        hosts=hosts,
        names_application="application_name" in query,
        target_session_attrs=query.get("target_session_attrs"),
    )


def _query(query_string: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=bool(query_string))
    except ValueError:
        raise ConfigurationError(
            f"DATABASE_URL has a query parameter without '=': {_ENCODING_HINT}."
        ) from None
    query = dict(pairs)
    for key in query:
        if key in _REFUSED_PARAMETERS:
            raise ConfigurationError(f"DATABASE_URL parameter {key}= {_REFUSED_PARAMETERS[key]}.")
    return query


def _hosts(hostspec: str, default_ports: str | None = None) -> tuple[tuple[str, int | None], ...]:
    """``h1:5432,[::1]:5433,h3`` as (host, port) pairs; ports checked, hosts left for asyncpg."""
    ports = (default_ports or "").split(",")
    hosts = []
    for index, spec in enumerate(hostspec.split(",") if hostspec else []):
        if spec.startswith("["):  # an IPv6 literal: [::1]:5432
            host, _, port = spec[1:].partition("]")
            port = port.removeprefix(":")
        elif spec.startswith("/"):  # a socket directory, from ?host=
            host, port = spec, ""
        else:
            host, _, port = spec.partition(":")
        port = port or (ports[index] if index < len(ports) else ports[-1])
        if port and not port.isdigit():
            raise ConfigurationError(f"DATABASE_URL has a port that is not a number: {_ENCODING_HINT}.")
        hosts.append((unquote(host), int(port) if port else None))
    return tuple(hosts)


def check_connect_args(arguments: Mapping[str, Any]) -> None:
    """Refuse application arguments that DATABASE_URL or the settings own."""
    unknown = set(arguments) - APP_CONNECT_ARGUMENTS
    if unknown:
        raise ConfigurationError(
            f"connect_args cannot set {', '.join(sorted(unknown))}: hosts and ports come from DATABASE_URL, "
            "timeouts from DATABASE_CONNECT_TIMEOUT and DATABASE_STATEMENT_TIMEOUT. Allowed: "
            f"{', '.join(sorted(APP_CONNECT_ARGUMENTS))}."
        )


@dataclass(frozen=True)
class Connector:
    """Opens every connection of the package: one URL, one set of timeouts, the application's arguments.

    ``statement_timeout`` is enforced by the client (asyncpg's ``command_timeout``): a statement that
    runs longer is cancelled on the server and fails with ``TimeoutError``. It works through PgBouncer,
    which refuses ``statement_timeout`` as a start-up parameter.
    """

    url: DatabaseUrl
    connect_timeout: float = 10.0
    statement_timeout: float = 10.0
    connect_args: Mapping[str, Any] = field(default_factory=dict)

    def with_statement_timeout(self, seconds: float) -> Connector:
        return replace(self, statement_timeout=seconds)

    async def connect(self, *, prepared_statements: bool = True) -> asyncpg.Connection:
        """A new connection: each host in turn (``connect_timeout`` each), as libpq does.

        Without ``prepared_statements`` every statement is sent unnamed, which transaction-mode poolers
        (PgBouncer before 1.21) require.
        """
        arguments = self._arguments(prepared_statements)
        if len(self.url.hosts) < 2:
            return await asyncpg.connect(self.url.dsn, **arguments)
        return await self._first_usable_host(arguments)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection for a few statements (checks, probes), closed afterwards."""
        connection = await self.connect(prepared_statements=False)
        try:
            yield connection
        finally:
            await connection.close(timeout=self.connect_timeout)

    async def _first_usable_host(self, arguments: dict[str, Any]) -> asyncpg.Connection:
        wanted = arguments.get("target_session_attrs") or self.url.target_session_attrs
        # One host at a time, so that a host that never answers costs one connect_timeout, not the budget
        # of every host; prefer-standby looks for a standby on every host before taking any.
        rounds = ("standby", "any") if wanted == "prefer-standby" else (wanted,)
        error: BaseException | None = None
        for session_attrs in rounds:
            attempt = {**arguments, "target_session_attrs": session_attrs} if session_attrs else arguments
            for host, port in self.url.hosts:
                try:
                    return await asyncpg.connect(self.url.dsn, host=host, port=port, **attempt)
                except _NEXT_HOST_ERRORS as failed:
                    error = failed
        assert error is not None
        raise error

    def _arguments(self, prepared_statements: bool) -> dict[str, Any]:
        server_settings = {} if self.url.names_application else {"application_name": APPLICATION_NAME}
        server_settings.update(self.connect_args.get("server_settings") or {})
        return {
            **self.connect_args,
            "timeout": self.connect_timeout,
            "command_timeout": self.statement_timeout,
            "statement_cache_size": 100 if prepared_statements else 0,
            "server_settings": server_settings,
        }

    async def create_pool(
        self, *, max_size: int, prepared_statements: bool, **pool_arguments: Any
    ) -> asyncpg.Pool:
        """An asyncpg pool whose connections come from ``connect``."""

        async def connect(*_: Any, **__: Any) -> asyncpg.Connection:  # the pool's dsn, loop, classes
            return await self.connect(prepared_statements=prepared_statements)

        return await asyncpg.create_pool(connect=connect, min_size=1, max_size=max_size, **pool_arguments)

    def engine(self, pool_size: int = 1) -> AsyncEngine:
        """A SQLAlchemy engine over ``connect``, with unnamed statements (safe behind any pooler)."""

        def creator() -> Any:
            # What create_async_engine(async_creator=...) does, plus the dialect's statement options.
            return _DBAPI.connect(
                async_creator_fn=lambda: self.connect(prepared_statements=False),
                prepared_statement_cache_size=0,
                prepared_statement_name_func=lambda: "",
            )

        return create_async_engine("postgresql+asyncpg://", creator=creator, pool_size=pool_size)


async def behind_pooler(connection: asyncpg.Connection) -> bool:
    """True when a pooler sits between us and PostgreSQL.

    PostgreSQL announces its backend's process id when a session starts; poolers such as PgBouncer
    announce one of their own, since a client's statements may run on any server connection.
    """
    backend_pid = await connection.fetchval("SELECT pg_backend_pid()")
    return bool(connection.get_server_pid() != backend_pid)
