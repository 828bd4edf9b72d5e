"""Per-thread ordering and bounded retries for the writes Chainlit fires and forgets.

Chainlit starts ``create_step``/``update_step``/``create_element`` as unawaited tasks, in call
order. Each write takes its thread's FIFO lock before its first ``await``, so a thread's writes
reach the database in the order Chainlit issued them, and a transient failure (PostgreSQL
restarting, S3 unreachable, a statement timing out) is retried with capped exponential backoff for
``budget_seconds`` of wall time, attempts included. Every write is an idempotent merge, so a retry never
duplicates anything, and a write the event loop's shutdown cut short can simply run again (``drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from botocore.exceptions import ClientError, ConnectionClosedError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .errors import WriteQueueFullError, log_safe

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_ASYNCPG = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # "got result for unknown protocol state": a connection cut mid-reply
)
# Not OSError as a whole: a missing file (FileNotFoundError) will not appear by retrying.
_TRANSIENT_IO = (
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,  # not yet the built-in one on Python 3.10
    socket.gaierror,
    BotoConnectionError,
    ConnectionClosedError,
    HTTPClientError,
)


def is_transient(error: BaseException) -> bool:
    """True for failures that go away by themselves: lost connections, restarts, 5xx, throttling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (InterfaceError, OperationalError, *_TRANSIENT_ASYNCPG, *_TRANSIENT_IO)):
            return True
        if isinstance(current, ClientError):
            status = int(current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            return status >= 500 or status == 429
        current = current.__cause__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts for at most ``budget_seconds`` of wall time, attempts included, with backoff between
    them from ``first_delay`` doubling to ``max_delay``."""

    budget_seconds: float = 300.0
    first_delay: float = 0.05
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """The sleeps between attempts, with jitter; ``retrying`` stops at the budget."""
        delay = self.first_delay
        while True:
            yield min(delay * random.uniform(0.8, 1.2), self.max_delay)
            delay *= 2


async def retrying(policy: RetryPolicy, action: str, subject: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``, retrying transient failures, and give up once the policy's budget is spent.

    Each attempt gets what is left of the budget: past it, the attempt is cancelled (asyncpg then
    cancels its statement on the server) and ``TimeoutError`` is raised.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.budget_seconds
    for attempt, delay in enumerate(policy.delays(), start=1):
        try:
            return await _within(deadline - loop.time(), work)
        except Exception as error:
            if not is_transient(error):
                raise
            if deadline - loop.time() <= delay:
                if isinstance(error, asyncio.TimeoutError):
                    raise TimeoutError(
                        f"{action} for {subject} did not finish within {policy.budget_seconds:g} s"
                    ) from error
                raise
            if attempt == 1:
                logger.warning(
                    "%s for %s failed (%s); retrying for up to %gs",
                    action, subject, log_safe(error), policy.budget_seconds,
                )  # fmt: skip
            await asyncio.sleep(delay)
    raise AssertionError("delays() never ends")


async def _within(seconds: float, work: Callable[[], Awaitable[T]]) -> T:
    """``work()``, cancelled after ``seconds``: then a plain ``TimeoutError`` (logs name it, not the
    ``CancelledError`` that asyncio's timeout raises inside)."""
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(seconds):
                return await work()
        return await asyncio.wait_for(work(), seconds)  # pragma: no cover  # Python 3.10
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {seconds:.3g} s") from None


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
        over_bytes = self.pending and self.pending_bytes + size > self.max_pending_bytes
        if self.pending >= self.max_pending or over_bytes:
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
