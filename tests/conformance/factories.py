"""Step dicts and elements made as Chainlit 2.12 makes them: from real `cl.Step`, `cl.Message`, elements."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import chainlit as cl
from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from chainlit.user import PersistedUser, User
from literalai import ChatGeneration
from literalai.observability.step import MessageStepType, TrueStepType

from tests.conformance.versions import sent_by_this_chainlit

# The smallest valid PNG: a 1x1 transparent pixel.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def new_id() -> str:
    """A fresh uuid4 string, the shape Chainlit uses for every id."""
    return str(uuid4())


def timestamp(moment: datetime | None = None, *, seconds: float = 0) -> str:
    """`seconds` after `moment` (default: now), formatted like `chainlit.utils.utc_now()`."""
    moment = (moment or datetime.now(timezone.utc)) + timedelta(seconds=seconds)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def create_user(layer: BaseDataLayer) -> PersistedUser:
    """A new user, created through the layer."""
    user = await layer.create_user(User(identifier=f"user-{new_id()}"))
    assert user is not None
    return user


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO-8601 timestamp that must carry a UTC offset or Z."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp {value!r} has no timezone"
    return parsed


def step_dict(
    thread_id: str,
    *,
    step_id: str | None = None,
    parent_id: str | None = None,
    type: TrueStepType = "tool",
    name: str = "a tool",
    input: str = "",
    output: str = "",
    metadata: dict[str, Any] | None = None,
    created_at: str | None = None,
    **extra: Any,
) -> StepDict:
    """`cl.Step(...).to_dict()` as sent on create_step; `extra` overrides or adds keys."""
    step = cl.Step(
        name=name, type=type, id=step_id, parent_id=parent_id, metadata=metadata, thread_id=thread_id
    )
    step.input = input
    step.output = output
    step.created_at = step.start = step.end = created_at or step.created_at
    return cast(StepDict, {**step.to_dict(), **extra})


def message_dict(
    thread_id: str,
    content: str,
    *,
    type: MessageStepType = "user_message",
    author: str = "User",
    step_id: str | None = None,
    created_at: str | None = None,
) -> StepDict:
    """`cl.Message(...).to_dict()` for a message in `thread_id`."""
    created_at = created_at or timestamp()  # Message.send() stamps created_at with utc_now()
    message = cl.Message(content=content, author=author, type=type, id=step_id, created_at=created_at)
    message.thread_id = thread_id
    return message.to_dict()


def full_step_dict(
    thread_id: str, *, step_id: str | None = None, show_input: bool | str = "json"
) -> StepDict:
    """A step with every StepDict field Chainlit can send set to a non-default value."""
    newer_options: dict[str, Any] = {"icon": "search", "default_open": True, "auto_collapse": True}
    accepted = inspect.signature(cl.Step).parameters  # older Chainlit releases lack some options
    step = cl.Step(
        name="retrieve documents",
        type="retrieval",
        id=step_id,
        thread_id=thread_id,
        metadata={"source": "openrag", "scores": [0.9, 0.5], "nested": {"k": [1, {"deep": True}]}},
        tags=["rag", "search"],
        language="python",
        show_input=show_input,
        **{name: value for name, value in newer_options.items() if name in accepted},
    )
    step.input = "what is OpenRAG?"
    step.output = "OpenRAG is a retrieval-augmented generation platform."
    step.is_error = True
    assert step.created_at is not None
    step.start = step.created_at
    step.end = timestamp(parse_timestamp(step.created_at), seconds=1.5)
    step.generation = ChatGeneration(
        provider="openai",
        model="gpt-4o",
        messages=[{"role": "user", "content": "what is OpenRAG?"}],
        message_completion={"role": "assistant", "content": "a platform"},
        settings={"temperature": 0.2},
        token_count=42,
    )
    extra = {
        "command": "search",
        "modes": {"model": "fast"},
        "waitForAnswer": True,
        "icon": "search",
        "defaultOpen": True,
        "autoCollapse": True,
    }
    sent = sent_by_this_chainlit(extra)  # older releases send fewer keys (tests/conformance/versions.py)
    return cast(StepDict, {**step.to_dict(), **{key: extra[key] for key in sent}})


def text_element(
    thread_id: str, for_id: str | None, content: str = "some text", name: str = "notes.txt"
) -> cl.Text:
    """A `cl.Text` element with its content in memory."""
    return cl.Text(content=content, name=name, thread_id=thread_id, for_id=for_id, mime="text/plain")


def image_element(
    thread_id: str, for_id: str | None, content: bytes = PNG_BYTES, name: str = "pixel.png"
) -> cl.Image:
    """A `cl.Image` element with PNG bytes in memory."""
    return cl.Image(content=content, name=name, thread_id=thread_id, for_id=for_id, mime="image/png")


def file_element(thread_id: str, for_id: str | None, path: Path, name: str | None = None) -> cl.File:
    """A `cl.File` element whose content is read from `path` on disk."""
    return cl.File(
        path=str(path),
        name=name or path.name,
        thread_id=thread_id,
        for_id=for_id,
        mime="application/octet-stream",
    )
