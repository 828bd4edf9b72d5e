"""Adoption time: a Prisma-shaped history bulk-loaded and never analyzed (as ``pg_restore`` leaves it),
then ``upgrade``, at several sizes. Each size gets a database of its own, dropped afterwards.

Issue 11's targets: 1,000,000 steps in 60 s at most, and ten times the data in at most twelve times the
time. The phases (each table's copy, the index rebuild, each revision) come from ``upgrade``'s own
progress lines, timed as they arrive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg

from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.prisma_schema import create_prisma_schema
from tests.services import PostgresServer

from . import dataset as ds
from . import loaders
from .timing import describe

ONE_MILLION_LIMIT_S = 60.0  # 1,000,000 steps
GROWTH_LIMIT = 12.0  # time ratio for ten times the data


@dataclass
class Adoption:
    """One size: the rows adopted, the seconds it took, and when each progress line arrived."""

    threads: int
    steps: int
    rows: int = 0
    seconds: float | None = None
    load_seconds: float = 0.0
    phases: list[tuple[float, str]] = field(default_factory=list)
    failure: str | None = None

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None


async def _row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        tables = ("User", "Thread", "Step", "Element", "Feedback")
        return {t: int(await connection.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}  # noqa: S608
    finally:
        await connection.close()


async def adopt(postgres: PostgresServer, scale: ds.Scale) -> Adoption:
    """Load ``scale`` into a fresh Prisma-shaped database without statistics, then time ``upgrade``."""
    result = Adoption(scale.threads, scale.steps)
    name = f"bench_adopt_{scale.threads}"
    url = postgres.create_database(name)
    try:
        await create_prisma_schema(url)
        began = time.perf_counter()
        loaded = await loaders.load(url, "prisma", scale, analyze=False)
        result.load_seconds = time.perf_counter() - began
        began = time.perf_counter()
        await upgrade_async(
            url, progress=lambda line: result.phases.append((time.perf_counter() - began, line))
        )
        seconds = time.perf_counter() - began
        adopted = await _row_counts(url)
        if adopted != loaded:
            result.failure = f"rows changed: {loaded} before, {adopted} after"
        else:
            result.seconds, result.rows = seconds, sum(adopted.values())
    except Exception as error:
        result.failure = describe(error)
    finally:
        postgres.drop_database(name)
    return result


def table(adoptions: list[Adoption]) -> str:
    """Markdown: one row per size, with the time ratio to the size ten times smaller and the targets."""
    lines = [
        "| adoption (Prisma-shaped, never analyzed) | time | rows/s | vs a tenth of it | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for adoption in adoptions:
        title = f"{adoption.threads:,} threads / {adoption.steps:,} steps"
        if adoption.seconds is None:
            lines.append(f"| {title} | **{adoption.failure}** | | | | **NO** |")
            continue
        rate = f"{adoption.rows_per_second:,.0f}" if adoption.rows_per_second else ""
        values = [title, f"{adoption.seconds:.1f} s", rate]
        for ratio, target, met in verdicts(adoption, adoptions) or [("", "", None)]:
            judged = "" if met is None else "yes" if met else "**NO**"
            lines.append("| " + " | ".join([*values, ratio, target, judged]) + " |")
            values = ["", "", ""]
    return "\n".join(lines)


def verdicts(adoption: Adoption, adoptions: list[Adoption]) -> list[tuple[str, str, bool | None]]:
    """(ratio, target, met) for each target that applies to this size."""
    found: list[tuple[str, str, bool | None]] = []
    if adoption.seconds is None:
        return found
    if adoption.steps == 1_000_000:
        found.append(("", f"<= {ONE_MILLION_LIMIT_S:.0f} s", adoption.seconds <= ONE_MILLION_LIMIT_S))
    tenth = next((a for a in adoptions if a.steps * 10 == adoption.steps and a.seconds), None)
    if tenth is not None and tenth.seconds:
        ratio = adoption.seconds / tenth.seconds
        found.append((f"{ratio:.1f}x", f"<= {GROWTH_LIMIT:g}x", ratio <= GROWTH_LIMIT))
    return found


def missed(adoptions: list[Adoption]) -> list[str]:
    """One line per target this run missed."""
    lines = []
    for adoption in adoptions:
        if adoption.seconds is None:
            lines.append(f"adoption of {adoption.steps:,} steps: {adoption.failure}")
        for ratio, target, met in verdicts(adoption, adoptions):
            if met is False:
                lines.append(
                    f"adoption of {adoption.steps:,} steps: {target}, measured {ratio or adoption.seconds}"
                )
    return lines
