"""maintenance.py against the real PostgreSQL and the moto S3 server: each operation returns what it did."""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainlit_openrag_datalayer import maintenance, sweep
from chainlit_openrag_datalayer.errors import DataLayerError
from chainlit_openrag_datalayer.storage import ElementStorage
from tests.cli_support import Deployment, open_deployment
from tests.services import s3_client

pytestmark = pytest.mark.usefixtures("chainlit_context")


@pytest.fixture
async def deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    async for opened in open_deployment(database_url, s3_environ):
        yield opened


@pytest.fixture
async def engine(deployment: Deployment) -> AsyncIterator[AsyncEngine]:
    engine = deployment.layer.settings.cli_connector().engine()
    yield engine
    await engine.dispose()


@pytest.fixture
def storage(deployment: Deployment) -> ElementStorage:
    return deployment.layer.storage


def keys_in(deployment: Deployment, s3_server: str) -> list[str]:
    client = s3_client(s3_server)
    try:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=deployment.bucket).get("Contents", []))
    finally:
        client.close()


async def test_purge_deletes_only_threads_idle_longer_than_the_age(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage, s3_server: str
) -> None:
    """A thread idle for 100 days goes with its file; yesterday's thread stays."""
    old, recent = await deployment.talk(), await deployment.talk()
    await deployment.age_thread(old.thread_id, days=100)
    await deployment.age_thread(recent.thread_id, days=1)
    plan = await maintenance.purge_plan(engine, timedelta(days=90))
    result = await maintenance.purge(engine, storage, plan)
    assert (result.threads, result.objects) == (1, 1)
    assert await deployment.layer.get_thread(old.thread_id) is None
    assert keys_in(deployment, s3_server) == [recent.object_key]


async def test_purge_plan_lists_threads_with_owner_name_and_activity_and_deletes_nothing(
    deployment: Deployment, engine: AsyncEngine
) -> None:
    old = await deployment.talk()
    await deployment.age_thread(old.thread_id, days=100)
    plan = await maintenance.purge_plan(engine, timedelta(days=90))
    [listed] = plan.threads
    assert (listed.id, listed.owner, listed.name, plan.objects) == (
        old.thread_id,
        old.identifier,
        old.name,
        1,
    )
    assert listed.updated_at < plan.cutoff
    assert await deployment.layer.get_thread(old.thread_id) is not None


async def test_purge_keeps_a_planned_thread_that_came_back_to_life(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage
) -> None:
    """A message arrives between the listing and the confirmation: that thread is no longer idle."""
    revived = await deployment.talk()
    await deployment.age_thread(revived.thread_id, days=100)
    plan = await maintenance.purge_plan(engine, timedelta(days=90))
    await deployment.age_thread(revived.thread_id, days=0)
    result = await maintenance.purge(engine, storage, plan)
    assert result.threads == 0
    assert await deployment.layer.get_thread(revived.thread_id) is not None


async def test_purge_for_one_user_leaves_other_users_threads(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage
) -> None:
    mine, theirs = await deployment.talk(), await deployment.talk()
    for talk in (mine, theirs):
        await deployment.age_thread(talk.thread_id, days=100)
    plan = await maintenance.purge_plan(engine, timedelta(days=90), user_identifier=mine.identifier)
    result = await maintenance.purge(engine, storage, plan)
    assert result.threads == 1
    assert await deployment.layer.get_thread(theirs.thread_id) is not None


async def test_purge_for_unknown_user_is_an_error(engine: AsyncEngine) -> None:
    with pytest.raises(DataLayerError, match="No user with identifier"):
        await maintenance.purge_plan(engine, timedelta(days=1), user_identifier=f"nobody-{uuid4()}")


async def test_erase_user_removes_user_threads_and_every_object(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage, s3_server: str
) -> None:
    """Even an object under the user's thread that no row points at is removed."""
    talk, other = await deployment.talk(), await deployment.talk()
    stray = f"threads/{talk.thread_id}/files/{uuid4()}"
    await storage.put(stray, b"left behind", "text/plain", "stray.txt")
    overview = await maintenance.erase_overview(engine, talk.identifier)
    result = await maintenance.erase_user(engine, storage, talk.identifier)
    assert (overview.threads, overview.objects, result.threads, result.objects) == (1, 1, 1, 2)
    assert await deployment.layer.get_user(talk.identifier) is None
    assert keys_in(deployment, s3_server) == [other.object_key]


