"""Per-thread ordering for the writes Chainlit fires and forgets, each retried (``retry``).

Chainlit starts ``create_step``/``update_step``/``create_element`` as unawaited tasks, in call
order. Each write takes its thread's FIFO lock before its first ``await``, so a thread's writes
reach the database in the order Chainlit issued them. Every write is an idempotent merge, so a write
the event loop's shutdown cut short can simply run again (``drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import WriteQueueFullError, log_safe
from .retry import RetryPolicy, retrying

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(order=True)
class _Interrupted:
    """A write cancelled before it finished, to run again; ordered as it was issued."""

    issued: int
    thread: str = field(compare=False)
    action: str = field(compare=False)
    subject: str = field(compare=False)
    work: Callable[[], Awaitable[Any]] = field(compare=False)


class WriteSequencer:
    """One FIFO lock per thread: a thread's writes run one at a time, in call order."""

    def __init__(
        self, policy: RetryPolicy, max_pending: int = 10_000, max_pending_bytes: int = 2**27
    ) -> None:
        self.policy = policy
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.pending = 0
        self.pending_bytes = 0
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._issued = itertools.count()
        self._interrupted: list[_Interrupted] = []
        self._running: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def run(
        self,
        thread_id: str | None,
        action: str,
        subject: str,
        work: Callable[[], Awaitable[T]],
        size: int = 0,
    ) -> T:
        """Queue ``work`` (holding about ``size`` bytes) behind the thread's earlier writes, then run it
        with retries. Past either bound the write is refused; a write alone in the queue always goes."""
        self._refuse_past_bounds(action, subject, size)
        self.pending += 1
        self.pending_bytes += size
        self._idle.clear()
        issued, thread = next(self._issued), thread_id or ""
        lock = self._acquire_lock(thread)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            async with lock:
                return await retrying(self.policy, action, subject, work)
        except asyncio.CancelledError:  # the event loop ending, or drain() giving up on it
            self._interrupted.append(_Interrupted(issued, thread, action, subject, work))
            raise
        except Exception as error:
            logger.error("%s for %s failed (%s); the write is lost", action, subject, log_safe(error))
            raise
        finally:
            self._running.discard(task)
            self.pending -= 1
            self.pending_bytes -= size
            if not self.pending:
                self._idle.set()
            self._release_lock(thread)

    def _refuse_past_bounds(self, action: str, subject: str, size: int) -> None:
        """Raise ``WriteQueueFullError`` (logged, ids only) when this write would pass either bound."""
        over_bytes = self.pending and self.pending_bytes + size > self.max_pending_bytes
        if self.pending < self.max_pending and not over_bytes:
            return
        logger.error(
            "%s for %s refused: %d writes (%d MiB) are already waiting (the database or storage has "
            "been down too long); this write is lost",
            action, subject, self.pending, self.pending_bytes >> 20,
        )  # fmt: skip
        raise WriteQueueFullError(
            f"{self.pending} writes ({self.pending_bytes} bytes) are waiting: the database or storage "
            "has been unreachable too long. Bring it back; MAX_PENDING_WRITES and MAX_PENDING_WRITE_MB "
            "set how many may wait."
        )

    async def drain(self, timeout: float) -> None:
        """Let running writes finish, then run the cancelled ones again, each thread's in issue order, for
        ``timeout`` seconds at most; then cancel what is left and log it as lost."""
        loop = asyncio.get_running_loop()
        deadline, running = loop.time() + timeout, self.pending
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        interrupted, self._interrupted = sorted(self._interrupted), []
        threads: dict[str, list[_Interrupted]] = {}
        for write in interrupted:
            threads.setdefault(write.thread, []).append(write)
        reruns = [asyncio.ensure_future(self._rerun(writes)) for writes in threads.values()]
        if reruns:
            await asyncio.wait(reruns, timeout=max(deadline - loop.time(), 0))
        late = [*reruns, *self._running]
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        lost = [write.subject for writes in threads.values() for write in writes]
        lost += [write.subject for write in self._interrupted]
        self._interrupted = []
        if lost:
            logger.error(
                "Shutting down: %d writes did not finish within %.0fs and are lost (first: %s)",
                len(lost), timeout, lost[0],
            )  # fmt: skip
        elif running or interrupted:
            logger.info(
                "Shutting down: %d pending writes finished (%d of them run again after a cancellation)",
                running + len(interrupted), len(interrupted),
            )  # fmt: skip

    async def _rerun(self, writes: list[_Interrupted]) -> None:
        """Run ``writes`` one after the other, removing each once done; stop at the first failure."""
        while writes:
            write = writes[0]
            try:
                await retrying(self.policy, write.action, write.subject, write.work)
            except Exception as error:
                logger.error(
                    "%s for %s failed (%s); the write is lost", write.action, write.subject, log_safe(error)
                )
                return
            writes.pop(0)

    def _acquire_lock(self, key: str) -> asyncio.Lock:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        return lock

    def _release_lock(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)
