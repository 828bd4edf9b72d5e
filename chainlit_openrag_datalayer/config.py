"""Settings: the one reader of the environment, with validation that names the variable."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote

from sqlalchemy.engine import URL

from .errors import ConfigurationError
from .normalise import normalised_key

_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_RAW_ONLY = set("@/?#")


@dataclass(frozen=True)
class S3Settings:
    """Where element files go: an S3 bucket, on AWS or any S3-compatible endpoint."""

    bucket: str
    region: str
    access_key: str | None = None
    secret_key: str | None = None
    endpoint_url: str | None = None
    public_endpoint_url: str | None = None


UrlMode = Literal["presigned", "served"]
URL_MODES: tuple[UrlMode, ...] = ("presigned", "served")


@dataclass(frozen=True)
class Settings:
    """Everything the data layer needs, validated at construction.

    ``database_url=None`` means the embedded PostgreSQL in ``embedded_dir``; ``s3=None`` means
    element files in ``local_storage_dir``, always handed out through served URLs.
    """

    database_url: URL | None = None
    s3: S3Settings | None = None
    url_mode: UrlMode | None = None
    url_expiry_seconds: int = 3600
    url_secret: str | None = None
    pool_size: int = 20
    embedded_dir: Path = Path(".chainlit/pgdata")
    local_storage_dir: Path = Path(".chainlit/element-files")
    auto_migrate: bool = False
    write_retry_seconds: float = 300.0
    max_pending_writes: int = 10_000
    max_pending_write_bytes: int = 128 * 2**20
    redact_keys: frozenset[str] = frozenset()  # names kept out of storage besides the built-in rule
    identity_path: tuple[str, ...] = ("extra", "id")  # empty: the identity guard is off

    def __post_init__(self) -> None:
        if self.url_expiry_seconds <= 0:
            raise ConfigurationError("STORAGE_EXPIRY_TIME must be a positive number of seconds.")
        if self.pool_size <= 0:
            raise ConfigurationError("DATABASE_POOL_SIZE must be a positive integer.")
        if self.write_retry_seconds < 0 or self.max_pending_writes <= 0:
            raise ConfigurationError(
                "WRITE_RETRY_SECONDS must be >= 0 and MAX_PENDING_WRITES a positive integer."
            )
        if self.max_pending_write_bytes <= 0:
            raise ConfigurationError("MAX_PENDING_WRITE_MB must be a positive number of MiB.")
        if self.url_mode is not None and self.url_mode not in URL_MODES:
            raise ConfigurationError(f"STORAGE_URL_MODE must be one of {', '.join(URL_MODES)}.")
        if self.s3 is None and self.url_mode == "presigned":
            raise ConfigurationError(
                "STORAGE_URL_MODE=presigned needs an S3 bucket: "
                "set BUCKET_NAME, or use STORAGE_URL_MODE=served."
            )

    @property
    def served_urls(self) -> bool:
        """Element URLs point at this app's own route (always for a local folder)."""
        return self.s3 is None or self.url_mode == "served"

    def require_database_url(self) -> URL:
        """The configured server, for commands that never start the embedded one."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set: set it to the PostgreSQL server this command should work on."
            )
        return self.database_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str], base_dir: Path | None = None) -> Settings:
        """Read OpenRAG's variable names (see the README's configuration table).

        Relative folders are resolved against ``base_dir``, by default the current directory (the app's,
        when the app calls this; ``doctor --app-dir`` passes the app's from elsewhere).
        """
        base = Path.cwd() if base_dir is None else base_dir.absolute()
        raw_url = _get(environ, "DATABASE_URL")
        return cls(
            database_url=None if raw_url is None else parse_database_url(raw_url),
            s3=_s3_from_env(environ),
            url_mode=_get(environ, "STORAGE_URL_MODE"),  # type: ignore[arg-type]  # checked in __post_init__
            url_expiry_seconds=_int(environ, "STORAGE_EXPIRY_TIME", 3600),
            url_secret=_get(environ, "CHAINLIT_AUTH_SECRET"),
            pool_size=_int(environ, "DATABASE_POOL_SIZE", 20),
            embedded_dir=base / (_get(environ, "EMBEDDED_POSTGRES_DIR") or cls.embedded_dir),
            local_storage_dir=base / (_get(environ, "LOCAL_STORAGE_DIR") or cls.local_storage_dir),
            auto_migrate=_bool(environ, "DATABASE_AUTO_MIGRATE"),
            write_retry_seconds=_int(environ, "WRITE_RETRY_SECONDS", 300),
            max_pending_writes=_int(environ, "MAX_PENDING_WRITES", 10_000),
            max_pending_write_bytes=_int(environ, "MAX_PENDING_WRITE_MB", 128) * 2**20,
            redact_keys=_key_set(environ, "REDACT_METADATA_KEYS"),
            identity_path=_identity_path(environ),
        )


def parse_database_url(raw: str) -> URL:
    """Turn ``postgresql://user:pw@host:5432/db`` into an asyncpg URL.

    The password may be percent-encoded (recommended) or raw, even with ``@:/?#%`` in it: the
    user info ends at the last ``@``. ``sslmode=`` becomes asyncpg's ``ssl=``.
    """
    scheme, sep, rest = raw.strip().partition("://")
    if not sep or scheme not in _SCHEMES:
        raise ConfigurationError(
            f"DATABASE_URL must start with postgresql:// (got {scheme + sep or raw[:20]!r}...)."
        )
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart = rest
    location, _, query_string = hostpart.partition("?")
    hostport, _, database = location.partition("/")
    host, port = _split_host_port(hostport)
    username, _, password = userinfo.partition(":")
    query = dict(parse_qsl(query_string))
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return URL.create(
        "postgresql+asyncpg",
        username=_decode_userinfo(username) or None,
        password=_decode_userinfo(password) if password else None,
        host=host or None,
        port=port,
        database=unquote(database) or None,
        query=query,
    )


def _split_host_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):  # IPv6 literal: [::1]:5432
        host, _, tail = hostport[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        raise ConfigurationError(f"DATABASE_URL has a malformed port {port!r}.")
    return host, int(port) if port else None


def _decode_userinfo(value: str) -> str:
    """Percent-decode, unless the value is visibly raw (has ``@/?#`` or a stray ``%``)."""
    if _RAW_ONLY & set(value):
        return value
    if "%" in value and len(_PERCENT_ESCAPE.findall(value)) != value.count("%"):
        return value
    return unquote(value)


def _s3_from_env(environ: Mapping[str, str]) -> S3Settings | None:
    bucket = _get(environ, "BUCKET_NAME")
    access_key = _get(environ, "APP_AWS_ACCESS_KEY")
    secret_key = _get(environ, "APP_AWS_SECRET_KEY")
    endpoint = _get(environ, "DEV_AWS_ENDPOINT")
    if (access_key is None) != (secret_key is None):
        raise ConfigurationError(
            "APP_AWS_ACCESS_KEY and APP_AWS_SECRET_KEY must be set together (only one is set)."
        )
    if bucket is None:
        if access_key or endpoint or _get(environ, "APP_AWS_PUBLIC_ENDPOINT"):
            raise ConfigurationError(
                "BUCKET_NAME is not set but S3 credentials or DEV_AWS_ENDPOINT are: "
                "set BUCKET_NAME to the bucket that holds element files."
            )
        return None
    return S3Settings(
        bucket=bucket,
        region=_get(environ, "APP_AWS_REGION") or "us-east-1",
        access_key=access_key,
        secret_key=secret_key,
        endpoint_url=endpoint,
        public_endpoint_url=_get(environ, "APP_AWS_PUBLIC_ENDPOINT"),
    )


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _get(environ, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer (got {value!r}).") from None


def _bool(environ: Mapping[str, str], name: str) -> bool:
    value = (_get(environ, name) or "false").lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigurationError(f"{name} must be true or false (got {value!r}).")
    return value in ("1", "true", "yes")


def _key_set(environ: Mapping[str, str], name: str) -> frozenset[str]:
    """Comma-separated names in normalised form (``sessionId``, ``session-id`` -> ``session_id``)."""
    keys = (normalised_key(key) for key in environ.get(name, "").split(","))
    return frozenset(key for key in keys if key)


def _identity_path(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``IDENTITY_GUARD_PATH``: a dotted path into the user's metadata (``extra.id``), or ``off``."""
    value = _get(environ, "IDENTITY_GUARD_PATH")
    if value is None:
        return Settings.identity_path
    if value.lower() in ("off", "none", "false", "0"):
        return ()
    path = tuple(value.split("."))
    if not all(part.strip() == part and part for part in path):
        raise ConfigurationError(
            f"IDENTITY_GUARD_PATH must be a dotted path into the user's metadata, like extra.id, or off "
            f"(got {value!r})."
        )
    return path
