"""Where ``create_step``'s time goes: the same new user message written five ways, each adding one layer.

1. one raw asyncpg INSERT of the row (prepared, one connection): the floor;
2. this package's step upsert without a thread (merge rules only), prepared on a held connection, its
   arguments made once (only the id changes), like the raw INSERT's;
3. the full statement: the step upsert, the thread-activity upsert and the deleted-thread guards;
4. ``Database.execute``: the same through the pool (acquire, release) and the parameter conversion;
5. ``create_step``: Chainlit's queue decorator, the step dict's conversion and the per-thread sequencer.

Per call: wall time, this process's CPU time and the database backends' CPU time (``/proc/<pid>/stat``),
so that a busy machine, which inflates the wall time, still shows which layer costs what.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from chainlit.step import StepDict

from chainlit_openrag_datalayer import OpenRAGDataLayer, convert, write_queries

from .layers import RAW_INSERT, Contender
from .writes import message, writer_thread

QUESTION = "What does the contract say?"
CALLS = 2000  # per repetition: /proc counts CPU in 10 ms ticks, so 5 µs per call at this count
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cost:
    """Microseconds per call."""

    label: str
    wall_us: float
    client_cpu_us: float
    server_cpu_us: float

    @property
    def cpu_us(self) -> float:
        return self.client_cpu_us + self.server_cpu_us


def _backend_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


async def _cost(label: str, op: Callable[[], Awaitable[Any]], probe: asyncpg.Connection, calls: int) -> Cost:
    """The median of three repetitions of ``calls`` calls, after a warm-up."""
    for _ in range(50):
        await op()
    samples = []
    for _ in range(3):
        query = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in await probe.fetch(query)]
        wall, cpu, server = time.perf_counter(), time.process_time(), _backend_cpu_seconds(pids)
        for _ in range(calls):
            await op()
        samples.append((
            (time.perf_counter() - wall) / calls * 1e6,
            (time.process_time() - cpu) / calls * 1e6,
            (_backend_cpu_seconds(pids) - server) / calls * 1e6,
        ))  # fmt: skip
    wall_us, client_us, server_us = (statistics.median(column) for column in zip(*samples, strict=True))
    return Cost(label, wall_us, client_us, server_us)


async def create_step_layers(contender: Contender, calls: int) -> list[Cost]:
    """The five ways, in order, on ``contender``'s database (this package's layer)."""
    layer = contender.layer
    assert isinstance(layer, OpenRAGDataLayer) and contender.probe is not None
    thread_id = await writer_thread(contender)
    database = layer.database
    statements = {
        with_thread: database.compiled(write_queries.step_upsert(with_thread))
        for with_thread in (False, True)
    }

    def step() -> StepDict:
        return message(str(uuid4()), thread_id, "user_message", QUESTION)

    template = convert.step_params(step())

    connection = await asyncpg.connect(contender.database_url)
    held = await (await database.pool()).acquire()
    try:
        raw = await connection.prepare(RAW_INSERT)
        prepared = {key: await held.prepare(compiled.sql) for key, compiled in statements.items()}

        async def raw_insert() -> None:
            at = datetime.now(timezone.utc)
            await raw.fetch(str(uuid4()), thread_id, None, "User", "user_message", "", QUESTION, "{}", "json",
                            False, at, at, at)  # fmt: skip

        def statement(with_thread: bool) -> Callable[[], Awaitable[Any]]:
            compiled = statements[with_thread]
            arguments, id_at = compiled.arguments(template), compiled.names.index("id")

            async def fetch() -> None:
                arguments[id_at] = str(uuid4())
                await prepared[with_thread].fetch(*arguments)

            return fetch

        ways: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("raw asyncpg INSERT", raw_insert),
            ("step upsert, no thread", statement(False)),
            ("+ thread activity and deleted-thread guards", statement(True)),
            ("+ pool and parameter conversion (Database.execute)",
             lambda: database.execute(write_queries.step_upsert(True), {**template, "id": str(uuid4())})),
            ("+ queue decorator, step dict, sequencer (create_step)", lambda: layer.create_step(step())),
        ]  # fmt: skip
        return [await _cost(label, op, contender.probe, calls) for label, op in ways]
    finally:
        await (await database.pool()).release(held)
        await connection.close()


def table(costs: list[Cost]) -> str:
    """Markdown: each way's microseconds per call, and its ratios to the raw INSERT (wall, and CPU: the
    ratio a busy machine distorts least)."""
    floor = costs[0]
    lines = [
        "| create_step, layer by layer | wall | client CPU | database CPU | wall vs raw | CPU vs raw |",
        "|---|---|---|---|---|---|",
    ]
    for cost in costs:
        figures = (cost.wall_us, cost.client_cpu_us, cost.server_cpu_us)
        ratios = (cost.wall_us / floor.wall_us, cost.cpu_us / floor.cpu_us)
        cells = [cost.label, *(f"{us:.0f} µs" for us in figures), *(f"{ratio:.2f}x" for ratio in ratios)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
