"""Steps: create_step, update_step and delete_step, in the orders Chainlit really sends them."""

from __future__ import annotations

from typing import Any, cast

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from chainlit.types import Feedback

from tests.conformance.factories import full_step_dict, new_id, step_dict, text_element
from tests.conformance.reads import elements_of, step_of, steps_of
from tests.conformance.versions import NEWER_STEP_KEYS, sent_by_this_chainlit, since

# Every StepDict field a Chainlit 2.12 step or message can carry, apart from timestamps and `streaming`;
# on an older release, those it has.
STEP_FIELDS = sent_by_this_chainlit((
    "name", "type", "threadId", "parentId", "input", "output", "metadata", "isError", "showInput", "language",
    "defaultOpen", "autoCollapse", "command", "modes", "tags", "generation", "waitForAnswer", "icon",
))  # fmt: skip


def fields_of(step: StepDict) -> dict[str, Any]:
    return {field: step.get(field) for field in STEP_FIELDS}


@pytest.mark.builtin_fails(
    "drops language, defaultOpen, autoCollapse, command, modes, tags, generation, waitForAnswer, icon"
)
async def test_create_step_keeps_every_field_chainlit_sends(layer: BaseDataLayer) -> None:
    """get_thread returns each field of the step dict Chainlit sent."""
    thread_id = new_id()
    sent = full_step_dict(thread_id)

    await layer.create_step(sent)

    assert fields_of(await step_of(layer, thread_id, sent["id"])) == fields_of(sent)


@pytest.mark.builtin_fails("drops modes, autoCollapse and icon")
@pytest.mark.parametrize(
    "key",
    [
        pytest.param(key, marks=since(release, f"the step key {key}"))
        for key, release in NEWER_STEP_KEYS.items()
    ],
)
async def test_create_step_keeps_a_key_newer_releases_send(layer: BaseDataLayer, key: str) -> None:
    """`modes` (Chainlit 2.9), `autoCollapse` (2.10) and `icon` (2.11) come back as sent."""
    thread_id = new_id()
    sent = full_step_dict(thread_id)

    await layer.create_step(sent)

    assert (await step_of(layer, thread_id, sent["id"])).get(key) == sent[key]  # type: ignore[literal-required]


@pytest.mark.builtin_fails("stores str(showInput): True comes back as 'True'")
@pytest.mark.parametrize("show_input", [True, False])
async def test_create_step_keeps_boolean_show_input(layer: BaseDataLayer, show_input: bool) -> None:
    """A boolean showInput comes back as that boolean, not as a string."""
    thread_id, step_id = new_id(), new_id()

    await layer.create_step(step_dict(thread_id, step_id=step_id, showInput=show_input))

    assert (await step_of(layer, thread_id, step_id))["showInput"] is show_input


async def test_create_step_keeps_string_show_input(layer: BaseDataLayer) -> None:
    """showInput "json" comes back as "json"."""
    thread_id, step_id = new_id(), new_id()

    await layer.create_step(step_dict(thread_id, step_id=step_id, showInput="json"))

    assert (await step_of(layer, thread_id, step_id))["showInput"] == "json"


async def test_create_step_before_the_thread_exists_creates_it(layer: BaseDataLayer) -> None:
    """A step for an unknown thread creates the thread and is stored in it."""
    thread_id, step_id = new_id(), new_id()

    await layer.create_step(step_dict(thread_id, step_id=step_id, output="first"))

    assert [step["id"] for step in await steps_of(layer, thread_id)] == [step_id]


async def test_update_step_before_create_step_keeps_output(layer: BaseDataLayer) -> None:
    """A create_step arriving after its update_step does not erase the final output."""
    thread_id, step_id = new_id(), new_id()
    final = step_dict(thread_id, step_id=step_id, input="question", output="final answer")

    await layer.update_step(final)
    await layer.create_step(cast(StepDict, {**final, "input": "", "output": ""}))

    step = await step_of(layer, thread_id, step_id)
    assert (step["input"], step["output"]) == ("question", "final answer")


