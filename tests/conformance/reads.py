"""Read back what a layer stored, through the layer's own get_thread."""

from __future__ import annotations

from chainlit.data.base import BaseDataLayer
from chainlit.element import ElementDict
from chainlit.step import StepDict
from chainlit.types import ThreadDict


async def thread_of(layer: BaseDataLayer, thread_id: str) -> ThreadDict:
    """get_thread, which must find the thread."""
    thread = await layer.get_thread(thread_id)
    assert thread is not None, f"thread {thread_id} not found"
    return thread


async def steps_of(layer: BaseDataLayer, thread_id: str) -> list[StepDict]:
    """The thread's steps in the order get_thread returns them."""
    return list((await thread_of(layer, thread_id))["steps"])


async def step_of(layer: BaseDataLayer, thread_id: str, step_id: str) -> StepDict:
    """One step of the thread, which must be there."""
    steps = {step["id"]: step for step in await steps_of(layer, thread_id)}
    assert step_id in steps, f"step {step_id} not in thread {thread_id}: {list(steps)}"
    return steps[step_id]


async def elements_of(layer: BaseDataLayer, thread_id: str) -> list[ElementDict]:
    """The thread's elements as get_thread returns them."""
    return list((await thread_of(layer, thread_id))["elements"] or [])
