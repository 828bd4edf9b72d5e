"""Upload of a large element from a path: throughput, and peak memory growth of this process.

Every contender writes the same object key on each call (so the S3 server keeps one copy). Memory is
measured on one extra call per contender, apart from the timed ones: ``tracemalloc`` (Python heap,
the target) and the growth of the resident set's high-water mark (``/proc/self/clear_refs``).
"""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path
from typing import Any

import chainlit as cl

from .layers import Contender
from .timing import Cell, Check, Op, Plan, compare, describe
from .writes import message, writer_thread

MB = 1024 * 1024
ELEMENT_ID = "00000000-0000-4000-8000-0000000000ee"


def write_file(path: Path, size_mb: int) -> None:
    """``size_mb`` MiB of incompressible bytes."""
    with path.open("wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(MB))


async def _element_op(contender: Contender, path: Path) -> Op:
    thread_id = await writer_thread(contender)
    step_id = ELEMENT_ID.replace("ee", "ef")
    await contender.layer.create_step(message(step_id, thread_id, "assistant_message", "Here is the file."))

    async def op(i: int) -> None:
        element = cl.File(id=ELEMENT_ID, name="large.bin", path=str(path), mime="application/octet-stream",
                          thread_id=thread_id, for_id=step_id)  # fmt: skip
        await contender.layer.create_element(element)

    return op


def _plain_op(client: Any, bucket: str, path: Path) -> Op:
    async def op(i: int) -> None:
        await client.upload_file(str(path), bucket, "plain/large.bin")

    return op


def _stored_check(client: Any, bucket: str, size: int) -> Check:
    """The layer really uploaded the file (Chainlit's S3 client logs upload errors and goes on)."""

    async def check() -> str | None:
        listing = await client.list_objects_v2(Bucket=bucket)
        if any(item["Size"] == size for item in listing.get("Contents", [])):
            return None
        return "fails: the file is not in the bucket"

    return check


def _reset_peak_rss() -> None:
    """Set VmHWM back to the current resident size (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


async def _memory(op: Op) -> tuple[float, float]:
    """MiB: peak Python heap growth (tracemalloc) and resident high-water-mark growth, for one call."""
    _reset_peak_rss()
    before = _rss_kib("VmRSS")
    await op(0)
    rss_growth = (_rss_kib("VmHWM") - before) / 1024
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await op(1)
        heap_growth = (tracemalloc.get_traced_memory()[1] - baseline) / MB
    finally:
        tracemalloc.stop()
    return heap_growth, rss_growth


async def upload(
    contenders: list[Contender], client: Any, bucket: str, path: Path, plan: Plan
) -> tuple[dict[str, Cell], dict[str, Cell]]:
    """MiB/s (median) and peak memory growth in MiB, per contender and for plain aioboto3."""
    size = path.stat().st_size  # noqa: ASYNC240 (a stat, before anything is timed)
    ops: dict[str, Op] = {c.name: await _element_op(c, path) for c in contenders}
    ops["aioboto3"] = _plain_op(client, bucket, path)
    memory: dict[str, Cell] = {}
    for name, op in ops.items():
        try:
            heap, rss = await _memory(op)
            memory[name] = Cell.of([heap], 1, rss_growth_mib=rss)
        except Exception as error:
            memory[name] = Cell.failed(describe(error))
    checks = {c.name: _stored_check(client, c.bucket, size) for c in contenders}
    timed = await compare(ops, Plan(plan.reps, plan.ops, plan.budget_s, warmup=0), checks)
    throughput = {}
    for name, cell in timed.items():
        if cell.value is None:
            throughput[name] = cell
        else:
            throughput[name] = Cell.of([size / MB * 1000 / ms for ms in cell.samples], cell.calls)
    return throughput, memory
