"""Round trips per Chainlit call, counted in PostgreSQL's own log, in steady state.

With ``log_min_duration_statement = 0`` the server logs one line per protocol step: ``bind`` and
``execute`` (one round trip together), ``statement`` (a simple query: ``BEGIN``, ``COMMIT``, the
asyncpg pool's reset on release) and ``parse`` (preparing a statement). Round trips = execute +
statement lines. Parses are left out: a statement is prepared once per pooled connection, then reused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import asyncpg
from chainlit.types import Pagination, ThreadFilter

from . import dataset as ds
from .layers import LABELS, Contender
from .writes import chat_turn, message, run_step, writer_thread

_STEP = re.compile(r"duration: [\d.]+ ms  (parse|bind|execute|statement)\b")
SETTLE_S = 0.1  # backends write their log line as the statement ends; give the file a moment

Call = Callable[[], Awaitable[object]]


async def _set_logging(admin_url: str, on: bool) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        if on:
            await connection.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
        else:
            await connection.execute("ALTER SYSTEM RESET log_min_duration_statement")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()
    await asyncio.sleep(0.5)


async def _count(log_file: Path, call: Call) -> int:
    start = log_file.stat().st_size  # noqa: ASYNC240 (a stat between untimed calls)
    await call()
    await asyncio.sleep(SETTLE_S)
    with log_file.open() as log:
        log.seek(start)
        steps = _STEP.findall(log.read())
    return sum(1 for step in steps if step in ("execute", "statement"))


def _calls(contender: Contender, thread_id: str, scale: ds.Scale) -> dict[str, Call]:
    layer = contender.layer
    run_id, answer_id = str(uuid4()), str(uuid4())
    page = Pagination(first=20)
    mine = ThreadFilter(userId=ds.user_id(0))
    return {
        "get_user": lambda: layer.get_user(ds.USER_IDENTIFIER),
        "get_thread (200 steps, 10 elements)": lambda: layer.get_thread(ds.thread_id(scale.big_thread)),
        "list_threads first page": lambda: layer.list_threads(page, mine),
        "create_step (user message)": lambda: layer.create_step(
            message(str(uuid4()), thread_id, "user_message", "Hello")
        ),
        "create_step (run step)": lambda: layer.create_step(run_step(run_id, thread_id)),
        "create_step (message with a parent)": lambda: layer.create_step(
            message(answer_id, thread_id, "assistant_message", "", run_id)
        ),
        "update_step (message with a parent)": lambda: layer.update_step(
            message(answer_id, thread_id, "assistant_message", "Done.", run_id)
        ),
        "chat turn (4 calls)": lambda: chat_turn(contender, thread_id),
    }


async def round_trips(
    contenders: list[Contender], admin_url: str, log_file: Path, scale: ds.Scale
) -> dict[str, dict[str, int]]:
    """``{call: {contender: round trips}}`` for the main Chainlit calls."""
    threads = {c.name: await writer_thread(c) for c in contenders}
    for contender in contenders:  # warm-up: pools open, statements compiled
        for call in _calls(contender, threads[contender.name], scale).values():
            await call()
    counts: dict[str, dict[str, int]] = {}
    await _set_logging(admin_url, on=True)
    try:
        for contender in contenders:
            for name, call in _calls(contender, threads[contender.name], scale).items():
                counts.setdefault(name, {})[contender.name] = await _count(log_file, call)
    finally:
        await _set_logging(admin_url, on=False)
    return counts


def table(counts: dict[str, dict[str, int]], names: list[str]) -> str:
    lines = [
        "| round trips per call | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for call, by_name in counts.items():
        lines.append(f"| {call} | " + " | ".join(str(by_name.get(n, "")) for n in names) + " |")
    return "\n".join(lines)
