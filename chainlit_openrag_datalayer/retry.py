"""Bounded retries of transient failures: for the background writes and for the calls a user waits on.

A transient failure (PostgreSQL restarting, S3 unreachable, a statement timing out) is retried with
capped exponential backoff for ``budget_seconds`` of wall time, attempts included. Every write is an
idempotent merge, so a retry never duplicates anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from botocore.exceptions import ClientError, ConnectionClosedError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .errors import log_safe

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
