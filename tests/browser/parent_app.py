"""A FastAPI app mounting a Chainlit app, as OpenRAG serves it: ``uvicorn tests.browser.parent_app:app``.

``MOUNTED_CHAINLIT_TARGET`` is the Chainlit script, ``MOUNTED_CHAINLIT_PATH`` where it is mounted (default
``/chainlit``; ``/`` redirects there), ``MOUNTED_PARENT_ROOT_PATH`` the FastAPI app's ``root_path`` (the
prefix of a proxy in front of it), if any.
"""

from __future__ import annotations

import os

from chainlit.utils import mount_chainlit
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

MOUNT_PATH = os.environ.get("MOUNTED_CHAINLIT_PATH") or "/chainlit"

app = FastAPI()
# Set after construction: FastAPI deprecates the keyword, and this is what mount_chainlit reads.
app.root_path = os.environ.get("MOUNTED_PARENT_ROOT_PATH", "")


@app.get("/", include_in_schema=False)
async def to_chat() -> RedirectResponse:
    return RedirectResponse(f"{app.root_path}{MOUNT_PATH}/")


mount_chainlit(app, target=os.environ["MOUNTED_CHAINLIT_TARGET"], path=MOUNT_PATH)
