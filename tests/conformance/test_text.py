"""Text PostgreSQL cannot store as-is (NUL) and text far larger than usual."""

from __future__ import annotations

from typing import Any

import pytest
from chainlit.data.base import BaseDataLayer

from tests.conformance.factories import new_id, step_dict
from tests.conformance.reads import step_of

NUL, REPLACEMENT = "\x00", "\ufffd"


def without_nul(value: Any) -> Any:
    """`value` with every NUL replaced by U+FFFD, in keys and nested values too."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


@pytest.mark.builtin_fails("PostgreSQL text rejects NUL: create_step raises")
async def test_nul_in_output_is_stored_as_replacement_character(layer: BaseDataLayer) -> None:
    """An output containing NUL is stored, with each NUL read back as U+FFFD."""
    thread_id, step_id = new_id(), new_id()
    output = f"pdf text{NUL}with{NUL}{NUL}nul bytes"

    await layer.create_step(step_dict(thread_id, step_id=step_id, output=output))

    assert (await step_of(layer, thread_id, step_id))["output"] == without_nul(output)


@pytest.mark.builtin_fails("JSONB rejects \\u0000: create_step raises")
async def test_nul_in_metadata_is_stored_as_replacement_character(layer: BaseDataLayer) -> None:
    """Metadata with NUL in values, nested values and keys is stored, NUL read back as U+FFFD."""
    thread_id, step_id = new_id(), new_id()
    metadata = {"source": f"a{NUL}b", "pages": [f"{NUL}1", {"title": f"t{NUL}"}], f"key{NUL}": "v"}

    await layer.create_step(step_dict(thread_id, step_id=step_id, metadata=metadata))

    assert (await step_of(layer, thread_id, step_id))["metadata"] == without_nul(metadata)


async def test_multi_megabyte_output_round_trips(layer: BaseDataLayer) -> None:
    """An output of about 6 MB of mixed-script text comes back unchanged."""
    thread_id, step_id = new_id(), new_id()
    output = "Résumé — 检索增强生成 — retrieval 🚀\n" * 150_000

    await layer.create_step(step_dict(thread_id, step_id=step_id, output=output))

    assert (await step_of(layer, thread_id, step_id))["output"] == output
