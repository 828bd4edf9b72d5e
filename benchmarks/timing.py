"""Repetitions, interleaved across contenders, reduced to medians.

Each repetition runs every contender once, in an order rotated by one each time, so a slow drift of
the machine (caches, WAL, the other core) spreads over all of them instead of favouring one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

# One call of a workload; the argument numbers the calls so each can use fresh ids.
Op = Callable[[int], Awaitable[object]]
# A check after the timed calls: None when the contender did the work, else what went wrong.
Check = Callable[[], Awaitable[str | None]]


@dataclass
class Cell:
    """One contender on one workload: the median of its repetitions, or why it could not run."""

    value: float | None = None
    samples: list[float] = field(default_factory=list)
    calls: int = 0
    failure: str | None = None
    note: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, samples: list[float], calls: int, **extra: float) -> Cell:
        return cls(value=statistics.median(samples), samples=samples, calls=calls, extra=extra)

    @classmethod
    def failed(cls, reason: str) -> Cell:
        return cls(failure=reason)


@dataclass(frozen=True)
class Plan:
    """How much to repeat: ``reps`` repetitions of up to ``ops`` calls, cut at ``budget_s`` seconds."""

    reps: int
    ops: int
    budget_s: float
    warmup: int = 3


def describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__


async def _timed(op: Op, start_at: int, plan: Plan) -> tuple[float, int]:
    """Mean milliseconds per call over one repetition, and how many calls it made."""
    began = time.perf_counter()
    calls = 0
    while calls < plan.ops:
        await op(start_at + calls)
        calls += 1
        if time.perf_counter() - began > plan.budget_s:
            break
    return (time.perf_counter() - began) * 1000 / calls, calls


async def compare(
    ops: Mapping[str, Op], plan: Plan, checks: Mapping[str, Check] | None = None
) -> dict[str, Cell]:
    """Milliseconds per call for each contender (median of ``plan.reps`` repetitions)."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    calls = dict.fromkeys(ops, 0)
    failures: dict[str, str] = {}
    counter = 0
    for name, op in ops.items():
        try:
            for _ in range(plan.warmup):
                await op(counter)
                counter += 1
        except Exception as error:
            failures[name] = describe(error)
    names = list(ops)
    for rep in range(plan.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            if name in failures:
                continue
            try:
                per_call, made = await _timed(ops[name], counter, plan)
            except Exception as error:
                failures[name] = describe(error)
                continue
            counter += made
            samples[name].append(per_call)
            calls[name] += made
    for name, check in (checks or {}).items():
        if name not in failures and (problem := await check()) is not None:
            failures[name] = problem
    return {
        name: Cell.failed(failures[name]) if name in failures else Cell.of(samples[name], calls[name])
        for name in ops
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
