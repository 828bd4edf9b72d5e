"""Operations on a running deployment: retention, data-subject requests, storage sweeps, feedback review.

Each function does one pass and returns what it did (counts or rows); the CLI only parses and prints.
Database rows go first and storage objects after, as in the data layer: an object whose delete fails
is left for ``sweep``, never a row pointing at a deleted object.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import RowMapping, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from . import queries
from .errors import DataLayerError
from .schema import element, feedback, step, thread, user
from .storage import ElementStorage, thread_prefix

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)
SWEEP_GRACE = timedelta(hours=1)


def _no_progress(done: int, total: int) -> None:
    """Progress is optional."""


async def _user_id(engine: AsyncEngine, identifier: str) -> str:
    async with engine.connect() as connection:
        found = await connection.scalar(select(user.c.id).where(user.c.identifier == identifier))
    if found is None:
        raise DataLayerError(f"No user with identifier {identifier!r} (identifiers are case-sensitive).")
    return str(found)


async def _delete_threads(
    engine: AsyncEngine, storage: ElementStorage, thread_ids: Sequence[str], progress: Progress
) -> int:
    """Delete each thread with its steps, elements and feedback, then its objects; returns objects removed."""
    removed = 0
    for done, thread_id in enumerate(thread_ids, start=1):
        async with engine.begin() as connection:
            result = await connection.execute(queries.thread_delete(), {"threadId": thread_id})
            keys = [str(key) for key in result.scalars()]
        await storage.delete(keys)
        removed += len(keys)
        progress(done, len(thread_ids))
    return removed


# --- purge -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    threads: int
    objects: int
    dry_run: bool


async def purge(
    engine: AsyncEngine,
    storage: ElementStorage,
    older_than: timedelta,
    *,
    user_identifier: str | None = None,
    dry_run: bool = False,
    progress: Progress = _no_progress,
) -> PurgeResult:
    """Delete threads whose last activity (``"updatedAt"``) is older than ``older_than``."""
    cutoff = datetime.now(timezone.utc) - older_than
    condition = thread.c.updatedAt < cutoff
    if user_identifier is not None:
        condition = condition & (thread.c.userId == await _user_id(engine, user_identifier))
    async with engine.connect() as connection:
        ids = [str(i) for i in (await connection.execute(select(thread.c.id).where(condition))).scalars()]
        if dry_run:
            objects = await connection.scalar(
                select(func.count(element.c.objectKey)).where(element.c.threadId.in_(ids))
            )
            return PurgeResult(len(ids), int(objects or 0), dry_run=True)
    objects_removed = await _delete_threads(engine, storage, ids, progress)
    logger.info("Purged %d threads and %d storage objects older than %s", len(ids), objects_removed, cutoff)
    return PurgeResult(len(ids), objects_removed, dry_run=False)


# --- erase-user --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EraseResult:
    threads: int
    objects: int


async def erase_user(
    engine: AsyncEngine, storage: ElementStorage, identifier: str, *, progress: Progress = _no_progress
) -> EraseResult:
    """Remove a user, every thread of theirs (deleted ones included) and every object under those threads."""
    user_id = await _user_id(engine, identifier)
    async with engine.connect() as connection:
        result = await connection.execute(select(thread.c.id).where(thread.c.userId == user_id))
        ids = [str(i) for i in result.scalars()]
    objects = await _delete_threads(engine, storage, ids, progress)
    for thread_id in ids:  # objects no row pointed at any more (a failed earlier delete)
        leftovers = [key async for key, _ in storage.objects(thread_prefix(thread_id))]
        await storage.delete(leftovers)
        objects += len(leftovers)
    async with engine.begin() as connection:
        await connection.execute(delete(user).where(user.c.id == user_id))
    logger.info("Erased user %s: %d threads, %d storage objects", user_id, len(ids), objects)
    return EraseResult(len(ids), objects)


# --- export-user -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    threads: int
    files: int
    missing_files: list[str] = field(default_factory=list)


def _json(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}


async def _thread_document(engine: AsyncEngine, thread_id: str) -> dict[str, Any]:
    """A thread with its steps, elements and feedback, as plain JSON."""
    async with engine.connect() as connection:
        row = (await connection.execute(select(thread).where(thread.c.id == thread_id))).mappings().one()
        steps = await connection.execute(
            select(step).where(step.c.threadId == thread_id).order_by(step.c.createdAt, step.c.id)
        )
        elements = await connection.execute(select(element).where(element.c.threadId == thread_id))
        feedbacks = await connection.execute(
            select(feedback)
            .join(step, step.c.id == feedback.c.stepId)
            .where(step.c.threadId == thread_id)
            .order_by(feedback.c.createdAt)
        )
        return {
            **_json(row),
            "steps": [_json(r) for r in steps.mappings()],
            "elements": [_json(r) for r in elements.mappings()],
            "feedback": [_json(r) for r in feedbacks.mappings()],
        }


async def _copy_object(storage: ElementStorage, key: str, archive: zipfile.ZipFile) -> bool:
    """Write one object into the archive under ``files/``; False when the object is missing."""
    try:
        with archive.open(f"files/{key}", "w") as target:
            async for chunk in storage.read(key):
                target.write(chunk)
    except FileNotFoundError:
        return False
    return True


async def export_user(
    engine: AsyncEngine,
    storage: ElementStorage,
    identifier: str,
    out: Path,
    *,
    progress: Progress = _no_progress,
) -> ExportResult:
    """A zip with ``user.json``, ``threads/<id>.json`` and each element file under ``files/<object key>``."""
    user_id = await _user_id(engine, identifier)
    async with engine.connect() as connection:
        user_row = (await connection.execute(select(user).where(user.c.id == user_id))).mappings().one()
        result = await connection.execute(
            select(thread.c.id).where(thread.c.userId == user_id).order_by(thread.c.createdAt)
        )
        ids = [str(i) for i in result.scalars()]
    files, missing = 0, []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", json.dumps(_json(user_row), indent=2))
        for done, thread_id in enumerate(ids, start=1):
            document = await _thread_document(engine, thread_id)
            archive.writestr(f"threads/{thread_id}.json", json.dumps(document, indent=2))
            for key in (e["objectKey"] for e in document["elements"] if e["objectKey"]):
                if await _copy_object(storage, key, archive):
                    files += 1
                else:
                    missing.append(key)
            progress(done, len(ids))
    return ExportResult(len(ids), files, missing)


# --- sweep -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    orphan_objects: list[str]
    missing_objects: list[tuple[str, str]]  # (element id, object key)
    applied: bool


async def sweep(
    engine: AsyncEngine, storage: ElementStorage, *, apply: bool = False, grace: timedelta = SWEEP_GRACE
) -> SweepResult:
    """Objects no element row points at, and element rows whose object is gone; ``apply`` deletes both.

    Objects younger than ``grace`` are left alone: an upload lands before its element row.
    """
    cutoff = datetime.now(timezone.utc) - grace
    stored = {key: modified async for key, modified in storage.objects()}
    async with engine.connect() as connection:
        result = await connection.execute(
            select(element.c.id, element.c.objectKey).where(element.c.objectKey.is_not(None))
        )
        rows = [(str(r.id), str(r.objectKey)) for r in result]
    referenced = {key for _, key in rows}
    orphans = sorted(key for key, modified in stored.items() if key not in referenced and modified < cutoff)
    missing = [(element_id, key) for element_id, key in rows if key not in stored]
    if apply:
        await storage.delete(orphans)
        async with engine.begin() as connection:
            await connection.execute(delete(element).where(element.c.id.in_([i for i, _ in missing])))
        logger.info("Swept %d orphan objects and %d rows without object", len(orphans), len(missing))
    return SweepResult(orphans, missing, applied=apply)


# --- feedback report ---------------------------------------------------------------------------

FEEDBACK_FIELDS = (
    "feedbackId", "updatedAt", "value", "comment", "threadId", "threadName",
    "userIdentifier", "answerId", "answer", "question",
)  # fmt: skip


async def feedback_report(engine: AsyncEngine, since: datetime) -> list[dict[str, Any]]:
    """Each feedback given or changed since ``since``, with its thread, user, the answer and the question."""
    answer = step.alias("answer")
    question = (
        select(step.c.output)
        .where(
            step.c.threadId == answer.c.threadId,
            step.c.type == "user_message",
            step.c.createdAt <= answer.c.createdAt,
            step.c.id != answer.c.id,
        )
        .order_by(step.c.createdAt.desc(), step.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = (
        feedback.c.id.label("feedbackId"), feedback.c.updatedAt, feedback.c.value, feedback.c.comment,
        answer.c.threadId, thread.c.name.label("threadName"), user.c.identifier.label("userIdentifier"),
        answer.c.id.label("answerId"), answer.c.output.label("answer"), question.label("question"),
    )  # fmt: skip
    statement = (
        select(*columns)
        .select_from(feedback)
        .outerjoin(answer, answer.c.id == feedback.c.stepId)
        .outerjoin(thread, thread.c.id == func.coalesce(feedback.c.threadId, answer.c.threadId))
        .outerjoin(user, user.c.id == thread.c.userId)
        .where(feedback.c.updatedAt >= since)
        .order_by(feedback.c.updatedAt, feedback.c.id)
    )
    async with engine.connect() as connection:
        return [_json(row) for row in (await connection.execute(statement)).mappings()]
