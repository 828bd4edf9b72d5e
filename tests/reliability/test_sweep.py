"""`sweep` on a shared bucket (moto over HTTP) and a real PostgreSQL: it stays in its lane and never races
an upload into losing a row or a file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chainlit_openrag_datalayer import sweep
from chainlit_openrag_datalayer.storage import ElementStorage
from tests.cli_support import Deployment, InProcessCli, open_deployment
from tests.conformance.factories import text_element
from tests.services import s3_client

# What another application keeps in the same bucket (issue #10's operator found these deleted).
FOREIGN_KEYS = (
    "backups/2026-11-01.sql.gz",
    "openrag/documents/handbook.pdf",
    "threads/README.txt",  # under our prefix, but not a key this package writes
    "files/reports/2026/q3.pdf",
)


@pytest.fixture
async def deployment(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[Deployment]:
    async for opened in open_deployment(database_url, s3_environ):
        yield opened


@pytest.fixture
async def engine(deployment: Deployment) -> AsyncIterator[AsyncEngine]:
    engine = deployment.layer.settings.cli_connector().engine()
    yield engine
    await engine.dispose()


class ListingWitness:
    """The real storage, recording which prefixes are listed and running ``during`` once, just before the
    first listing starts or just after the last one ends: an upload racing the sweep."""

    def __init__(self, inner: ElementStorage, during: Callable[[], Awaitable[None]], when: str) -> None:
        self.inner = inner
        self.prefixes: list[str] = []
        self._during: Callable[[], Awaitable[None]] | None = during
        self._when = when

    async def _fire(self) -> None:
        during, self._during = self._during, None
        if during is not None:
            await during()

    async def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, datetime]]:
        self.prefixes.append(prefix)
        if self._when == "before":
            await self._fire()
        async for item in self.inner.objects(prefix):
            yield item
        if self._when == "after" and prefix == sweep.OWN_PREFIXES[-1]:
            await self._fire()

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        await self.inner.put(key, source, mime, filename)

    def read(self, key: str) -> AsyncIterator[bytes]:
        return self.inner.read(key)

    async def delete(self, keys: Sequence[str]) -> None:
        await self.inner.delete(keys)

    async def close(self) -> None:
        """The inner storage belongs to the deployment's layer."""


def bucket_keys(deployment: Deployment, s3_server: str) -> set[str]:
    client = s3_client(s3_server)
    try:
        return {o["Key"] for o in client.list_objects_v2(Bucket=deployment.bucket).get("Contents", [])}
    finally:
        client.close()


def put_foreign_objects(deployment: Deployment, s3_server: str) -> None:
    client = s3_client(s3_server)
    try:
        for key in FOREIGN_KEYS:
            client.put_object(Bucket=deployment.bucket, Key=key, Body=b"not chainlit's")
    finally:
        client.close()


async def test_sweep_lists_only_its_own_prefixes_and_never_touches_another_apps_objects(
    deployment: Deployment, engine: AsyncEngine, s3_server: str, cli: InProcessCli
) -> None:
    """Another application's objects are neither reported nor deleted, by the function or the command."""
    await deployment.talk()
    orphan = f"threads/{uuid4()}/files/{uuid4()}"
    await deployment.layer.storage.put(orphan, b"nobody points here", "text/plain", "orphan.txt")
    put_foreign_objects(deployment, s3_server)
    await deployment.next_second()
    witness = ListingWitness(deployment.layer.storage, during=_nothing, when="before")
    found = await sweep.find(engine, witness, grace=timedelta(0))
    assert sorted(witness.prefixes) == sorted(sweep.OWN_PREFIXES)
    assert found.orphan_objects == [orphan]

    result = await cli(deployment.environ, "sweep", "--apply", "--min-age", "0", "--yes")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("orphan file:")] == [
        f"orphan file: {orphan}"
    ]
    assert set(FOREIGN_KEYS) <= bucket_keys(deployment, s3_server)
    assert orphan not in bucket_keys(deployment, s3_server)


