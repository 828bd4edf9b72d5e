"""What operators see at start and on `alembic upgrade head`: true, once, without third-party noise."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.migrations import head_revision

ROOT = Path(__file__).resolve().parent.parent
LOGGER = "chainlit_openrag_datalayer.data_layer"


def start_up_records(caplog: pytest.LogCaptureFixture, environ: dict[str, str]) -> list[logging.LogRecord]:
    """The records one construction of the layer logs (Chainlit builds it from the factory; no I/O yet)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="chainlit_openrag_datalayer"):
        OpenRAGDataLayer(Settings.from_env(environ))
    return [record for record in caplog.records if record.name == LOGGER]


def test_start_up_warning_names_only_the_missing_bucket(
    caplog: pytest.LogCaptureFixture, database_url: str, tmp_path: Path
) -> None:
    environ = {"DATABASE_URL": database_url, "LOCAL_STORAGE_DIR": str(tmp_path)}
    [record] = start_up_records(caplog, environ)
    assert record.levelno == logging.WARNING
    assert "BUCKET_NAME is not set" in record.getMessage()
    assert "DATABASE_URL" not in record.getMessage()


def test_start_up_warning_names_both_when_both_are_missing(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    environ = {"EMBEDDED_POSTGRES_DIR": str(tmp_path / "pg"), "LOCAL_STORAGE_DIR": str(tmp_path / "files")}
    [record] = start_up_records(caplog, environ)
    assert record.levelno == logging.WARNING
    assert "DATABASE_URL and BUCKET_NAME are not set" in record.getMessage()
    assert f"embedded PostgreSQL in {tmp_path / 'pg'}" in record.getMessage()


def test_a_production_set_up_logs_one_info_line_with_no_password(
    caplog: pytest.LogCaptureFixture, s3_environ: dict[str, str]
) -> None:
    environ = {"DATABASE_URL": "postgresql://app:s3cret@rdb:5432/chainlit", **s3_environ}
    [record] = start_up_records(caplog, environ)
    assert record.levelno == logging.INFO
    assert "not set" not in record.getMessage() and "s3cret" not in record.getMessage()
    assert f"S3 bucket {s3_environ['BUCKET_NAME']}" in record.getMessage()


def test_alembic_info_lines_are_off_by_default(database_url: str) -> None:
    """An app logging at INFO (as `chainlit run` does) sees no "setup plugin" or "Context impl" lines."""
    script = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        "from chainlit_openrag_datalayer.migrations import upgrade\n"
        f"upgrade({database_url!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "alembic" not in result.stdout + result.stderr
    assert f"Database schema upgraded to {head_revision()}" in result.stdout


def test_alembic_upgrade_head_reports_what_it_did(database_url: str) -> None:
    """`alembic upgrade head` from a clone of the repository: one line each time, true each time."""
    environ = {**os.environ, "DATABASE_URL": database_url}

    def upgrade_head() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT, env=environ, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert (
        upgrade_head() == f"chainlit-openrag-datalayer schema migrated from no revision to {head_revision()}."
    )
    assert (
        upgrade_head() == f"chainlit-openrag-datalayer schema is already at {head_revision()}: nothing to do."
    )
