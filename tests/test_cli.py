"""The commands as an operator runs them: exit codes, output, confirmation, the current directory untouched.

Most run in this process (`main([...])`, output captured); a few run as real processes, one of them on a
real terminal (a pty), so start-up, `python -m` and the prompt are covered as a person meets them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from chainlit_openrag_datalayer import sweep
from chainlit_openrag_datalayer.cli import duration
from tests.cli_support import Deployment, InProcessCli, open_deployment, run_cli
from tests.prisma_schema import create_prisma_schema
from tests.services import free_port

pytestmark = pytest.mark.usefixtures("chainlit_context")
COMMANDS = ("upgrade", "current", "doctor", "purge", "export-user", "erase-user", "sweep", "feedback")


@pytest.fixture
async def deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    async for opened in open_deployment(database_url, s3_environ):
        yield opened


# --- start-up, help and usage ------------------------------------------------------------------


def imported(stderr: str) -> set[str]:
    """The modules a process imported, from its `PYTHONPROFILEIMPORTTIME` report on stderr."""
    lines = (
        line.rpartition("|")[2].strip() for line in stderr.splitlines() if line.startswith("import time:")
    )
    return {module for module in lines if module and module != "imported package"}


def test_help_answers_without_importing_chainlit_or_writing_to_the_current_directory(tmp_path: Path) -> None:
    """A real process (this one has Chainlit imported): `--help` lists every command, imports no Chainlit
    and leaves its working directory empty (Chainlit would write `.chainlit/` and `.files/` there)."""
    result = run_cli({"PYTHONPROFILEIMPORTTIME": "1"}, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in COMMANDS)
    modules = imported(result.stderr)
    assert "chainlit_openrag_datalayer.cli" in modules
    assert not {module for module in modules if module.partition(".")[0] == "chainlit"}
    assert list(tmp_path.iterdir()) == []


def test_a_database_command_imports_no_chainlit_and_writes_nothing_to_the_current_directory(
    database_url: str, tmp_path: Path
) -> None:
    result = run_cli({"DATABASE_URL": database_url, "PYTHONPROFILEIMPORTTIME": "1"}, "current", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    modules = imported(result.stderr)
    assert "asyncpg" in modules
    assert not {module for module in modules if module.partition(".")[0] == "chainlit"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("upgrade", "Migrate the schema"),
        ("current", "Print the schema revision"),
        ("doctor", "Check database, schema, storage"),
        ("purge", "Delete threads without activity"),
        ("export-user", "Zip a user's threads"),
        ("erase-user", "Delete a user"),
        ("sweep", "Find files no element points at"),
        ("feedback", "Every feedback with its thread"),
    ],
)
def test_every_command_help_says_what_it_does(cli: InProcessCli, command: str, says: str) -> None:
    result = cli.run({}, command, "--help")
    assert result.returncode == 0
    assert says in " ".join(result.stdout.split())


def test_erase_user_help_says_it_deletes(cli: InProcessCli) -> None:
    help_text = " ".join(cli.run({}, "erase-user", "--help").stdout.split())
    assert "Delete a user, their threads and every file of theirs" in help_text
    assert "Cannot be undone" in help_text and "--yes" in help_text


def test_unknown_command_exits_2(cli: InProcessCli) -> None:
    assert cli.run({}, "defragment").returncode == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30min", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("90d", timedelta(days=90)),
        ("90 days", timedelta(days=90)),
        ("2w", timedelta(weeks=2)),
        ("3months", timedelta(days=90)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
    ],
)
def test_ages_read_unambiguously(text: str, expected: timedelta) -> None:
    assert duration(text) == expected


def test_m_is_refused_with_a_hint(cli: InProcessCli) -> None:
    """`3m` used to mean three minutes to `purge`; an operator may well have meant three months."""
    result = cli.run({}, "purge", "--older-than", "3m")
    assert result.returncode == 2
    assert "'3m' is ambiguous: write 3min for minutes or 3months for months" in result.stderr


@pytest.mark.parametrize("text", ["90", "ninety days", "-1d", "1.5h", "3mo", ""])
def test_malformed_age_exits_2_and_names_the_units(cli: InProcessCli, text: str) -> None:
    result = cli.run({}, "sweep", f"--min-age={text}")
    assert result.returncode == 2
    assert "s, min, h, d, w or months" in result.stderr or "like 90d" in result.stderr


def test_sweep_default_age_is_the_one_its_help_names(cli: InProcessCli) -> None:
    assert duration("1h") == sweep.GRACE
    assert "default 1h" in cli.run({}, "sweep", "--help").stdout


def test_command_without_database_url_exits_1_and_says_what_to_set(cli: InProcessCli) -> None:
    result = cli.run({}, "current")
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr


# --- schema ------------------------------------------------------------------------------------


async def test_upgrade_dry_run_prints_the_adoption_plan(cli: InProcessCli, database_url: str) -> None:
    await create_prisma_schema(database_url)
    result = await cli({"DATABASE_URL": database_url}, "upgrade", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Database shape: Prisma chainlit-datalayer" in result.stdout
    assert "Dry run: nothing was changed." in result.stdout


def test_upgrade_then_current_as_real_processes(database_url: str) -> None:
    """`upgrade` reports each revision it applied and where the schema is now; `current` agrees."""
    upgraded = run_cli({"DATABASE_URL": database_url}, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "apply revision 0001" in upgraded.stdout
    assert upgraded.stdout.count("Schema is now at") == 1
    result = run_cli({"DATABASE_URL": database_url}, "current")
    assert result.returncode == 0
    assert "(head)" in result.stdout
    assert "shape: managed by chainlit-openrag-datalayer" in result.stdout


async def test_repeat_upgrade_says_once_that_there_is_nothing_to_do(
    cli: InProcessCli, database_url: str
) -> None:
    await cli({"DATABASE_URL": database_url}, "upgrade")
    result = await cli({"DATABASE_URL": database_url}, "upgrade")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "nothing to apply" in lines[1], lines
    assert "Schema is now" not in result.stdout


async def test_current_on_an_empty_database_says_so_and_exits_0(cli: InProcessCli, database_url: str) -> None:
    result = await cli({"DATABASE_URL": database_url}, "current")
    assert result.returncode == 0, result.stderr
    assert "revision: none (no chainlit-openrag-datalayer schema yet; run:" in result.stdout
    assert "shape: empty" in result.stdout


async def test_upgrade_of_an_unknown_shape_exits_1_listing_the_differences(
    cli: InProcessCli, database_url: str
) -> None:
    await create_prisma_schema(database_url)
    connection = await asyncpg.connect(database_url)
    await connection.execute('ALTER TABLE "Thread" DROP COLUMN tags')
    await connection.close()
    result = await cli({"DATABASE_URL": database_url}, "upgrade")
    assert result.returncode == 1
    assert 'column "Thread"."tags" is missing' in result.stderr


async def test_database_errors_name_the_cause_without_library_links(
    cli: InProcessCli, database_url: str
) -> None:
    """A missing database: the driver's error class and message, no SQLAlchemy help link, no SQL."""
    missing = database_url.rsplit("/", 1)[0] + f"/no_such_db_{uuid4().hex}"
    result = await cli({"DATABASE_URL": missing}, "current")
    assert result.returncode == 1
    assert "InvalidCatalogNameError" in result.stderr and "does not exist" in result.stderr
    assert "sqlalche.me" not in result.stderr and "Background on this error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_an_unreachable_bucket_is_one_line_naming_the_endpoint(
    cli: InProcessCli, deployment: Deployment
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = await cli({**deployment.environ, "DEV_AWS_ENDPOINT": endpoint}, "sweep")
    assert result.returncode == 1
    assert result.stderr.startswith("error: EndpointConnectionError: ") and endpoint in result.stderr
    assert len(result.stderr.splitlines()) == 1


