"""The whole benchmark against running services: load, open the contenders, run every workload, report."""

from __future__ import annotations

import asyncio
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

from . import dataset as ds
from . import loaders, reads, report, roundtrips, upload, writes
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


FULL = Mode("full", fast_ops=300, turn_ops=60, read_ops=20, reps=5, sessions=100, session_turns=20,
            session_reps=3, upload_mb=200, upload_reps=3)  # fmt: skip
QUICK = Mode("quick", fast_ops=100, turn_ops=25, read_ops=10, reps=5, sessions=100, session_turns=4,
             session_reps=2, upload_mb=200, upload_reps=2)  # fmt: skip


def log(message: str, *args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] " + message % args, file=sys.stderr, flush=True)


async def _load(postgres: PostgresServer, scale: ds.Scale) -> tuple[dict[str, str], dict[str, Any]]:
    """A database per layer, each with its schema and the whole history."""
    urls = {name: postgres.create_database(f"bench_{name}") for name in LAYERS}
    for name, url in urls.items():
        await prepare_schema(name, url)
    began = time.perf_counter()
    counts = await asyncio.gather(*(loaders.load(urls[name], SHAPE[name], scale) for name in LAYERS))
    seconds = time.perf_counter() - began
    log("loaded %s threads and %s steps into each schema in %.0f s", scale.threads, scale.steps, seconds)
    return urls, {"seconds": round(seconds, 1), "rows": dict(zip(LAYERS, counts, strict=True))}


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

    async def add(
        self,
        key: str,
        title: str,
        unit: str,
        run: Callable[[], Awaitable[dict[str, Cell]]],
        higher: bool = False,
    ) -> None:
        log("%s ...", title)
        self.workloads.append(Workload(key, title, unit, higher, await run()))

    def plan(self, ops: int, budget_s: float = 3.0) -> Plan:
        return Plan(reps=self.mode.reps, ops=ops, budget_s=budget_s)

    async def reads(self) -> None:
        c, m, s = self.contenders, self.mode, self.scale
        await self.add("get_user", "get_user", "ms", lambda: reads.get_user(c, self.plan(m.fast_ops)))
        await self.add("get_thread", "get_thread (200 steps, 10 S3 elements)", "ms",
                       lambda: reads.get_thread(c, self.plan(m.read_ops), s))  # fmt: skip
        plan = self.plan(m.read_ops, budget_s=2.0)
        for listing in reads.LISTINGS:
            await self.add(listing.key, listing.title, "ms", partial(reads.list_threads, c, plan, s, listing))

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
        log("%d sessions x %d chat turns ...", m.sessions, m.session_turns)
        rates, p99s = await writes.concurrent_sessions(c, m.session_reps, m.sessions, m.session_turns)
        title = f"{m.sessions} sessions x {m.session_turns} turns"
        self.workloads.append(Workload("sessions_rate", f"{title}: throughput", "turns/s", True, rates))
        self.workloads.append(Workload("sessions_p99", f"{title}: p99 per call", "ms", False, p99s))

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
        self.workloads.append(
            Workload("upload_rate", f"upload {m.upload_mb} MiB: throughput", "MiB/s", True, rates)
        )
        title = f"upload {m.upload_mb} MiB: peak heap growth"
        self.workloads.append(Workload("upload_memory", title, "MiB", False, memory))


async def run_suite(
    quick: bool, postgres: PostgresServer, endpoint_url: str, workdir: Path, json_path: Path | None
) -> str:
    """Run everything; returns the report text (and writes the JSON when asked)."""
    mode, scale = (QUICK, ds.Scale.quick()) if quick else (FULL, ds.Scale.full())
    urls, load = await _load(postgres, scale)
    chainlit.data._data_layer = None  # no app-configured layer: nothing but the contenders writes
    chainlit.data._data_layer_initialized = True
    init_http_context()  # Chainlit's write decorators run at once in an HTTP context
    contenders = [await open_contender(name, urls[name], endpoint_url, scale) for name in LAYERS]
    raw = await RawInsert.open(urls["openrag"])
    suite = Suite(mode, scale, contenders, raw)
    began = time.perf_counter()
    try:
        await suite.reads()
        log("round trips per call ...")
        trips = await roundtrips.round_trips(contenders, urls["openrag"], postgres.log_file, scale)
        await suite.writes()
        await suite.upload(endpoint_url, workdir)
    finally:
        await raw.close()
        for contender in contenders:
            await contender.close()
    info = report.machine(await _postgres_version(urls["openrag"]))
    context = {
        "machine": info,
        "mode": mode.name,
        "settings": {"mode": asdict(mode), "scale": asdict(scale), "postgresql_conf": POSTGRES_SETTINGS},
        "load": load,
        "round_trips": trips,
        "workloads_seconds": round(time.perf_counter() - began, 1),
    }
    if json_path is not None:
        report.write_json(json_path, suite.workloads, LABELS, context)
    return "\n\n".join([
        report.header(info, mode.name),
        report.table(suite.workloads, LABELS),
        roundtrips.table(trips, list(LAYERS)),
        report.summary(suite.workloads, LABELS),
    ])  # fmt: skip
