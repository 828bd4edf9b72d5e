"""``sweep``: storage objects no element row points at, and element rows whose object is gone.

Only this package's own keys are looked at, so a bucket shared with other applications is safe, and
nothing touched within the grace period is judged, so an upload in flight is never taken for an orphan.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import any_, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from . import write_queries
from .schema import element
from .storage import ElementStorage

logger = logging.getLogger(__name__)

GRACE = timedelta(hours=1)
# The keys this package writes (``storage.object_key``): ``threads/<id>/files/<id>`` and ``files/<id>``,
# each id one escaped segment. Anything else in the bucket belongs to someone else and is never listed.
OWN_PREFIXES = ("threads/", "files/")
_OWN_KEY = re.compile(r"(threads/[^/]+/)?files/[^/]+")


@dataclass(frozen=True)
class SweepResult:
    """Objects no element points at, and elements whose object is gone; both older than ``cutoff``."""

    orphan_objects: list[str]
    missing_objects: list[tuple[str, str]]  # (element id, object key)
    cutoff: datetime
    applied: bool = False


async def _own_objects(storage: ElementStorage) -> dict[str, datetime]:
    """Every key under this package's prefixes that has the shape of a key it writes."""
    return {
        key: modified
        for prefix in OWN_PREFIXES
        async for key, modified in storage.objects(prefix)
        if _OWN_KEY.fullmatch(key)
    }


async def find(engine: AsyncEngine, storage: ElementStorage, *, grace: timedelta = GRACE) -> SweepResult:
    """Find orphans and elements without object, leaving anything touched within ``grace`` alone.

    Rows are read before the bucket is listed: an upload lands before its row, so a row read here has its
    object in the listing unless the object is really gone. Nothing is deleted; see ``apply``.
    """
    # S3 reports LastModified in whole seconds (an upload at 12:00:00.7 says 12:00:00): a cutoff on a whole
    # second never mistakes an upload made after it for an older one, even with `--min-age 0`.
    cutoff = (datetime.now(timezone.utc) - grace).replace(microsecond=0)
    async with engine.connect() as connection:
        result = await connection.execute(
            select(element.c.id, element.c.objectKey, element.c.updatedAt).where(
                element.c.objectKey.is_not(None)
            )
        )
        rows = list(result)
    stored = await _own_objects(storage)
    referenced = {str(r.objectKey) for r in rows}
    orphans = sorted(key for key, modified in stored.items() if key not in referenced and modified < cutoff)
    missing = [
        (str(r.id), str(r.objectKey))
        for r in rows
        if r.updatedAt < cutoff and _OWN_KEY.fullmatch(r.objectKey) and r.objectKey not in stored
    ]
    return SweepResult(orphans, missing, cutoff)


async def apply(engine: AsyncEngine, storage: ElementStorage, found: SweepResult) -> SweepResult:
    """Delete what ``find`` found, re-checking each item first; returns what was deleted.

    An object is deleted only if it is still there, still older than the cutoff and still unreferenced
    once the bucket has been listed again; an element row only if its object is still absent from that
    listing and the row has not been written since the cutoff (a re-upload keeps it).
    """
    stored = await _own_objects(storage)
    candidates = [key for key in found.orphan_objects if key in stored and stored[key] < found.cutoff]
    async with engine.connect() as connection:
        result = await connection.execute(
            select(element.c.objectKey).where(
                element.c.objectKey == any_(write_queries.text_array(candidates))
            )
        )
        referenced = set(result.scalars())
    orphans = [key for key in candidates if key not in referenced]
    await storage.delete(orphans)
    gone = [(element_id, key) for element_id, key in found.missing_objects if key not in stored]
    async with engine.begin() as connection:
        result = await connection.execute(
            delete(element)
            .where(
                element.c.id == any_(write_queries.text_array([element_id for element_id, _ in gone])),
                element.c.objectKey == any_(write_queries.text_array([key for _, key in gone])),
                element.c.updatedAt < found.cutoff,
            )
            .returning(element.c.id, element.c.objectKey)
        )
        deleted = {(str(r.id), str(r.objectKey)) for r in result}
    missing = [pair for pair in gone if pair in deleted]
    logger.info("Swept %d orphan objects and %d rows without object", len(orphans), len(missing))
    return SweepResult(orphans, missing, found.cutoff, applied=True)