# --- doctor ------------------------------------------------------------------------------------


async def test_doctor_passes_on_a_healthy_deployment(cli: InProcessCli, deployment: Deployment) -> None:
    """Database, schema, bucket and a presigned URL fetched over HTTP all check out."""
    result = await cli(deployment.environ, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok  ") == 4
    assert "presigned GET" in result.stdout


async def test_doctor_reports_an_unreachable_database_with_the_fix(
    cli: InProcessCli, deployment: Deployment
) -> None:
    environ = {
        **deployment.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/chainlit",
    }
    result = await cli(environ, "doctor")
    assert result.returncode == 1
    assert "FAIL database reachable" in result.stdout and "Check DATABASE_URL" in result.stdout
    assert "sqlalche.me" not in result.stdout


async def test_doctor_reports_an_unreachable_public_endpoint(
    cli: InProcessCli, deployment: Deployment
) -> None:
    environ = {**deployment.environ, "APP_AWS_PUBLIC_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    result = await cli(environ, "doctor")
    assert result.returncode == 1
    assert "FAIL element URL round trip" in result.stdout and "APP_AWS_PUBLIC_ENDPOINT" in result.stdout


async def test_doctor_checks_the_local_folder_of_the_app_dir_and_leaves_it_as_it_was(
    cli: InProcessCli, deployment: Deployment, tmp_path: Path
) -> None:
    """Without BUCKET_NAME, `--app-dir` finds the app's element folder; the probe leaves nothing behind."""
    files = tmp_path / "app" / ".chainlit" / "element-files"
    (files / "threads").mkdir(parents=True)
    result = await cli(
        {"DATABASE_URL": deployment.database_url}, "doctor", "--app-dir", str(tmp_path / "app")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"local folder {files}" in result.stdout
    assert [p.name for p in files.iterdir()] == ["threads"]


async def test_doctor_without_the_app_folder_says_where_it_looked_and_creates_nothing(
    cli: InProcessCli, deployment: Deployment, tmp_path: Path
) -> None:
    result = await cli({"DATABASE_URL": deployment.database_url}, "doctor", "--app-dir", str(tmp_path))
    assert result.returncode == 1
    assert (
        f"FAIL storage writable: the local storage folder {tmp_path}/.chainlit/element-files" in result.stdout
    )
    assert "--app-dir" in result.stdout and "LOCAL_STORAGE_DIR" in result.stdout
    assert os.listdir(tmp_path) == []


# --- purge -------------------------------------------------------------------------------------


async def test_purge_dry_run_lists_each_thread_before_its_totals(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = await cli(
        deployment.environ, "purge", "--older-than", "90d", "--user", talk.identifier, "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    listing, totals = result.stdout.splitlines()
    assert listing.startswith(f"thread {talk.thread_id}  owner {talk.identifier}  last activity 20")
    assert listing.endswith(f'UTC  name "{talk.name}"')
    assert totals == "purge would delete 1 thread and 1 stored file"
    assert await deployment.layer.get_thread(talk.thread_id) is not None


async def test_purge_with_yes_deletes_an_idle_thread_and_reports_counts(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = await cli(deployment.environ, "purge", "--older-than", "90d", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "purge deleted 1 thread and 1 stored file"
    assert "purge: 1/1" in result.stderr
    assert await deployment.layer.get_thread(talk.thread_id) is None


async def test_purge_without_a_terminal_or_yes_refuses_and_names_the_flag(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = await cli(deployment.environ, "purge", "--older-than", "90d")
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert await deployment.layer.get_thread(talk.thread_id) is not None


@pytest.mark.parametrize(
    ("typed", "exit_code", "kept"), [("n\n", 1, True), ("\n", 1, True), ("yes\n", 0, False)]
)
async def test_purge_on_a_terminal_asks_and_only_yes_deletes(
    cli: InProcessCli, deployment: Deployment, typed: str, exit_code: int, kept: bool
) -> None:
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    result = await cli(deployment.environ, "purge", "--older-than", "90d", typed=typed)
    assert result.returncode == exit_code
    assert "Delete 1 thread and 1 stored file? This cannot be undone. [y/N]" in result.stderr
    assert (await deployment.layer.get_thread(talk.thread_id) is not None) is kept


async def test_purge_older_than_0_takes_every_thread_of_the_user(
    cli: InProcessCli, deployment: Deployment
) -> None:
    """Even a thread active a moment ago."""
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=0)
    result = await cli(
        deployment.environ, "purge", "--older-than", "0", "--user", talk.identifier, "--dry-run"
    )
    assert result.stdout.splitlines()[-1] == "purge would delete 1 thread and 1 stored file"


async def test_purge_lists_hostile_names_without_terminal_escapes(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    await deployment.layer.update_thread(talk.thread_id, name="\x1b]0;pwned\x07\x1b[2J")
    await deployment.age_thread(talk.thread_id, days=100)
    result = await cli(deployment.environ, "purge", "--older-than", "90d", "--dry-run")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert 'name "\\x1b]0;pwned\\x07\\x1b[2J"' in result.stdout


async def test_purge_asks_on_a_real_terminal(deployment: Deployment, tmp_path: Path) -> None:
    """A real process whose standard input is a pty: it asks, and `y` deletes."""
    talk = await deployment.talk()
    await deployment.age_thread(talk.thread_id, days=100)
    primary, secondary = pty.openpty()
    try:
        os.write(primary, b"y\n")
        result = await asyncio.to_thread(
            run_cli, deployment.environ, "purge", "--older-than", "90d", cwd=tmp_path, stdin=secondary
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == 0, result.stderr
    assert "Delete 1 thread and 1 stored file? This cannot be undone. [y/N]" in result.stderr
    assert result.stdout.splitlines()[-1] == "purge deleted 1 thread and 1 stored file"
    assert await deployment.layer.get_thread(talk.thread_id) is None


# --- export-user, erase-user -------------------------------------------------------------------


async def test_export_user_writes_a_zip_with_threads_and_files(
    cli: InProcessCli, deployment: Deployment, tmp_path: Path
) -> None:
    talk = await deployment.talk()
    out = tmp_path / "user.zip"
    result = await cli(deployment.environ, "export-user", talk.identifier, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"exported 1 thread and 1 file to {out}\n"
    with zipfile.ZipFile(out) as archive:
        assert archive.read(f"files/{talk.object_key}") == talk.file_content
        assert f"threads/{talk.thread_id}.json" in archive.namelist()


async def test_erase_user_with_yes_removes_the_user(cli: InProcessCli, deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = await cli(deployment.environ, "erase-user", talk.identifier, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"user {talk.identifier}: 1 thread and 1 stored file",
        f"erased user {talk.identifier}: 1 thread and 1 stored file",
    ]
    assert await deployment.layer.get_user(talk.identifier) is None


async def test_erase_user_without_a_terminal_or_yes_refuses(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    result = await cli(deployment.environ, "erase-user", talk.identifier)
    assert result.returncode == 2 and "pass --yes" in result.stderr
    assert await deployment.layer.get_user(talk.identifier) is not None


async def test_erase_user_on_a_terminal_asks_first(cli: InProcessCli, deployment: Deployment) -> None:
    talk = await deployment.talk()
    declined = await cli(deployment.environ, "erase-user", talk.identifier, typed="n\n")
    assert declined.returncode == 1 and "Nothing was deleted." in declined.stderr
    assert f"Erase user {talk.identifier} with 1 thread and 1 stored file?" in declined.stderr
    assert await deployment.layer.get_user(talk.identifier) is not None
    accepted = await cli(deployment.environ, "erase-user", talk.identifier, typed="y\n")
    assert accepted.returncode == 0
    assert await deployment.layer.get_user(talk.identifier) is None


async def test_erase_of_an_unknown_user_exits_1(cli: InProcessCli, deployment: Deployment) -> None:
    result = await cli(deployment.environ, "erase-user", f"nobody-{uuid4()}", "--yes")
    assert result.returncode == 1
    assert "No user with identifier" in result.stderr


# --- sweep, feedback ---------------------------------------------------------------------------


async def test_sweep_reports_then_apply_deletes_a_row_without_file(
    cli: InProcessCli, deployment: Deployment
) -> None:
    talk = await deployment.talk()
    await deployment.layer.storage.delete([talk.object_key])
    await deployment.next_second()
    report = await cli(deployment.environ, "sweep", "--min-age", "0")
    assert f"missing file: element {talk.element_id}" in report.stdout
    assert "sweep found 0 orphan files and 1 element without file (run with --apply" in report.stdout
    refused = await cli(deployment.environ, "sweep", "--apply", "--min-age", "0")
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    applied = await cli(deployment.environ, "sweep", "--apply", "--min-age", "0", "--yes")
    assert applied.returncode == 0
    assert applied.stdout.splitlines()[-1] == "sweep deleted 0 orphan files and 1 element without file"


async def test_feedback_csv_has_question_answer_and_user(cli: InProcessCli, deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = await cli(deployment.environ, "feedback", "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["question"], row["answer"], row["userIdentifier"]) == (
        talk.question,
        talk.answer,
        talk.identifier,
    )


async def test_feedback_jsonl_has_one_object_per_feedback(cli: InProcessCli, deployment: Deployment) -> None:
    talk = await deployment.talk()
    result = await cli(deployment.environ, "feedback", "--since", "2000-01-01", "--format", "jsonl")
    assert [json.loads(line)["feedbackId"] for line in result.stdout.splitlines()] == [talk.feedback_id]
