"""The synthetic history every contender gets: the same threads, steps, elements and feedback.

Ids are deterministic UUIDs (``kind << 64 | number``), so one expectation serves every schema.
Thread ``n`` is active at ``BASE + n minutes``; its steps are one second apart, so "last activity"
(``Thread.updatedAt`` for the Prisma-shaped schemas, the latest step for SQLAlchemyDataLayer) orders
threads by ``n`` in every schema. Every ``USER_SHARE``-th thread belongs to the benchmark user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, NamedTuple
from uuid import UUID

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
USER_SHARE = 10
USER_IDENTIFIER = "bench-user@example.com"
WRITER_IDENTIFIER = "bench-writer@example.com"
SEARCH_TERM = "zanzibar"
# 53 topics: thread n is named after topic n % 53, so 1 in 53 names contains the search term.
TOPICS = (
    "taxes", "python", "gardening", "invoices", "kubernetes", "recipes", "travel", "contracts", "physics",
    "history", "music", "payroll", "security", "chess", "cycling", "databases", "poetry", "marketing",
    "astronomy", "hiring", "linux", "insurance", "biology", "pricing", "football", "zanzibar", "vacation",
    "accounting", "networking", "design", "compliance", "chemistry", "logistics", "painting", "backups",
    "geology", "budgets", "translation", "onboarding", "support", "sailing", "statistics", "legal",
    "weather", "robotics", "cooking", "finance", "printing", "archives", "emails", "meetings", "storage",
    "energy",
)  # fmt: skip
# Step texts cycle through the other topics: only the planted sentence below mentions the term in a message.
STEP_TOPICS = tuple(topic for topic in TOPICS if topic != SEARCH_TERM)
CONTENT_MATCH_EVERY = 41  # every 41st thread mentions the search term in an assistant message
FEEDBACK_FILTER_VALUE: Literal[0, 1] = 1
GET_THREAD_STEPS = 200
GET_THREAD_ELEMENTS = 10
TURN = ("user_message", "run", "tool", "assistant_message")


@dataclass(frozen=True)
class Scale:
    """How big the history is; ``quick`` is ``full`` divided by ten."""

    threads: int
    steps_per_thread: int
    other_users: int

    @classmethod
    def full(cls) -> Scale:
        return cls(threads=50_000, steps_per_thread=20, other_users=1_000)

    @classmethod
    def quick(cls) -> Scale:
        return cls.full().divided(10)

    def divided(self, factor: int) -> Scale:
        """The same history shape with ``factor`` times fewer threads and users."""
        return Scale(self.threads // factor, self.steps_per_thread, max(1, self.other_users // factor))

    def times(self, factor: int) -> Scale:
        """The same history shape with ``factor`` times more threads and users."""
        return Scale(self.threads * factor, self.steps_per_thread, self.other_users * factor)

    @property
    def steps(self) -> int:
        return self.threads * self.steps_per_thread

    @property
    def user_threads(self) -> int:
        return len(range(0, self.threads, USER_SHARE))

    @property
    def big_thread(self) -> int:
        """The thread that ``get_thread`` reads: 200 nested steps, 10 elements, the user's oldest."""
        return self.threads


def _uuid(kind: int, number: int) -> str:
    return str(UUID(int=(kind << 64) | number))


def user_id(number: int) -> str:
    """User 0 is the benchmark user, 1 the writer of the write workloads, 2... everyone else."""
    return _uuid(1, number)


def thread_id(n: int) -> str:
    return _uuid(2, n)


def step_id(n: int, k: int) -> str:
    return _uuid(3, (n << 16) | k)


def element_id(n: int, k: int) -> str:
    return _uuid(4, (n << 16) | k)


def feedback_id(n: int) -> str:
    return _uuid(5, n)


def thread_number(identifier: str) -> int:
    return UUID(identifier).int & ((1 << 64) - 1)


class UserRow(NamedTuple):
    id: str
    identifier: str
    created: datetime


class ThreadRow(NamedTuple):
    id: str
    user_id: str
    name: str
    created: datetime
    updated: datetime


class StepRow(NamedTuple):
    id: str
    thread_id: str
    parent_id: str | None
    type: str
    name: str
    input: str
    output: str
    created: datetime


class ElementRow(NamedTuple):
    id: str
    thread_id: str
    step_id: str
    name: str
    object_key: str


class FeedbackRow(NamedTuple):
    id: str
    step_id: str
    thread_id: str
    value: int


