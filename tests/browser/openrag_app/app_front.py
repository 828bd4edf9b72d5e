"""A chat front end shaped like OpenRAG's (``openrag/app_front.py``), written for the tests.

What matters to the data layer is kept: the password typed at login is an API token checked against the
API (``OPENRAG_API_URL``, the stand-in of ``tests/browser/openrag_api.py``); the user carries the API's
profile under ``extra`` and a handle to an in-process token store; the token lives in the user session as
``openrag_api_key``, with the store as the fallback; answers stream from ``/v1/chat/completions`` with the
whole history; sources are URL-only elements whose URL carries ``?token=``; ``@cl.on_chat_resume`` is
registered only when ``CHAINLIT_DATALAYER_COMPOSE`` is set. The user's identifier is the guide's fix,
``openrag:<id>`` with the display name shown (``docs/openrag.md``). Each source is also linked the way the
guide shows to keep it opening after a resume: through ``/chainlit/sources/<file>``, a route that knows the
user from Chainlit's login cookie, with no token in the stored URL.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Annotated, Any
from urllib.parse import quote

import chainlit as cl
import httpx
from chainlit.auth import get_current_user
from chainlit.server import app as chainlit_app
from chainlit.types import ThreadDict
from fastapi import Depends, HTTPException
from fastapi.responses import RedirectResponse

from chainlit_openrag_datalayer import OpenRAGDataLayer

API = os.environ["OPENRAG_API_URL"]
_tokens: dict[str, str] = {}  # handle -> API token, for this process only (lost on restart)

# Chainlit leaves cl.user_session.get/set and Message.send unannotated (mypy strict).


@cl.data_layer
def data_layer() -> OpenRAGDataLayer:
    return OpenRAGDataLayer.from_env()


@cl.password_auth_callback
async def auth_callback(username: str, password: str) -> cl.User | None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{API}/users/info", headers={"Authorization": f"Bearer {password}"})
    if response.status_code != 200:
        return None
    profile: dict[str, Any] = response.json()
    handle = secrets.token_urlsafe(16)
    _tokens[handle] = password
    return cl.User(
        identifier=f"openrag:{profile['id']}",  # unique; OpenRAG's own uses the display name
        display_name=profile["display_name"],
        metadata={
            "role": "admin" if profile.pop("is_admin") else "user",
            "provider": "credentials",
            "extra": profile,
            "openrag_auth_handle": handle,
        },
    )


def api_key() -> str | None:
    """The session's token, else the one behind the user's handle (a resumed session has none)."""
    key: str | None = cl.user_session.get("openrag_api_key")  # type: ignore[no-untyped-call]
    if key:
        return key
    user: cl.User | None = cl.user_session.get("user")  # type: ignore[no-untyped-call]
    return _tokens.get(user.metadata.get("openrag_auth_handle", "")) if user else None


async def open_source(
    filename: str, user: Annotated[cl.User | None, Depends(get_current_user)]
) -> RedirectResponse:
    """A source link with no token in it (docs/openrag.md, 2.4): Chainlit's login cookie says who asks."""
    token = _tokens.get(user.metadata.get("openrag_auth_handle", "")) if user else None
    if not token:
        raise HTTPException(status_code=401, detail="Log in to the chat again")
    return RedirectResponse(f"{API}/static/{quote(filename)}?token={token}")


chainlit_app.add_api_route("/sources/{filename:path}", open_source, methods=["GET"])
chainlit_app.router.routes.insert(0, chainlit_app.router.routes.pop())  # ahead of Chainlit's page route


@cl.on_chat_start
async def on_chat_start() -> None:
    cl.user_session.set("messages", [])  # type: ignore[no-untyped-call]
    cl.user_session.set("openrag_api_key", api_key())  # type: ignore[no-untyped-call]


if os.environ.get("CHAINLIT_DATALAYER_COMPOSE"):

    @cl.on_chat_resume
    async def on_chat_resume(thread: ThreadDict) -> None:
        """Nothing to do: the restored user session is the conversation's state."""


@cl.on_message
async def on_message(message: cl.Message) -> None:
    messages: list[dict[str, str]] = cl.user_session.get("messages") or []  # type: ignore[no-untyped-call]
    messages.append({"role": "user", "content": message.content})
    key = api_key()
    answer = cl.Message(content="")
    await answer.send()  # type: ignore[no-untyped-call]
    sources: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream(
            "POST",
            f"{API}/v1/chat/completions",
            json={"model": "openrag-all", "messages": messages, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        if response.status_code != 200:
            error = cl.Message(content=f"An error occurred: Error code: {response.status_code}")
            await error.send()  # type: ignore[no-untyped-call]
            return
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            sources = json.loads(chunk.get("extra") or "{}").get("sources", sources)
            if content := chunk["choices"][0]["delta"].get("content"):
                await answer.stream_token(content)
    # Sources as OpenRAG shows them: URL-only, the token in the URL. And one file stored with the thread.
    elements: list[Any] = [
        cl.Image(name=source["filename"], url=f"{source['file_url']}?token={key}", display="inline")
        for source in sources
    ]
    elements += [  # the guide's link: nothing secret in it
        cl.Image(name=f"{name} (link)", url=f"/chainlit/sources/{quote(name)}", display="inline")
        for name in (source["filename"] for source in sources)
    ]
    elements.append(cl.File(name="answer-notes.txt", content=f"Notes on: {message.content}\n".encode()))
    answer.elements = elements
    await answer.update()  # type: ignore[no-untyped-call]
    messages.append({"role": "assistant", "content": answer.content})
    cl.user_session.set("messages", messages)  # type: ignore[no-untyped-call]
