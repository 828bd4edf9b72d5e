"""Operations on a running deployment: retention, data-subject requests, feedback review (sweeps: ``sweep``).

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
from urllib.parse import quote

from sqlalchemy import RowMapping, any_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from . import write_queries
from .errors import DataLayerError
from .schema import element, feedback, step, thread, user
from .storage import ElementStorage, thread_prefix

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


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
            result = await connection.execute(write_queries.thread_delete(), {"threadId": thread_id})
            keys = [str(key) for key in result.scalars()]
        await storage.delete(keys)
        removed += len(keys)
        progress(done, len(thread_ids))
    return removed


# --- purge -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadSummary:
    """One thread as ``purge`` lists it before deleting."""

    id: str
    owner: str | None  # the user's identifier
    name: str | None
    updated_at: datetime


@dataclass(frozen=True)
class PurgePlan:
    """The threads idle since before ``cutoff``, and how many stored files they hold."""

    cutoff: datetime
    threads: list[ThreadSummary]
    objects: int


@dataclass(frozen=True)
class PurgeResult:
    threads: int
    objects: int


async def purge_plan(
    engine: AsyncEngine, older_than: timedelta, *, user_identifier: str | None = None
) -> PurgePlan:
    """The threads whose last activity (``"updatedAt"``) is older than ``older_than``, oldest first."""
    cutoff = datetime.now(timezone.utc) - older_than
    condition = thread.c.updatedAt < cutoff
    if user_identifier is not None:
        condition = condition & (thread.c.userId == await _user_id(engine, user_identifier))
    listed = (
        select(thread.c.id, user.c.identifier, thread.c.name, thread.c.updatedAt)
        .select_from(thread.outerjoin(user, user.c.id == thread.c.userId))
        .where(condition)
        .order_by(thread.c.updatedAt, thread.c.id)
    )
    files = (
        select(func.count(element.c.objectKey))
        .join(thread, thread.c.id == element.c.threadId)
        .where(condition)
    )
    async with engine.connect() as connection:
        rows = await connection.execute(listed)
        threads = [ThreadSummary(str(r.id), r.identifier, r.name, r.updatedAt) for r in rows]
        objects = await connection.scalar(files)
    return PurgePlan(cutoff, threads, int(objects or 0))


async def purge(
    engine: AsyncEngine, storage: ElementStorage, plan: PurgePlan, *, progress: Progress = _no_progress
) -> PurgeResult:
    """Delete the planned threads that are still idle since before the plan's cutoff (a thread that
    came back to life after the plan was listed is kept)."""
    still_idle = (
        select(thread.c.id)
        .where(
            thread.c.id == any_(write_queries.text_array([t.id for t in plan.threads])),
            thread.c.updatedAt < plan.cutoff,
        )
        .order_by(thread.c.updatedAt, thread.c.id)
    )
    async with engine.connect() as connection:
        ids = [str(i) for i in (await connection.execute(still_idle)).scalars()]
    objects_removed = await _delete_threads(engine, storage, ids, progress)
    logger.info(
        "Purged %d threads and %d storage objects older than %s", len(ids), objects_removed, plan.cutoff
    )
    return PurgeResult(len(ids), objects_removed)


# --- erase-user --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EraseResult:
    threads: int
    objects: int


async def erase_overview(engine: AsyncEngine, identifier: str) -> EraseResult:
    """What ``erase_user`` would delete: the user's threads and the stored files their elements point at."""
    user_id = await _user_id(engine, identifier)
    files = select(func.count(element.c.objectKey)).join(thread, thread.c.id == element.c.threadId)
    async with engine.connect() as connection:
        threads = await connection.scalar(
            select(func.count()).select_from(thread).where(thread.c.userId == user_id)
        )
        objects = await connection.scalar(files.where(thread.c.userId == user_id))
    return EraseResult(int(threads or 0), int(objects or 0))


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
    """Write one object into the archive; False (and no entry) when the object is missing."""
    chunks = aiter(storage.read(key))
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError:
        return False
    with archive.open(_file_entry(key), "w") as target:
        target.write(first)
        async for chunk in chunks:
            target.write(chunk)
    return True


def _thread_entry(thread_id: str) -> str:
    """``threads/<id>.json`` with the id escaped as in object keys: one entry name, never a path out."""
    return thread_prefix(thread_id).removesuffix("/") + ".json"


def _file_entry(key: str) -> str:
    """``files/<object key>``; a key (from an adopted database) with an empty, ``.`` or ``..`` segment, a
    backslash or a control character becomes one percent-encoded name."""
    segments = key.split("/")
    unsafe = any(s in ("", ".", "..") for s in segments) or any(c == "\\" or not c.isprintable() for c in key)
    return f"files/{quote(key, safe='') if unsafe else key}"


async def export_user(
    engine: AsyncEngine,
    storage: ElementStorage,
    identifier: str,
    out: Path,
    *,
    progress: Progress = _no_progress,
) -> ExportResult:
    """A zip with ``user.json``, ``threads/<id>.json`` and each element file under ``files/<object key>``.

    Entry names come from escaped ids and keys, so no entry can point outside the folder it is unpacked in;
    a missing object gets no entry and is listed in ``missing_files``.
    """
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
            archive.writestr(_thread_entry(thread_id), json.dumps(document, indent=2))
            for key in (e["objectKey"] for e in document["elements"] if e["objectKey"]):
                if await _copy_object(storage, key, archive):
                    files += 1
                else:
                    missing.append(key)
            progress(done, len(ids))
    return ExportResult(len(ids), files, missing)


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