async def test_export_user_archives_threads_feedback_and_files(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage, tmp_path: Path
) -> None:
    talk = await deployment.talk()
    out = tmp_path / "export.zip"
    result = await maintenance.export_user(engine, storage, talk.identifier, out)
    assert (result.threads, result.files, result.missing_files) == (1, 1, [])
    with zipfile.ZipFile(out) as archive:
        document = json.loads(archive.read(f"threads/{talk.thread_id}.json"))
        assert json.loads(archive.read("user.json"))["identifier"] == talk.identifier
        assert archive.read(f"files/{talk.object_key}") == talk.file_content
    assert [s["output"] for s in document["steps"]] == [talk.question, talk.answer]
    assert [(f["id"], f["value"]) for f in document["feedback"]] == [(talk.feedback_id, 1.0)]


async def test_export_user_lists_files_missing_from_storage(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage, tmp_path: Path
) -> None:
    talk = await deployment.talk()
    await storage.delete([talk.object_key])
    result = await maintenance.export_user(engine, storage, talk.identifier, tmp_path / "export.zip")
    assert result.missing_files == [talk.object_key]


async def test_sweep_reports_orphan_objects_and_rows_without_object(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage
) -> None:
    kept, lost = await deployment.talk(), await deployment.talk()
    orphan = f"threads/{uuid4()}/files/{uuid4()}"
    await storage.put(orphan, b"nobody points here", "text/plain", "orphan.txt")
    await storage.delete([lost.object_key])
    await deployment.next_second()
    result = await sweep.find(engine, storage, grace=timedelta(0))
    assert result.orphan_objects == [orphan]
    assert result.missing_objects == [(lost.element_id, lost.object_key)]
    assert await deployment.layer.get_element(kept.thread_id, kept.element_id) is not None


async def test_sweep_apply_deletes_orphans_and_rows_without_object(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage, s3_server: str
) -> None:
    kept, lost = await deployment.talk(), await deployment.talk()
    await storage.put(f"files/{uuid4()}", b"orphan", "text/plain", "orphan.txt")
    await storage.delete([lost.object_key])
    await deployment.next_second()
    found = await sweep.find(engine, storage, grace=timedelta(0))
    applied = await sweep.apply(engine, storage, found)
    assert (applied.orphan_objects, applied.missing_objects) == (found.orphan_objects, found.missing_objects)
    assert keys_in(deployment, s3_server) == [kept.object_key]
    assert await deployment.layer.get_element(lost.thread_id, lost.element_id) is None


async def test_sweep_leaves_objects_younger_than_the_grace_period(
    deployment: Deployment, engine: AsyncEngine, storage: ElementStorage
) -> None:
    """An upload whose element row is not written yet is not an orphan."""
    await deployment.talk()
    await storage.put(f"files/{uuid4()}", b"uploading", "text/plain", "new.txt")
    result = await sweep.find(engine, storage)
    assert result.orphan_objects == []


async def test_feedback_report_pairs_the_rated_answer_with_its_question(
    deployment: Deployment, engine: AsyncEngine
) -> None:
    talk = await deployment.talk()
    rows = await maintenance.feedback_report(engine, datetime.now(timezone.utc) - timedelta(hours=1))
    assert [(r["feedbackId"], r["userIdentifier"], r["threadId"]) for r in rows] == [
        (talk.feedback_id, talk.identifier, talk.thread_id)
    ]
    assert (rows[0]["question"], rows[0]["answer"], rows[0]["value"]) == (talk.question, talk.answer, 1.0)


async def test_feedback_report_leaves_out_feedback_before_the_date(
    deployment: Deployment, engine: AsyncEngine
) -> None:
    await deployment.talk()
    rows = await maintenance.feedback_report(engine, datetime.now(timezone.utc) + timedelta(hours=1))
    assert rows == []
