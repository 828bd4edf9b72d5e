"""Concurrent chat sessions shaped like Chainlit's traffic: what users wait on, and how late writes land.

Each of ``sessions`` sessions is one user chatting in a thread of its own, for ``turns`` turns. A turn
awaits ``get_user`` (Chainlit authenticates every HTTP request and websocket connect through it) and
``update_thread`` (awaited by Chainlit's first-interaction handler), then fires its four writes as
unawaited tasks, as Chainlit does (user message, run step, assistant message created empty, then
updated), then thinks for 20-60 ms; every third turn also awaits ``list_threads`` (the sidebar) and
``get_thread`` (a resume). Reported: p50 and p99 of the awaited calls, and the p99 persistence lag of
the fired writes (from the call to the write being committed: the task's completion, for every layer).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from uuid import uuid4

from chainlit.types import Pagination, ThreadFilter

from . import dataset as ds
from .layers import Contender
from .timing import Cell, describe, percentile
from .writes import ANSWER, message, run_step, writer_thread

THINK_S = (0.020, 0.060)
READ_EVERY = 3
KINDS = ("get_user", "update_thread", "list_threads", "get_thread")


@dataclass
class Latencies:
    """Milliseconds per awaited call (by kind) and per fired write, for one run."""

    awaited: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    lags: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    fired: set[asyncio.Task[None]] = field(default_factory=set)
    failed_writes: list[str] = field(default_factory=list)

    async def wait(self, kind: str, call: Awaitable[object]) -> None:
        began = time.perf_counter()
        await call
        self.awaited[kind].append((time.perf_counter() - began) * 1000)

    def fire(self, write: Awaitable[object]) -> None:
        """Start ``write`` as a task nobody awaits, as Chainlit does, and time it until it is done."""
        began = time.perf_counter()

        async def timed() -> None:
            try:
                await write
            except Exception as error:
                self.failed_writes.append(describe(error))
            else:
                self.lags.append((time.perf_counter() - began) * 1000)

        task = asyncio.create_task(timed())
        self.fired.add(task)
        task.add_done_callback(self.fired.discard)

    @property
    def all_awaited(self) -> list[float]:
        return [ms for values in self.awaited.values() for ms in values]


async def _session(
    contender: Contender, thread_id: str, turns: int, seen: Latencies, rng: random.Random
) -> None:
    layer = contender.layer
    listing = (Pagination(first=20), ThreadFilter(userId=ds.user_id(1)))
    for turn in range(turns):
        await seen.wait("get_user", layer.get_user(ds.WRITER_IDENTIFIER))
        await seen.wait("update_thread", layer.update_thread(thread_id, name="Load", user_id=ds.user_id(1)))
        run_id, answer_id = str(uuid4()), str(uuid4())
        seen.fire(layer.create_step(message(str(uuid4()), thread_id, "user_message", "And then?")))
        seen.fire(layer.create_step(run_step(run_id, thread_id)))
        seen.fire(layer.create_step(message(answer_id, thread_id, "assistant_message", "", run_id)))
        seen.fire(layer.update_step(message(answer_id, thread_id, "assistant_message", ANSWER, run_id)))
        seen.answers.append(answer_id)
        await asyncio.sleep(rng.uniform(*THINK_S))
        if turn % READ_EVERY == READ_EVERY - 1:
            await seen.wait("list_threads", layer.list_threads(*listing))
            await seen.wait("get_thread", layer.get_thread(thread_id))


async def _run(contender: Contender, sessions: int, turns: int, seed: int) -> Latencies:
    """One run; on the first failed call the other sessions and their writes are cancelled, so that
    nothing of this contender still runs while the next one is measured."""
    threads = [await writer_thread(contender) for _ in range(sessions)]
    seen = Latencies()
    rng = random.Random(seed)
    runs = [asyncio.create_task(_session(contender, thread_id, turns, seen, rng)) for thread_id in threads]
    try:
        await asyncio.gather(*runs)
    except Exception:
        for task in [*runs, *seen.fired]:
            task.cancel()
        raise
    finally:
        await asyncio.gather(*runs, *seen.fired, return_exceptions=True)
    if seen.failed_writes:
        raise RuntimeError(f"{len(seen.failed_writes)} fired writes failed, first: {seen.failed_writes[0]}")
    if (stored := await contender.count_steps(seen.answers)) != len(seen.answers):
        raise RuntimeError(f"only {stored} of {len(seen.answers)} answers reached the database")
    return seen


@dataclass
class SessionCells:
    """The three rows this workload adds to the table, one cell per contender each."""

    p50: dict[str, Cell] = field(default_factory=dict)
    p99: dict[str, Cell] = field(default_factory=dict)
    lag_p99: dict[str, Cell] = field(default_factory=dict)


async def concurrent_sessions(
    contenders: list[Contender], reps: int, sessions: int, turns: int
) -> SessionCells:
    """Medians over ``reps`` runs (contenders in rotated order) of p50/p99 awaited and p99 lag."""
    samples: dict[str, list[Latencies]] = {c.name: [] for c in contenders}
    failures: dict[str, str] = {}
    for rep in range(reps):
        for contender in contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]:
            if contender.name not in failures:
                try:
                    samples[contender.name].append(await _run(contender, sessions, turns, seed=rep))
                except Exception as error:
                    failures[contender.name] = describe(error)
    cells = SessionCells()
    for name, runs in samples.items():
        if name in failures:
            cells.p50[name] = cells.p99[name] = cells.lag_p99[name] = Cell.failed(failures[name])
            continue
        calls = sum(len(run.all_awaited) for run in runs)
        by_kind = {
            f"p99_{kind}_ms": percentile([ms for run in runs for ms in run.awaited[kind]], 0.99)
            for kind in KINDS
        }
        cells.p50[name] = Cell.of([percentile(run.all_awaited, 0.5) for run in runs], calls)
        cells.p99[name] = Cell.of([percentile(run.all_awaited, 0.99) for run in runs], calls, **by_kind)
        writes = sum(len(run.lags) for run in runs)
        cells.lag_p99[name] = Cell.of([percentile(run.lags, 0.99) for run in runs], writes)
    return cells
