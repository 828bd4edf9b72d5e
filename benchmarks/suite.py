"""The whole benchmark against running services: load, open the contenders, run every workload, report.

Sections: the side-by-side table (reads, writes, concurrent sessions, upload), round trips, adoption
at two sizes (three with ``large``), and with ``large`` this package on a history ten times larger.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aioboto3
import asyncpg
import chainlit.data
from chainlit.context import init_http_context

from tests.services import PostgresServer

from . import adoption, costs, loaders, reads, report, roundtrips, sessions, upload, writes
from . import dataset as ds
from .layers import LABELS, LAYERS, SHAPE, Contender, RawInsert, open_contender, prepare_schema
from .report import Workload
from .services import POSTGRES_SETTINGS, s3_credentials
from .timing import Cell, Plan


@dataclass(frozen=True)
class Mode:
    """How much of everything: ``full`` is issue 4's sizes, ``quick`` a tenth of the history."""

    name: str
    fast_ops: int
    turn_ops: int
    read_ops: int
    reps: int
    sessions: int
    session_turns: int
    session_reps: int
    upload_mb: int
    upload_reps: int


FULL = Mode("full", fast_ops=300, turn_ops=60, read_ops=20, reps=5, sessions=100, session_turns=21,
            session_reps=3, upload_mb=200, upload_reps=3)  # fmt: skip
QUICK = Mode("quick", fast_ops=100, turn_ops=25, read_ops=10, reps=5, sessions=100, session_turns=6,
             session_reps=2, upload_mb=200, upload_reps=2)  # fmt: skip


def log(message: str, *args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] " + message % args, file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (`uptime`): other work on the machine skews every figure."""
    return [round(value, 2) for value in os.getloadavg()]


def describe_scale(scale: ds.Scale) -> str:
    return f"{scale.threads:,} threads / {scale.steps:,} steps"


