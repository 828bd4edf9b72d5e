"""Write workloads: create_step, a chat turn, streaming update_step (concurrent sessions: ``sessions``).

Step dicts have the shapes Chainlit sends: ``Message.to_dict()`` for messages, ``Step.to_dict()``
for the run step. Writes go to threads of a separate "writer" user, so the listed history stays put.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, cast
from uuid import uuid4

from chainlit.step import StepDict

from . import dataset as ds
from .layers import Contender, RawInsert
from .timing import Cell, Check, Op, Plan, compare

ANSWER = "Here is what the documents say: " + "lorem ipsum dolor sit amet " * 12


def now_iso() -> str:
    """Chainlit's ``utc_now()`` format (always with microseconds, which ChainlitDataLayer requires)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message(step_id: str, thread_id: str, kind: str, output: str, parent_id: str | None = None) -> StepDict:
    """What ``cl.Message.to_dict()`` sends."""
    at = now_iso()
    author = "User" if kind == "user_message" else "Assistant"
    return cast(StepDict, {
        "id": step_id, "threadId": thread_id, "parentId": parent_id, "createdAt": at, "command": None,
        "modes": None, "start": at, "end": at, "output": output, "name": author, "type": kind,
        "language": None, "streaming": False, "isError": False, "waitForAnswer": False, "metadata": {},
        "tags": None,
    })  # fmt: skip


def run_step(step_id: str, thread_id: str) -> StepDict:
    """What ``cl.Step.to_dict()`` sends for the ``on_message`` run step."""
    at = now_iso()
    return cast(StepDict, {
        "name": "on_message", "type": "run", "id": step_id, "threadId": thread_id, "parentId": None,
        "streaming": False, "metadata": {}, "tags": None, "input": "", "isError": False, "output": "",
        "createdAt": at, "start": at, "end": None, "language": None, "defaultOpen": False,
        "autoCollapse": False, "showInput": "json", "generation": None,
    })  # fmt: skip


async def writer_thread(contender: Contender) -> str:
    """A new thread of the writer user, created through the layer (untimed)."""
    thread_id = str(uuid4())
    await contender.layer.update_thread(thread_id, name="Benchmark writes", user_id=ds.user_id(1))
    return thread_id


async def chat_turn(contender: Contender, thread_id: str) -> str:
    """User message, run step, assistant message created empty then updated; returns the answer's id."""
    layer = contender.layer
    run_id, answer_id = str(uuid4()), str(uuid4())
    calls: list[Any] = [
        lambda: layer.create_step(message(str(uuid4()), thread_id, "user_message", "What does it say?")),
        lambda: layer.create_step(run_step(run_id, thread_id)),
        lambda: layer.create_step(message(answer_id, thread_id, "assistant_message", "", run_id)),
        lambda: layer.update_step(message(answer_id, thread_id, "assistant_message", ANSWER, run_id)),
    ]
    for call in calls:
        await call()
    return answer_id


def _step_check(contender: Contender, ids: list[str], output: str | None = None) -> Check:
    async def check() -> str | None:
        if not ids:
            return None
        if not await contender.step_exists(ids[-1]):
            return "fails: its calls return but the steps are not in the database"
        if output is not None and await contender.step_output(ids[-1]) != output:
            return "fails: the final output is not in the database"
        return None

    return check


async def create_step(contenders: list[Contender], raw: RawInsert, plan: Plan) -> dict[str, Cell]:
    """One new user message per call, into an existing thread."""
    ops: dict[str, Op] = {}
    checks: dict[str, Check] = {}
    for contender in contenders:
        thread_id = await writer_thread(contender)
        ids: list[str] = []

        async def op(i: int, c: Contender = contender, t: str = thread_id, ids: list[str] = ids) -> None:
            ids.append(str(uuid4()))
            await c.layer.create_step(message(ids[-1], t, "user_message", "What does the contract say?"))

        ops[contender.name], checks[contender.name] = op, _step_check(contender, ids)
    raw_thread = await writer_thread(contenders[0])

    async def raw_op(i: int) -> None:
        at = datetime.now(timezone.utc)
        await raw.insert((str(uuid4()), raw_thread, None, "User", "user_message", "",
                          "What does the contract say?", "{}", "json", False, at, at, at))  # fmt: skip

    ops["raw"] = raw_op
    return await compare(ops, plan, checks)


async def chat_turns(contenders: list[Contender], plan: Plan) -> dict[str, Cell]:
    """Milliseconds per chat turn (four calls)."""
    ops: dict[str, Op] = {}
    checks: dict[str, Check] = {}
    for contender in contenders:
        thread_id = await writer_thread(contender)
        ids: list[str] = []

        async def op(i: int, c: Contender = contender, t: str = thread_id, ids: list[str] = ids) -> None:
            ids.append(await chat_turn(c, t))

        ops[contender.name], checks[contender.name] = op, _step_check(contender, ids, ANSWER)
    return await compare(ops, plan, checks)


async def streaming_updates(contenders: list[Contender], plan: Plan, updates: int = 20) -> dict[str, Cell]:
    """Milliseconds per ``update_step``; each step is written ``updates`` times with growing output."""
    ops: dict[str, Op] = {}
    checks: dict[str, Check] = {}
    for contender in contenders:
        thread_id = await writer_thread(contender)
        run_id = str(uuid4())
        await contender.layer.create_step(run_step(run_id, thread_id))
        ids: list[str] = []
        calls = itertools.count()

        async def op(
            i: int,
            c: Contender = contender,
            t: str = thread_id,
            r: str = run_id,
            ids: list[str] = ids,
            calls: Iterator[int] = calls,
        ) -> None:
            update = next(calls) % updates
            if update == 0:
                ids.append(str(uuid4()))
            text = " ".join(itertools.repeat("token", update + 1))
            await c.layer.update_step(message(ids[-1], t, "assistant_message", text, r))

        ops[contender.name], checks[contender.name] = op, _step_check(contender, ids)
    return await compare(ops, plan, checks)
