"""Settings: the one reader of the environment, with validation that names the variable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .connection import Connector, DatabaseUrl, check_connect_args, parse_database_url
from .errors import ConfigurationError
from .normalise import normalised_key


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
    element files in ``local_storage_dir``, always handed out through served URLs. ``connect_args``
    are the application's own ``asyncpg.connect`` arguments (an ``ssl`` context, ``server_settings``,
    a ``password`` callable...), used on every connection.
    """

    database_url: DatabaseUrl | None = None
    s3: S3Settings | None = None
    url_mode: UrlMode | None = None
    url_expiry_seconds: int = 3600
    url_secret: str | None = None
    pool_size: int = 20
    connect_timeout: float = 10.0
    statement_timeout: float = 10.0
    cli_statement_timeout: float = 3600.0
    connect_args: Mapping[str, Any] = field(default_factory=dict)
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
        for name, seconds in (
            ("DATABASE_CONNECT_TIMEOUT", self.connect_timeout),
            ("DATABASE_STATEMENT_TIMEOUT", self.statement_timeout),
            ("CLI_STATEMENT_TIMEOUT", self.cli_statement_timeout),
        ):
            if not seconds > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds (got {seconds!r}).")
        check_connect_args(self.connect_args)
        if not self.write_retry_seconds > 0 or self.max_pending_writes <= 0:
            raise ConfigurationError(
                "WRITE_RETRY_SECONDS must be a positive number of seconds "
                "and MAX_PENDING_WRITES a positive integer."
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

    def connector(self, url: DatabaseUrl | None = None) -> Connector:
        """How the app connects: to ``url`` (the embedded server) or ``DATABASE_URL``."""
        url = url or self.database_url
        assert url is not None, "the embedded server's URL is passed when DATABASE_URL is unset"
        return Connector(url, self.connect_timeout, self.statement_timeout, self.connect_args)

    def cli_connector(self) -> Connector:
        """How commands connect: the configured server (never the embedded one), longer statements."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set: set it to the PostgreSQL server this command should work on."
            )
        return self.connector().with_statement_timeout(self.cli_statement_timeout)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        base_dir: Path | None = None,
        *,
        connect_args: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Read OpenRAG's variable names (see the README's configuration table).

        Relative folders are resolved against ``base_dir``, by default the current directory (the app's,
        when the app calls this; ``doctor --app-dir`` passes the app's from elsewhere). ``connect_args``:
        the application's own ``asyncpg.connect`` arguments (not from the environment).
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
            connect_timeout=_seconds(environ, "DATABASE_CONNECT_TIMEOUT", cls.connect_timeout),
            statement_timeout=_seconds(environ, "DATABASE_STATEMENT_TIMEOUT", cls.statement_timeout),
            cli_statement_timeout=_seconds(environ, "CLI_STATEMENT_TIMEOUT", cls.cli_statement_timeout),
            connect_args=dict(connect_args or {}),
            embedded_dir=base / (_get(environ, "EMBEDDED_POSTGRES_DIR") or cls.embedded_dir),
            local_storage_dir=base / (_get(environ, "LOCAL_STORAGE_DIR") or cls.local_storage_dir),
            auto_migrate=_bool(environ, "DATABASE_AUTO_MIGRATE"),
            write_retry_seconds=_int(environ, "WRITE_RETRY_SECONDS", 300),
            max_pending_writes=_int(environ, "MAX_PENDING_WRITES", 10_000),
            max_pending_write_bytes=_int(environ, "MAX_PENDING_WRITE_MB", 128) * 2**20,
            redact_keys=_key_set(environ, "REDACT_METADATA_KEYS"),
            identity_path=_identity_path(environ),
        )


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


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = _get(environ, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds (got {value!r}).") from None


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