async def _load(
    postgres: PostgresServer, scale: ds.Scale, layers: dict[str, str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """A database per ``{name: layer}``, each with the layer's schema and the whole history."""
    urls = {name: postgres.create_database(f"bench_{name}") for name in layers}
    for name, url in urls.items():
        await prepare_schema(layers[name], url)
    began = time.perf_counter()
    loads = (loaders.load(urls[name], SHAPE[kind], scale) for name, kind in layers.items())
    counts = await asyncio.gather(*loads)
    seconds = time.perf_counter() - began
    log("loaded %s into %s in %.0f s", describe_scale(scale), ", ".join(layers), seconds)
    return urls, {"seconds": round(seconds, 1), "rows": dict(zip(layers, counts, strict=True))}


async def _postgres_version(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


class Suite:
    """The contenders and the results so far."""

    def __init__(self, mode: Mode, scale: ds.Scale, contenders: list[Contender], raw: RawInsert) -> None:
        self.mode, self.scale, self.contenders, self.raw = mode, scale, contenders, raw
        self.workloads: list[Workload] = []
        self.create_step_costs: list[costs.Cost] = []

    async def add(
        self,
        key: str,
        title: str,
        unit: str,
        run: Callable[[], Awaitable[dict[str, Cell]]],
        higher: bool = False,
    ) -> None:
        log("%s ...", title)
        self.workloads.append(Workload(key, title, unit, higher, await run(), load_average()))

    def plan(self, ops: int, budget_s: float = 3.0) -> Plan:
        return Plan(reps=self.mode.reps, ops=ops, budget_s=budget_s)

    async def reads(self, contenders: list[Contender], prefix: str = "") -> None:
        """get_user (not with a prefix), get_thread and the listings, side by side for ``contenders``."""
        c, m = contenders, self.mode
        if not prefix:
            await self.add("get_user", "get_user", "ms", lambda: reads.get_user(c, self.plan(m.fast_ops)))
        await self.add(f"{prefix}get_thread", "get_thread (200 steps, 10 S3 elements)", "ms",
                       lambda: reads.get_thread(c, self.plan(m.read_ops)))  # fmt: skip
        plan = self.plan(m.read_ops, budget_s=2.0)
        for listing in reads.LISTINGS:
            await self.add(
                f"{prefix}{listing.key}", listing.title, "ms", partial(reads.list_threads, c, plan, listing)
            )

    async def writes(self) -> None:
        c, m = self.contenders, self.mode
        await self.add(
            "create_step", "create_step", "ms", lambda: writes.create_step(c, self.raw, self.plan(m.fast_ops))
        )
        await self.add(
            "chat_turn", "chat turn (4 calls)", "ms", lambda: writes.chat_turns(c, self.plan(m.turn_ops))
        )
        await self.add("update_step", "update_step (streaming, 20 per step)", "ms",
                       lambda: writes.streaming_updates(c, self.plan(m.fast_ops)))  # fmt: skip
        log("create_step, layer by layer ...")
        self.create_step_costs = await costs.create_step_layers(c[0], calls=costs.CALLS)
        log("%d sessions x %d chat turns ...", m.sessions, m.session_turns)
        cells = await sessions.concurrent_sessions(c, m.session_reps, m.sessions, m.session_turns)
        title = f"{m.sessions} sessions x {m.session_turns} turns"
        load = load_average()
        self.workloads += [
            Workload("sessions_p50", f"{title}: awaited calls p50", "ms", False, cells.p50, load),
            Workload("sessions_p99", f"{title}: awaited calls p99", "ms", False, cells.p99, load),
            Workload("sessions_lag", f"{title}: persistence lag p99", "ms", False, cells.lag_p99, load),
        ]

    async def upload(self, endpoint_url: str, workdir: Path) -> None:
        m = self.mode
        log("upload of %d MiB from a path ...", m.upload_mb)
        path = workdir / "large.bin"
        upload.write_file(path, m.upload_mb)
        plan = Plan(reps=m.upload_reps, ops=1, budget_s=0)
        session = aioboto3.Session()
        try:
            async with session.client("s3", **s3_credentials(endpoint_url)) as client:
                await client.create_bucket(Bucket="bench-aioboto3")
                rates, memory = await upload.upload(self.contenders, client, "bench-aioboto3", path, plan)
        finally:
            path.unlink(missing_ok=True)
        load = load_average()
        self.workloads.append(
            Workload("upload_rate", f"upload {m.upload_mb} MiB: throughput", "MiB/s", True, rates, load)
        )
        title = f"upload {m.upload_mb} MiB: peak heap growth"
        self.workloads.append(Workload("upload_memory", title, "MiB", False, memory, load))

    async def growth(self, postgres: PostgresServer, endpoint_url: str, large: ds.Scale) -> dict[str, Any]:
        """This package's reads on the default history and on ``large``, side by side."""
        urls, load = await _load(postgres, large, {"openrag_large": "openrag"})
        bigger = await open_contender("openrag", urls["openrag_large"], endpoint_url, large, "openrag_large")
        try:
            await self.reads([self.contenders[0], bigger], prefix="growth_")
        finally:
            await bigger.close()
            postgres.drop_database("bench_openrag_large")  # its disk space goes to the adoptions
        return load


async def run_suite(
    quick: bool,
    large: bool,
    postgres: PostgresServer,
    endpoint_url: str,
    workdir: Path,
    json_path: Path | None,
) -> str:
    """Run everything; returns the report text (and writes the JSON when asked)."""
    mode, scale = (QUICK, ds.Scale.quick()) if quick else (FULL, ds.Scale.full())
    load_averages = {"start": load_average()}
    urls, load = await _load(postgres, scale, {name: name for name in LAYERS})
    began = time.perf_counter()
    suite, trips, large_load = await _side_by_side(mode, scale, urls, postgres, endpoint_url, workdir, large)
    adoptions = await _adoptions(postgres, scale, large)
    load_averages["end"] = load_average()
    info = report.machine(await _postgres_version(urls["openrag"]))
    context = {
        "machine": info,
        "mode": mode.name,
        "load_average": load_averages,
        "settings": {"mode": asdict(mode), "scale": asdict(scale), "postgresql_conf": POSTGRES_SETTINGS},
        "load": load,
        "large_load": large_load,
        "round_trips": trips,
        "create_step_costs": [asdict(cost) for cost in suite.create_step_costs],
        "adoption": [asdict(a) | {"rows_per_second": a.rows_per_second} for a in adoptions],
        "workloads_seconds": round(time.perf_counter() - began, 1),
    }
    if json_path is not None:
        report.write_json(json_path, suite.workloads, LABELS, context)
    growth = [w for w in suite.workloads if w.key.startswith("growth_")]
    sections = [
        report.header(info, mode.name, load_averages),
        report.table([w for w in suite.workloads if w not in growth], LABELS),
        costs.table(suite.create_step_costs),
        roundtrips.table(trips, list(LAYERS)),
        adoption.table(adoptions),
    ]
    if growth:
        scales = (describe_scale(scale), describe_scale(scale.times(10)))
        sections.append(report.growth_table(growth, LABELS, scales))
    sections.append(report.summary(suite.workloads, LABELS, adoption.missed(adoptions)))
    return "\n\n".join(sections)


async def _side_by_side(
    mode: Mode,
    scale: ds.Scale,
    urls: dict[str, str],
    postgres: PostgresServer,
    endpoint_url: str,
    workdir: Path,
    large: bool,
) -> tuple[Suite, dict[str, dict[str, int]], dict[str, Any] | None]:
    """The contenders on the loaded history: every workload, the round trips, the 10x history."""
    chainlit.data._data_layer = None  # no app-configured layer: nothing but the contenders writes
    chainlit.data._data_layer_initialized = True
    init_http_context()  # Chainlit's write decorators run at once in an HTTP context
    contenders = [await open_contender(name, urls[name], endpoint_url, scale) for name in LAYERS]
    raw = await RawInsert.open(urls["openrag"])
    suite = Suite(mode, scale, contenders, raw)
    try:
        await suite.reads(contenders)
        log("round trips per call ...")
        trips = await roundtrips.round_trips(contenders, urls["openrag"], postgres.log_file, scale)
        await suite.writes()
        await suite.upload(endpoint_url, workdir)
        large_load = await suite.growth(postgres, endpoint_url, scale.times(10)) if large else None
    finally:
        await raw.close()
        for contender in contenders:
            await contender.close()
    return suite, trips, large_load


async def _adoptions(postgres: PostgresServer, scale: ds.Scale, large: bool) -> list[adoption.Adoption]:
    """Adoption at a tenth of the history and at its size (and ten times it with ``large``)."""
    sizes = [scale.divided(10), scale, *([scale.times(10)] if large else [])]
    results = []
    for size in sizes:
        log("adoption of %s (Prisma-shaped, never analyzed) ...", describe_scale(size))
        results.append(await adoption.adopt(postgres, size))
        log("adopted in %s s", results[-1].seconds)
    return results