def owner(n: int, scale: Scale) -> int:
    if n % USER_SHARE == 0 or n == scale.big_thread:
        return 0
    return 2 + n % scale.other_users


def users(scale: Scale) -> Iterator[UserRow]:
    yield UserRow(user_id(0), USER_IDENTIFIER, BASE)
    yield UserRow(user_id(1), WRITER_IDENTIFIER, BASE)
    for number in range(2, 2 + scale.other_users):
        yield UserRow(user_id(number), f"user-{number}@example.com", BASE)


def _thread_start(n: int, scale: Scale) -> datetime:
    if n == scale.big_thread:  # older than every other thread: the user's last page
        return BASE - timedelta(days=1)
    return BASE + timedelta(minutes=n)


def threads(scale: Scale) -> Iterator[ThreadRow]:
    for n in range(scale.threads + 1):
        start = _thread_start(n, scale)
        count = GET_THREAD_STEPS if n == scale.big_thread else scale.steps_per_thread
        name = f"Question about {TOPICS[n % len(TOPICS)]} #{n}"
        yield ThreadRow(
            thread_id(n), user_id(owner(n, scale)), name, start, start + timedelta(seconds=count - 1)
        )


def _step(n: int, k: int, start: datetime) -> StepRow:
    kind = TURN[k % len(TURN)]
    run = step_id(n, k - k % len(TURN) + 1)
    created = start + timedelta(seconds=k)
    topic = STEP_TOPICS[(n + k) % len(STEP_TOPICS)]
    if kind == "user_message":
        return StepRow(step_id(n, k), thread_id(n), None, kind, "User", "", f"Tell me about {topic}", created)
    if kind == "run":
        return StepRow(step_id(n, k), thread_id(n), None, kind, "on_message", "", "", created)
    if kind == "tool":
        output = f"Found 3 documents about {topic} in the knowledge base."
        return StepRow(step_id(n, k), thread_id(n), run, kind, "retrieve", f"{topic}?", output, created)
    output = f"Here is what the documents say about {topic}: it depends on the context, step {k}."
    if k == 3 and n % CONTENT_MATCH_EVERY == 0:
        output += " See also Zanzibar."
    return StepRow(step_id(n, k), thread_id(n), run, kind, "Assistant", "", output, created)


def steps(scale: Scale) -> Iterator[StepRow]:
    for n in range(scale.threads + 1):
        start = _thread_start(n, scale)
        count = GET_THREAD_STEPS if n == scale.big_thread else scale.steps_per_thread
        for k in range(count):
            yield _step(n, k, start)


def elements(scale: Scale) -> Iterator[ElementRow]:
    n = scale.big_thread
    for k in range(GET_THREAD_ELEMENTS):
        identifier = element_id(n, k)
        key = f"threads/{thread_id(n)}/files/{identifier}"
        yield ElementRow(identifier, thread_id(n), step_id(n, 4 * k + 3), f"chart-{k}.png", key)


def feedback_value(n: int) -> int | None:
    """5% of the user's threads have a thumbs-up, 5% a thumbs-down, 2% of the others a thumbs-up."""
    if n % 200 == 0:
        return 1
    if n % 200 == 100:
        return 0
    return 1 if n % 50 == 3 else None


def feedbacks(scale: Scale) -> Iterator[FeedbackRow]:
    for n in range(scale.threads):
        value = feedback_value(n)
        if value is not None:
            last_answer = scale.steps_per_thread - 1
            yield FeedbackRow(feedback_id(n), step_id(n, last_answer), thread_id(n), value)


# --- what list_threads should return ----------------------------------------------------------


def user_thread_at_rank(rank: int, scale: Scale) -> str:
    """The user's ``rank``-th thread (0 = most recent activity)."""
    return thread_id(user_history(scale)[rank])


def deep_rank(scale: Scale) -> int:
    """Where the deep page starts: half-way through the user's history."""
    return scale.user_threads // 2


def name_matches(n: int) -> bool:
    return SEARCH_TERM in TOPICS[n % len(TOPICS)]


def content_matches(n: int) -> bool:
    return n % CONTENT_MATCH_EVERY == 0


def has_feedback(n: int, value: int, scale: Scale) -> bool:
    return n < scale.threads and feedback_value(n) == value


def user_history(scale: Scale) -> list[int]:
    """The user's thread numbers, most recent activity first."""
    last = (scale.threads - 1) // USER_SHARE * USER_SHARE
    return [*range(last, -1, -USER_SHARE), scale.big_thread]
