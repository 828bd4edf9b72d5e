"""The commands as an operator runs them: a subprocess with environment variables, exit codes, output."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from tests.cli_support import Deployment, chainlit_http_context, open_deployment, run_cli
from tests.prisma_schema import create_prisma_schema
from tests.services import free_port

chainlit_context = pytest.fixture(autouse=True)(chainlit_http_context)
COMMANDS = ("upgrade", "current", "doctor", "purge", "export-user", "erase-user", "sweep", "feedback")


@pytest.fixture
async def deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    async for opened in open_deployment(database_url, s3_environ):
        yield opened


def test_help_lists_every_command() -> None:
    result = run_cli({}, "--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)


def test_unknown_command_exits_2() -> None:
    assert run_cli({}, "defragment").returncode == 2


def test_malformed_age_exits_2_and_names_the_format() -> None:
    result = run_cli({}, "purge", "--older-than", "ninety days")
    assert result.returncode == 2
    assert "like 90d" in result.stderr


def test_command_without_database_url_exits_1_and_says_what_to_set() -> None:
    result = run_cli({}, "current")
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr


async def test_upgrade_dry_run_prints_the_adoption_plan(database_url: str) -> None:
    await create_prisma_schema(database_url)
    result = run_cli({"DATABASE_URL": database_url}, "upgrade", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Database shape: Prisma chainlit-datalayer" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout


async def test_upgrade_then_current_reports_head_and_managed_shape(database_url: str) -> None:
    assert run_cli({"DATABASE_URL": database_url}, "upgrade").returncode == 0
    result = run_cli({"DATABASE_URL": database_url}, "current")
    assert result.returncode == 0
    assert "(head)" in result.stdout
    assert "shape: managed by chainlit-openrag-datalayer" in result.stdout


def test_current_on_an_empty_database_exits_1_and_says_to_upgrade(database_url: str) -> None:
    result = run_cli({"DATABASE_URL": database_url}, "current")
    assert result.returncode == 1
    assert "revision: none" in result.stdout and "shape: empty" in result.stdout


async def test_upgrade_of_an_unknown_shape_exits_1_listing_the_differences(database_url: str) -> None:
    await create_prisma_schema(database_url)
    connection = await asyncpg.connect(database_url)
    await connection.execute('ALTER TABLE "Thread" DROP COLUMN tags')
    await connection.close()
    result = run_cli({"DATABASE_URL": database_url}, "upgrade")
    assert result.returncode == 1
    assert 'column "Thread"."tags" is missing' in result.stderr


async def test_doctor_passes_on_a_healthy_deployment(deployment: Deployment) -> None:
    """Database, schema, bucket and a presigned URL fetched over HTTP all check out."""
    result = run_cli(deployment.environ, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok  ") == 4
    assert "presigned GET" in result.stdout


async def test_doctor_reports_an_unreachable_database_with_the_fix(deployment: Deployment) -> None:
    environ = {
        **deployment.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/chainlit",
    }
    result = run_cli(environ, "doctor")
    assert result.returncode == 1
    assert "FAIL database reachable" in result.stdout and "Check DATABASE_URL" in result.stdout


async def test_doctor_reports_an_unreachable_public_endpoint(deployment: Deployment) -> None:
    environ = {**deployment.environ, "APP_AWS_PUBLIC_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    result = run_cli(environ, "doctor")
    assert result.returncode == 1
    assert "FAIL element URL round trip" in result.stdout and "APP_AWS_PUBLIC_ENDPOINT" in result.stdout


async def test_purge_deletes_an_idle_thread_and_reports_counts(deployment: Deployment) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = run_cli(deployment.environ, "purge", "--older-than", "90d")
    assert result.returncode == 0, result.stderr
    assert "purge deleted 1 threads and 1 stored files" in result.stdout
    assert "purge: 1/1" in result.stderr
    assert await deployment.layer.get_thread(talk.thread_id) is None


async def test_purge_dry_run_reports_what_it_would_delete(deployment: Deployment) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = run_cli(
        deployment.environ, "purge", "--older-than", "90d", "--user", talk.identifier, "--dry-run"
    )
    assert "purge would delete 1 threads and 1 stored files" in result.stdout
    assert await deployment.layer.get_thread(talk.thread_id) is not None


async def test_export_user_writes_a_zip_with_threads_and_files(
    deployment: Deployment, tmp_path: Path
) -> None:
    talk = await deployment.talk()
    out = tmp_path / "user.zip"
    result = run_cli(deployment.environ, "export-user", talk.identifier, "--out", str(out))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        assert archive.read(f"files/{talk.object_key}") == talk.file_content
        assert f"threads/{talk.thread_id}.json" in archive.namelist()


async def test_erase_user_removes_the_user(deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = run_cli(deployment.environ, "erase-user", talk.identifier)
    assert result.returncode == 0, result.stderr
    assert "1 threads and 1 stored files" in result.stdout
    assert await deployment.layer.get_user(talk.identifier) is None


async def test_erase_of_an_unknown_user_exits_1(deployment: Deployment) -> None:
    result = run_cli(deployment.environ, "erase-user", f"nobody-{uuid4()}")
    assert result.returncode == 1
    assert "No user with identifier" in result.stderr


async def test_sweep_reports_then_apply_deletes_a_row_without_file(deployment: Deployment) -> None:
    talk = await deployment.talk()
    await deployment.layer.storage.delete([talk.object_key])
    report = run_cli(deployment.environ, "sweep")
    assert f"missing file: element {talk.element_id}" in report.stdout
    applied = run_cli(deployment.environ, "sweep", "--apply", "--min-age", "0m")
    assert applied.returncode == 0
    assert "sweep deleted 0 orphan files and 1 elements without file" in applied.stdout


async def test_feedback_csv_has_question_answer_and_user(deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = run_cli(deployment.environ, "feedback", "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["question"], row["answer"], row["userIdentifier"]) == (
        talk.question,
        talk.answer,
        talk.identifier,
    )


async def test_feedback_jsonl_has_one_object_per_feedback(deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = run_cli(deployment.environ, "feedback", "--since", "2000-01-01", "--format", "jsonl")
    assert [json.loads(line)["feedbackId"] for line in result.stdout.splitlines()] == [talk.feedback_id]
