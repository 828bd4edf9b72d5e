"""Simulated Chainlit sessions: the data-layer calls of a chat, fired the way Chainlit fires them.

Chainlit starts `create_step`, `update_step`, `delete_step` and `create_element` as unawaited tasks
(`asyncio.create_task`) and awaits `update_thread`. A `Session` does the same, with random pauses
between calls, and keeps the sequential reference: what the thread must hold once every task is done.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, cast

from chainlit.step import StepDict

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import message_dict, new_id, step_dict, text_element
from tests.reliability.figures import FIGURES

# The step fields compared with the reference.
COMPARED = ("type", "name", "parentId", "input", "output")


@dataclass
class Reference:
    """What a thread must hold: the last value Chainlit sent for each step, minus deleted steps."""

    thread_id: str
    user_id: str
    name: str = ""
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    elements: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def sent(self, step: StepDict) -> None:
        expected = {key: step.get(key) for key in COMPARED}
        expected.update(input=expected["input"] or "", output=expected["output"] or "")  # read back as ""
        self.steps[step["id"]] = expected

    def deleted(self, step_id: str) -> None:
        del self.steps[step_id]


class Session:
    """One browser tab talking to one thread."""

    def __init__(
        self, layer: OpenRAGDataLayer, user_id: str, rng: random.Random, *, file_rate: float = 0.4
    ) -> None:
        self.layer = layer
        self.rng = rng
        self.file_rate = file_rate
        self.reference = Reference(thread_id=new_id(), user_id=user_id)
        self.tasks: list[asyncio.Future[Any]] = []
        self.writes = 0

    def fire(self, write: Awaitable[Any]) -> None:
        """An unawaited write, as `asyncio.create_task(data_layer.create_step(...))` in Chainlit.

        The layer's write methods are typed as returning an `Awaitable`; `ensure_future` wraps the
        coroutine they return in a task exactly as `create_task` does.
        """
        self.tasks.append(asyncio.ensure_future(write))
        self.writes += 1

    async def jitter(self) -> None:
        """Let other sessions run: nothing, one loop turn, or a few milliseconds."""
        roll = self.rng.random()
        if roll < 0.35:
            await asyncio.sleep(0)
        elif roll < 0.5:
            await asyncio.sleep(self.rng.uniform(0, 0.004))

    def create(self, step: StepDict) -> None:
        self.reference.sent(step)
        self.fire(self.layer.create_step(cast(StepDict, dict(step))))

    def update(self, step: StepDict, **changes: Any) -> StepDict:
        step = cast(StepDict, {**step, **changes})
        self.reference.sent(step)
        self.fire(self.layer.update_step(cast(StepDict, dict(step))))
        return step

    async def turn(self, number: int) -> None:
        """A user message, a run with a tool call, a streamed answer, maybe a file and a removed message."""
        ref, rng = self.reference, self.rng
        self.create(message_dict(ref.thread_id, f"question {number} " + "?" * rng.randrange(40)))
        if number == 0:
            ref.name = f"chat {ref.thread_id[:8]}"
            await self.layer.update_thread(ref.thread_id, name=ref.name, user_id=ref.user_id)
            self.writes += 1
        await self.jitter()
        run = step_dict(ref.thread_id, type="run", name="on_message", input=f"question {number}")
        self.create(run)
        tool = step_dict(ref.thread_id, parent_id=run["id"], name="search", input=f"q{number}")
        self.create(tool)
        await self.jitter()
        self.update(tool, output=f"{rng.randrange(10**6)} documents")
        answer = message_dict(ref.thread_id, "", type="assistant_message", author="Assistant")
        answer["parentId"] = run["id"]
        self.create(answer)
        text = ""
        for _ in range(rng.randrange(1, 6)):  # streaming: each update carries the output so far
            await self.jitter()
            text += f"token{rng.randrange(1000)} "
            answer = self.update(answer, output=text)
        if rng.random() < self.file_rate:
            await self.send_file(answer["id"], number)
        if rng.random() < 0.15:
            await self.removed_message()
        self.update(run, output="done")

    async def send_file(self, for_id: str, number: int) -> None:
        content = f"file {number} of {self.reference.thread_id}\n" * self.rng.randrange(1, 50)
        element = text_element(self.reference.thread_id, for_id, content=content, name=f"notes-{number}.txt")
        self.reference.elements[element.id] = (element.name, content.encode())
        self.fire(self.layer.create_element(element))

    async def removed_message(self) -> None:
        """A "thinking..." message that is created, updated, then removed (`Message.remove()`)."""
        note = message_dict(self.reference.thread_id, "thinking", type="assistant_message")
        self.create(note)
        await self.jitter()
        self.update(note, output="thinking harder")
        self.reference.deleted(note["id"])
        self.fire(self.layer.delete_step(note["id"]))

    async def chat(self, turns: int, pace: float = 0.0) -> Reference:
        """Run the turns (`pace` seconds apart), then wait for every write fired; return the reference."""
        for number in range(turns):
            await self.turn(number)
            await self.jitter()
            await asyncio.sleep(pace)
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        assert not errors, f"{len(errors)} writes of thread {self.reference.thread_id} raised: {errors[:3]}"
        FIGURES.writes += self.writes
        return self.reference


async def stored_bytes(layer: OpenRAGDataLayer, key: str) -> bytes | None:
    """The object under `key` in the layer's storage, or None when it is missing."""
    try:
        return b"".join([chunk async for chunk in layer.storage.read(key)])
    except FileNotFoundError:
        return None


async def differences(layer: OpenRAGDataLayer, ref: Reference) -> list[str]:
    """How the stored thread differs from the reference: lost, extra, duplicated or stale steps and files."""
    from chainlit_openrag_datalayer.storage import object_key

    thread = await layer.get_thread(ref.thread_id)
    if thread is None:
        return [f"thread {ref.thread_id}: lost ({len(ref.steps)} steps)"]
    problems = []
    if (thread["name"], thread["userIdentifier"] is not None) != (ref.name, True):
        problems.append(f"thread {ref.thread_id}: name/owner {thread['name']!r}/{thread['userIdentifier']!r}")
    ids = [step["id"] for step in thread["steps"]]
    stored = {step["id"]: {key: step.get(key) for key in COMPARED} for step in thread["steps"]}
    problems += [f"step {i}: duplicated" for i in sorted(set(ids)) if ids.count(i) > 1]
    problems += [f"step {i}: lost" for i in ref.steps.keys() - stored.keys()]
    problems += [f"step {i}: not expected (deleted or foreign)" for i in stored.keys() - ref.steps.keys()]
    problems += [
        f"step {i}: stale {stored[i]} != {expected}"
        for i, expected in ref.steps.items()
        if i in stored and stored[i] != expected
    ]
    seen: set[str] = set()
    for step in thread["steps"]:  # get_thread puts parents first
        if step.get("parentId") in stored and step["parentId"] not in seen:
            problems.append(f"step {step['id']}: listed before its parent")
        seen.add(step["id"])
    elements = {element["id"]: element for element in thread["elements"] or []}
    for element_id, (name, content) in ref.elements.items():
        if element_id not in elements or elements[element_id]["name"] != name:
            problems.append(f"element {element_id}: lost or renamed")
        elif await stored_bytes(layer, object_key(ref.thread_id, element_id)) != content:
            problems.append(f"element {element_id}: file lost or altered")
    return problems
