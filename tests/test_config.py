"""Settings.from_env: OpenRAG's variable names, defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainlit_openrag_datalayer import ConfigurationError, Settings

S3 = {
    "BUCKET_NAME": "files",
    "APP_AWS_ACCESS_KEY": "ak",
    "APP_AWS_SECRET_KEY": "sk",
    "APP_AWS_REGION": "eu-west-3",
}


def test_openrag_environment_is_read() -> None:
    """The variables an OpenRAG .env already holds configure database and S3."""
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://u:p@rdb:5432/chainlit", "DEV_AWS_ENDPOINT": "http://minio:9000", **S3}
    )
    assert settings.s3 is not None
    assert (settings.s3.bucket, settings.s3.region, settings.s3.endpoint_url) == (
        "files",
        "eu-west-3",
        "http://minio:9000",
    )
    assert (settings.served_urls, settings.url_expiry_seconds) == (False, 3600)


def test_timeouts_are_read_in_seconds() -> None:
    """The three timeouts take decimal seconds; the defaults are 10, 10 and 3600."""
    assert (Settings.from_env({}).connect_timeout, Settings.from_env({}).cli_statement_timeout) == (10, 3600)
    settings = Settings.from_env({"DATABASE_CONNECT_TIMEOUT": "2.5", "DATABASE_STATEMENT_TIMEOUT": "30"})
    assert (settings.connect_timeout, settings.statement_timeout) == (2.5, 30)


def test_nothing_set_means_the_development_defaults() -> None:
    """No DATABASE_URL: embedded PostgreSQL; no bucket: local folder with served URLs."""
    settings = Settings.from_env({})
    assert settings.database_url is None and settings.s3 is None and settings.served_urls
    assert settings.embedded_dir == Path(".chainlit/pgdata").absolute()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h:port/db"}, "DATABASE_URL"),
        ({"BUCKET_NAME": "b", "APP_AWS_ACCESS_KEY": "ak"}, "APP_AWS_SECRET_KEY"),
        ({"APP_AWS_ACCESS_KEY": "ak", "APP_AWS_SECRET_KEY": "sk"}, "BUCKET_NAME"),
        ({"DEV_AWS_ENDPOINT": "http://minio:9000"}, "BUCKET_NAME"),
        ({"STORAGE_EXPIRY_TIME": "soon"}, "STORAGE_EXPIRY_TIME"),
        ({"STORAGE_EXPIRY_TIME": "0"}, "STORAGE_EXPIRY_TIME"),
        ({"STORAGE_URL_MODE": "presigned"}, "BUCKET_NAME"),
        ({"STORAGE_URL_MODE": "cdn", **S3}, "STORAGE_URL_MODE"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
        ({"DATABASE_AUTO_MIGRATE": "perhaps"}, "DATABASE_AUTO_MIGRATE"),
        ({"MAX_PENDING_WRITE_MB": "0"}, "MAX_PENDING_WRITE_MB"),
        ({"MAX_PENDING_WRITE_MB": "1.5"}, "MAX_PENDING_WRITE_MB"),
        ({"DATABASE_CONNECT_TIMEOUT": "0"}, "DATABASE_CONNECT_TIMEOUT"),
        ({"DATABASE_STATEMENT_TIMEOUT": "soon"}, "DATABASE_STATEMENT_TIMEOUT"),
        ({"CLI_STATEMENT_TIMEOUT": "-1"}, "CLI_STATEMENT_TIMEOUT"),
        ({"WRITE_RETRY_SECONDS": "0"}, "WRITE_RETRY_SECONDS"),
    ],
)
def test_bad_settings_fail_naming_the_variable(environ: dict[str, str], named: str) -> None:
    """A missing, malformed or contradictory setting stops the start with the variable's name."""
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(environ)


def test_redacted_keys_are_configurable() -> None:
    """REDACT_METADATA_KEYS adds names to the built-in rule, in normalised form; none by default."""
    assert Settings.from_env({}).redact_keys == frozenset()
    assert Settings.from_env({"REDACT_METADATA_KEYS": "Api-Key, sessionId"}).redact_keys == {
        "api_key",
        "session_id",
    }


def test_pending_write_bytes_are_set_in_mib() -> None:
    """MAX_PENDING_WRITE_MB bounds the bytes pending writes hold; 128 MiB by default."""
    assert Settings.from_env({}).max_pending_write_bytes == 128 * 2**20
    assert Settings.from_env({"MAX_PENDING_WRITE_MB": "32"}).max_pending_write_bytes == 32 * 2**20


def test_identity_guard_path_is_a_dotted_path_or_off() -> None:
    """IDENTITY_GUARD_PATH: extra.id by default, any dotted path into the user's metadata, or off."""
    assert Settings.from_env({}).identity_path == ("extra", "id")
    assert Settings.from_env({"IDENTITY_GUARD_PATH": "sub"}).identity_path == ("sub",)
    assert Settings.from_env({"IDENTITY_GUARD_PATH": "off"}).identity_path == ()
    with pytest.raises(ConfigurationError, match="IDENTITY_GUARD_PATH"):
        Settings.from_env({"IDENTITY_GUARD_PATH": "extra..id"})