@pytest.mark.builtin_fails(
    "drops language, defaultOpen, autoCollapse, command, modes, tags, generation, waitForAnswer, icon"
)
async def test_update_step_before_create_step_keeps_every_field(layer: BaseDataLayer) -> None:
    """After update_step then a late create_step with empty input/output/end, every updated field remains."""
    thread_id = new_id()
    final = full_step_dict(thread_id)
    late_create = cast(StepDict, {**final, "input": "", "output": "", "end": None})

    await layer.update_step(final)
    await layer.create_step(late_create)

    assert fields_of(await step_of(layer, thread_id, final["id"])) == fields_of(final)


async def test_late_create_step_with_empty_fields_keeps_stored_values(layer: BaseDataLayer) -> None:
    """A create_step with empty input, output and metadata leaves the stored values."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(
        step_dict(thread_id, step_id=step_id, input="in", output="out", metadata={"k": "v"})
    )

    await layer.create_step(step_dict(thread_id, step_id=step_id))

    step = await step_of(layer, thread_id, step_id)
    assert (step["input"], step["output"], step["metadata"]) == ("in", "out", {"k": "v"})


async def test_update_step_with_new_output_replaces_it(layer: BaseDataLayer) -> None:
    """update_step with a different output stores the new output."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id, output="draft"))

    await layer.update_step(step_dict(thread_id, step_id=step_id, output="final"))

    assert (await step_of(layer, thread_id, step_id))["output"] == "final"


async def test_child_step_before_parent_step_is_stored(layer: BaseDataLayer) -> None:
    """A child created before its parent is kept, with its parentId, and the parent keeps its own fields."""
    thread_id, parent_id, child_id = new_id(), new_id(), new_id()
    parent = step_dict(thread_id, step_id=parent_id, type="run", name="on_message", output="parent out")
    child = step_dict(thread_id, step_id=child_id, parent_id=parent_id, name="child")

    await layer.create_step(child)
    await layer.create_step(parent)

    stored_child = await step_of(layer, thread_id, child_id)
    stored_parent = await step_of(layer, thread_id, parent_id)
    assert stored_child["parentId"] == parent_id
    assert (stored_parent["name"], stored_parent["type"]) == ("on_message", "run")
    assert stored_parent["output"] == "parent out"


@pytest.mark.builtin_fails("unknown keys are dropped")
async def test_unknown_step_keys_come_back(layer: BaseDataLayer) -> None:
    """Keys a future Chainlit may add to the step dict are stored and returned."""
    thread_id, step_id = new_id(), new_id()

    await layer.create_step(step_dict(thread_id, step_id=step_id, futureKey={"a": 1}))

    assert cast(dict[str, Any], await step_of(layer, thread_id, step_id)).get("futureKey") == {"a": 1}


async def test_delete_step_removes_the_step(layer: BaseDataLayer) -> None:
    """After delete_step the thread no longer lists the step; other steps stay."""
    thread_id, deleted, kept = new_id(), new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=deleted))
    await layer.create_step(step_dict(thread_id, step_id=kept))

    await layer.delete_step(deleted)

    assert [step["id"] for step in await steps_of(layer, thread_id)] == [kept]


async def test_delete_step_removes_its_elements(layer: BaseDataLayer) -> None:
    """The step's elements disappear from the thread with it."""
    thread_id, step_id, other_step_id = new_id(), new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id))
    await layer.create_step(step_dict(thread_id, step_id=other_step_id))
    await layer.create_element(text_element(thread_id, step_id))
    kept = text_element(thread_id, other_step_id)
    await layer.create_element(kept)

    await layer.delete_step(step_id)

    assert [element["id"] for element in await elements_of(layer, thread_id)] == [kept.id]


async def test_delete_step_removes_its_feedback(layer: BaseDataLayer) -> None:
    """A step recreated under a deleted step's id has no feedback."""
    thread_id, step_id = new_id(), new_id()
    await layer.create_step(step_dict(thread_id, step_id=step_id))
    await layer.upsert_feedback(Feedback(forId=step_id, value=0, threadId=thread_id, comment="bad"))

    await layer.delete_step(step_id)
    await layer.create_step(step_dict(thread_id, step_id=step_id))

    assert (await step_of(layer, thread_id, step_id)).get("feedback") is None