@pytest.mark.parametrize("when", ["before", "after"])
async def test_an_upload_during_the_listing_keeps_its_row_and_its_file(
    deployment: Deployment, engine: AsyncEngine, s3_server: str, when: str
) -> None:
    """An element uploaded just before or just after the bucket is listed (even with `--min-age 0`):
    this sweep keeps its row, and the next one keeps its file."""
    talk = await deployment.talk()
    await deployment.next_second()
    uploaded = text_element(talk.thread_id, talk.answer_id, content="uploaded while sweeping")

    async def upload() -> None:
        await deployment.layer.create_element(uploaded)

    witness = ListingWitness(deployment.layer.storage, during=upload, when=when)
    for _ in range(2):  # this sweep, then the next one
        found = await sweep.find(engine, witness, grace=timedelta(0))
        await sweep.apply(engine, witness, found)
        assert await deployment.layer.get_element(talk.thread_id, uploaded.id) is not None
        assert f"threads/{talk.thread_id}/files/{uploaded.id}" in bucket_keys(deployment, s3_server)


async def test_a_dry_run_and_apply_agree(deployment: Deployment, engine: AsyncEngine, s3_server: str) -> None:
    """Nothing changed in between: `--apply` deletes exactly what the report listed."""
    lost = await deployment.talk()
    await deployment.talk()
    await deployment.layer.storage.delete([lost.object_key])
    orphans = [f"threads/{uuid4()}/files/{uuid4()}", f"files/{uuid4()}"]
    for key in orphans:
        await deployment.layer.storage.put(key, b"orphan", "text/plain", "orphan.txt")
    put_foreign_objects(deployment, s3_server)
    await deployment.next_second()
    report = await sweep.find(engine, deployment.layer.storage, grace=timedelta(0))
    applied = await sweep.apply(engine, deployment.layer.storage, report)
    assert (report.orphan_objects, report.missing_objects) == (
        sorted(orphans),
        [(lost.element_id, lost.object_key)],
    )
    assert (applied.orphan_objects, applied.missing_objects) == (
        report.orphan_objects,
        report.missing_objects,
    )


async def test_apply_keeps_what_changed_since_the_report(deployment: Deployment, engine: AsyncEngine) -> None:
    """An orphan that gained its row, and an element whose file came back, are both kept."""
    returning = await deployment.talk()
    await deployment.layer.storage.delete([returning.object_key])
    late = text_element(returning.thread_id, returning.answer_id, content="row written late")
    late_key = f"threads/{returning.thread_id}/files/{late.id}"
    await deployment.layer.storage.put(late_key, b"row written late", "text/plain", "late.txt")
    await deployment.next_second()
    report = await sweep.find(engine, deployment.layer.storage, grace=timedelta(0))
    assert late_key in report.orphan_objects and report.missing_objects == [
        (returning.element_id, returning.object_key)
    ]
    await deployment.layer.create_element(late)
    await deployment.layer.storage.put(returning.object_key, b"restored", "text/plain", "notes.txt")
    applied = await sweep.apply(engine, deployment.layer.storage, report)
    assert (applied.orphan_objects, applied.missing_objects) == ([], [])
    assert await deployment.layer.get_element(returning.thread_id, returning.element_id) is not None


async def test_an_element_with_another_layouts_key_is_never_reported_missing(
    deployment: Deployment, engine: AsyncEngine
) -> None:
    """Keys outside this package's layout (adopted from another layer) are not listed, so not judged."""
    talk = await deployment.talk()
    await deployment.sql(
        """UPDATE "Element" SET "objectKey" = $2 WHERE id = $1""",
        talk.element_id,
        f"{talk.user_id}/{uuid4()}",
    )
    found = await sweep.find(engine, deployment.layer.storage, grace=timedelta(0))
    assert found.missing_objects == []


async def test_rows_younger_than_the_grace_are_not_reported(
    deployment: Deployment, engine: AsyncEngine
) -> None:
    talk = await deployment.talk()
    await deployment.layer.storage.delete([talk.object_key])
    assert (await sweep.find(engine, deployment.layer.storage)).missing_objects == []
    await deployment.next_second()
    found = await sweep.find(engine, deployment.layer.storage, grace=timedelta(0))
    assert found.missing_objects == [(talk.element_id, talk.object_key)]


async def _nothing() -> None:
    """No concurrent upload."""
