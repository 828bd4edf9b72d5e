"""OpenRAG's shape (a FastAPI app mounting a Chainlit app at /chainlit, under uvicorn) plus two test routes.

``POST /burst`` fires writes the way Chainlit does, as tasks nobody awaits, and answers at once;
``GET /stored`` reads back what they left. No shutdown code: the app author writes none.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from chainlit.context import init_http_context
from chainlit.data import get_data_layer
from chainlit.step import StepDict
from fastapi import Query

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.browser.parent_app import app

_logger = logging.getLogger("chainlit_openrag_datalayer")  # INFO lines, which the test reads back
_logger.setLevel(logging.INFO)
_logger.addHandler(logging.StreamHandler())
_fired: set[asyncio.Task[Any]] = set()  # a reference to each task, as Chainlit's own caller keeps none


def _layer() -> OpenRAGDataLayer:
    layer = get_data_layer()  # type: ignore[no-untyped-call]
    assert isinstance(layer, OpenRAGDataLayer)
    return layer


def _step(thread_id: str, step_id: str, output: str) -> StepDict:
    return {"id": step_id, "threadId": thread_id, "type": "assistant_message", "output": output}


@app.post("/burst")
async def burst(threads: Annotated[list[str], Query()], steps: int, updates: int) -> dict[str, int]:
    """In each thread, ``steps`` messages, each created then updated ``updates`` times (outputs 1..n)."""
    init_http_context()  # Chainlit's write queue lets writes through at once in an HTTP context
    layer, fired = _layer(), 0
    for thread_id in threads:
        for number in range(steps):
            step_id = f"{thread_id}-{number}"
            writes = [layer.create_step(_step(thread_id, step_id, "0"))]
            writes += [layer.update_step(_step(thread_id, step_id, str(n))) for n in range(1, updates + 1)]
            for write in writes:
                task = asyncio.ensure_future(write)
                _fired.add(task)
                task.add_done_callback(_fired.discard)
                fired += 1
    return {"fired": fired}


@app.get("/stored")
async def stored(threads: Annotated[list[str], Query()]) -> dict[str, str]:
    """Each stored step's output, by step id."""
    layer = _layer()
    outputs: dict[str, str] = {}
    for thread_id in threads:
        thread = await layer.get_thread(thread_id)
        for step in thread["steps"] if thread else []:
            outputs[step["id"]] = step["output"]
    return outputs
