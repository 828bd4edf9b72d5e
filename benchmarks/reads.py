"""Read workloads: get_user, get_thread (200 nested steps, 10 S3 elements), and list_threads pages.

After the timed calls, each result is checked against the dataset; a wrong answer keeps its time
but the cell says what was wrong, so a fast wrong answer cannot pass for a fast right one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from chainlit.types import Pagination, ThreadFilter

from . import dataset as ds
from .layers import Contender
from .timing import Cell, Op, Plan, compare, describe

PAGE = 20


async def get_user(contenders: list[Contender], plan: Plan) -> dict[str, Cell]:
    ops: dict[str, Op] = {c.name: _call(c.layer.get_user, ds.USER_IDENTIFIER) for c in contenders}
    cells = await compare(ops, plan)

    async def validate(c: Contender) -> str | None:
        found = await c.layer.get_user(ds.USER_IDENTIFIER)
        return None if found and found.identifier == ds.USER_IDENTIFIER else f"wrong result: {found!r}"

    await _annotate(cells, contenders, validate)
    return cells


async def get_thread(contenders: list[Contender], plan: Plan) -> dict[str, Cell]:
    """The thread of 200 nested steps and 10 elements, in each contender's history."""

    def thread_id(c: Contender) -> str:
        return ds.thread_id(c.scale.big_thread)

    cells = await compare({c.name: _call(c.layer.get_thread, thread_id(c)) for c in contenders}, plan)

    async def validate(c: Contender) -> str | None:
        thread = await c.layer.get_thread(thread_id(c))
        if thread is None:
            return "wrong result: thread not found"
        steps, elements = thread["steps"], thread["elements"] or []
        if len(steps) != ds.GET_THREAD_STEPS or len(elements) != ds.GET_THREAD_ELEMENTS:
            return f"wrong result: {len(steps)} steps, {len(elements)} elements"
        if not all(e.get("url") for e in elements):
            return "wrong result: elements without a URL"
        return None

    await _annotate(cells, contenders, validate)
    return cells


@dataclass(frozen=True)
class Listing:
    """One ``list_threads`` call shape and what its page must contain."""

    key: str
    title: str
    search: str | None = None
    feedback: Literal[0, 1] | None = None
    deep: bool = False

    def accepts(self, n: int, scale: ds.Scale) -> bool:
        if self.search and not (ds.name_matches(n) or ds.content_matches(n)):
            return False
        return self.feedback is None or ds.has_feedback(n, self.feedback, scale)

    def expected(self, scale: ds.Scale) -> list[str]:
        """The ids the page must hold, in order."""
        history = ds.user_history(scale)[ds.deep_rank(scale) if self.deep else 0 :]
        return [ds.thread_id(n) for n in history if self.accepts(n, scale)][:PAGE]


LISTINGS = (
    Listing("list_first", "list_threads first page"),
    Listing("list_deep", "list_threads deep page (cursor)", deep=True),
    Listing("list_search", f"list_threads search {ds.SEARCH_TERM!r}", search=ds.SEARCH_TERM),
    Listing("list_feedback", "list_threads feedback filter", feedback=ds.FEEDBACK_FILTER_VALUE),
)


async def list_threads(contenders: list[Contender], plan: Plan, listing: Listing) -> dict[str, Cell]:
    """One page for the benchmark user, in each contender's history."""
    filters = ThreadFilter(userId=ds.user_id(0), search=listing.search, feedback=listing.feedback)

    def pagination(scale: ds.Scale) -> Pagination:
        cursor = ds.user_thread_at_rank(ds.deep_rank(scale) - 1, scale) if listing.deep else None
        return Pagination(first=PAGE, cursor=cursor)

    ops = {c.name: _call(c.layer.list_threads, pagination(c.scale), filters) for c in contenders}
    cells = await compare(ops, plan)

    async def validate(c: Contender) -> str | None:
        page = await c.layer.list_threads(pagination(c.scale), filters)
        return _page_problem([t["id"] for t in page.data], listing, c.scale)

    await _annotate(cells, contenders, validate)
    return cells


def _page_problem(ids: list[str], listing: Listing, scale: ds.Scale) -> str | None:
    expected = listing.expected(scale)
    if ids == expected:
        return None
    numbers = [ds.thread_number(i) for i in ids]
    if any(ds.owner(n, scale) != 0 for n in numbers):
        return "wrong result: another user's threads"
    if rejected := [n for n in numbers if not listing.accepts(n, scale)]:
        return f"wrong result: {len(rejected)} of {len(numbers)} threads do not match the filter"
    if listing.deep and ids[:1] != expected[:1]:
        return "wrong result: not the page after the cursor"
    missed = len(set(expected) - set(ids))
    return f"incomplete: misses {missed} of the {len(expected)} expected threads"


def _call(method: Callable[..., Awaitable[Any]], *args: Any) -> Op:
    async def op(i: int) -> None:
        await method(*args)

    return op


async def _annotate(
    cells: dict[str, Cell],
    contenders: list[Contender],
    validate: Callable[[Contender], Awaitable[str | None]],
) -> None:
    for contender in contenders:
        cell = cells[contender.name]
        if cell.failure is None:
            try:
                cell.note = await validate(contender)
            except Exception as error:
                cell.note = f"check failed: {describe(error)}"
