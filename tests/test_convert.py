"""Pure conversions (no services): parent ordering of a thread's steps."""

from __future__ import annotations

from typing import cast

from chainlit.step import StepDict

from chainlit_openrag_datalayer.convert import parents_first


def chain(depth: int) -> list[StepDict]:
    """Steps 0..depth-1, each the parent of the next, listed children first (as a client can write them)."""
    steps = [{"id": f"s{i}", "parentId": f"s{i - 1}" if i else None} for i in range(depth)]
    return cast(list[StepDict], steps[::-1])


def test_a_chain_of_any_depth_comes_out_parents_first() -> None:
    """100,000 levels (a recursive walk failed past ~1,000): each step after its parent, each once."""
    ordered = parents_first(chain(100_000))

    assert [step["id"] for step in ordered] == [f"s{i}" for i in range(100_000)]


def test_a_cycle_is_cut_and_every_step_kept_once() -> None:
    """a -> b -> c -> a: all three come out once, whatever the client wrote."""
    steps = cast(
        list[StepDict],
        [{"id": "a", "parentId": "c"}, {"id": "b", "parentId": "a"}, {"id": "c", "parentId": "b"}],
    )

    assert sorted(step["id"] for step in parents_first(steps)) == ["a", "b", "c"]


def test_creation_order_is_kept_where_parents_allow() -> None:
    """Siblings keep their order; a child listed before its parent moves after it."""
    steps = cast(
        list[StepDict],
        [
            {"id": "child", "parentId": "root"},
            {"id": "other"},
            {"id": "root"},
            {"id": "late", "parentId": "root"},
        ],
    )

    assert [step["id"] for step in parents_first(steps)] == ["root", "child", "other", "late"]
