"""Every row keeps its tenant: a client reusing another thread's step, element or feedback id moves,
reads and overwrites nothing; the refusal is logged with ids only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import chainlit as cl
import pytest
from chainlit.context import init_ws_context
from chainlit.session import WebsocketSession
from chainlit.types import Feedback

from chainlit_openrag_datalayer import OpenRAGDataLayer, WriteRefusedError
from chainlit_openrag_datalayer.storage import object_key
from tests.conformance.factories import step_dict
from tests.reliability.chat import stored_bytes
from tests.reliability.inputs import fresh_id
from tests.reliability.test_bad_input import stored_step

VICTIM_TEXT = "victim's private question"
VICTIM_FILE = b"victim's private file"


async def victim_thread(layer: OpenRAGDataLayer) -> tuple[str, str]:
    """A thread with one step holding input, output and a generation; returns (thread id, step id)."""
    thread_id, step_id = fresh_id(), fresh_id()
    await layer.create_step(
        step_dict(
            thread_id, step_id=step_id, input=VICTIM_TEXT, output=VICTIM_TEXT,
            generation={"messages": [{"role": "user", "content": VICTIM_TEXT}]},
        )
    )  # fmt: skip
    return thread_id, step_id


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()]


async def test_step_id_of_another_thread_is_neither_moved_nor_read(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """A message sent with another thread's step id: the step stays where it is, unchanged, and the
    attacker's thread never shows its input or generation."""
    caplog.set_level(logging.INFO)
    victim, step_id = await victim_thread(layer)
    attacker = fresh_id()

    await layer.create_step(step_dict(attacker, step_id=step_id, output="overwritten"))
    await layer.update_step(step_dict(attacker, step_id=step_id, output="overwritten again"))

    kept = await stored_step(layer, victim, step_id)
    assert (kept["input"], kept["output"]) == (VICTIM_TEXT, VICTIM_TEXT)
    attackers = await layer.get_thread(attacker)
    assert attackers is not None and attackers["steps"] == []
    assert len(refusals(caplog)) == 2 and step_id in refusals(caplog)[0].getMessage()
    assert VICTIM_TEXT not in caplog.text


async def test_element_id_of_another_thread_keeps_its_object_and_type(
    layer: OpenRAGDataLayer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An upload under another thread's element id: the owner's file, mime and row stay; the attacker's
    upload is removed, and the attacker's thread shows no such element."""
    caplog.set_level(logging.INFO)
    victim, step_id = await victim_thread(layer)
    original = cl.File(
        content=VICTIM_FILE, name="report.pdf", mime="application/pdf", thread_id=victim, for_id=step_id
    )
    await layer.create_element(original)
    attacker = fresh_id()

    forged = cl.File(id=original.id, content=b"<script>", name="x.html", mime="text/html", thread_id=attacker)
    await layer.create_element(forged)

    element = await layer.get_element(victim, original.id)
    assert element is not None and element["mime"] == "application/pdf" and element["name"] == "report.pdf"
    assert await stored_bytes(layer, object_key(victim, original.id)) == VICTIM_FILE
    assert [key async for key, _ in layer.storage.objects(f"threads/{attacker}/")] == []
    assert await layer.get_element(attacker, original.id) is None
    assert len(refusals(caplog)) == 1


async def test_url_only_element_cannot_point_at_another_threads_object(layer: OpenRAGDataLayer) -> None:
    """A URL-only element reusing another thread's element id is refused: it would have kept the owner's
    object key and been handed a URL signed for the attacker."""
    victim, step_id = await victim_thread(layer)
    original = cl.File(content=VICTIM_FILE, name="report.pdf", thread_id=victim, for_id=step_id)
    await layer.create_element(original)
    attacker = fresh_id()
    await layer.create_step(step_dict(attacker))

    await layer.create_element(cl.File(id=original.id, url="https://example.org/x", thread_id=attacker))

    attackers = await layer.get_thread(attacker)
    assert attackers is not None and attackers["elements"] == []
    element = await layer.get_element(victim, original.id)
    assert element is not None and element["url"] and "example.org" not in element["url"]


async def test_feedback_is_never_moved_to_another_step(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """Upserting an existing feedback id for another step raises, and the feedback stays on its step."""
    caplog.set_level(logging.INFO)
    victim, step_id = await victim_thread(layer)
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=step_id, value=1, comment="useful", threadId=victim)
    )
    attacker = fresh_id()
    attacker_step = step_dict(attacker)
    await layer.create_step(attacker_step)

    with pytest.raises(WriteRefusedError, match="belongs to another message"):
        await layer.upsert_feedback(
            Feedback(
                id=feedback_id,
                forId=attacker_step["id"],
                value=0,
                comment="attacker comment",
                threadId=attacker,
            )
        )

    feedback = (await stored_step(layer, victim, step_id))["feedback"]
    assert feedback is not None and (feedback["id"], feedback["value"], feedback["comment"]) == (
        feedback_id,
        1,
        "useful",
    )
    assert len(refusals(caplog)) == 1 and "attacker comment" not in caplog.text


@pytest.fixture
async def attacker_session() -> AsyncIterator[WebsocketSession]:
    """The attacker's own websocket session (its thread is the attacker's); Chainlit's element endpoints
    enter it (`init_ws_context`) before calling the layer."""

    def ignore(*args: Any) -> None:
        return None

    session = WebsocketSession(
        id=fresh_id(), socket_id=fresh_id(), emit=ignore, emit_call=ignore, user_env={}, client_type="webapp"
    )
    session.has_first_interaction = True  # else Chainlit queues the writes until the first message
    yield session
    await session.delete()  # type: ignore[no-untyped-call]  # Chainlit leaves it unannotated


async def test_element_endpoints_cannot_name_another_thread(
    layer: OpenRAGDataLayer, attacker_session: WebsocketSession, caplog: pytest.LogCaptureFixture
) -> None:
    """`PUT`/`DELETE /project/element` take the thread from the request body: from the attacker's
    session, the owner's custom element is neither overwritten nor deleted."""
    caplog.set_level(logging.INFO)
    victim = fresh_id()
    original = cl.CustomElement(name="Counter", props={"count": 1}, thread_id=victim)
    await layer.create_element(original)

    init_ws_context(attacker_session)
    forged = cl.CustomElement(id=original.id, name="Counter", props={"count": 999}, thread_id=victim)
    await layer.create_element(forged)
    await layer.delete_element(original.id, victim)

    element = await layer.get_element(victim, original.id)
    assert element is not None and element["props"] == {"count": 1}
    assert len(refusals(caplog)) == 2
