"""A stand-in for OpenRAG's API, served in the test process: who is a token, streamed answers, files.

It answers what OpenRAG's chat front end calls, in OpenRAG's shapes: ``GET /users/info`` with
``Authorization: Bearer <API token>``, ``POST /v1/chat/completions`` (OpenAI server-sent events whose chunks
carry an ``extra`` JSON text, the last one with the sources) and the source files at ``/static/{name}``,
which want the token in ``?token=``. Every call is recorded with the token it carried, so a test can tell
the real token from a placeholder or another user's.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.conformance.factories import PNG_BYTES
from tests.services import LOOPBACK, free_port

TOKEN_DELAY_SECONDS = 0.03
SOURCE_IMAGE = "org-chart.png"


@dataclass(frozen=True)
class ApiUser:
    """A person known to the API: their token is the password they type into the chat's login form."""

    id: int
    display_name: str
    token: str
    email: str


@dataclass(frozen=True)
class Call:
    path: str
    token: str | None


@dataclass
class StandInApi:
    """The API's users, and the calls it received, in order."""

    users: list[ApiUser]
    calls: list[Call] = field(default_factory=list)
    base_url: str = ""

    def tokens_of(self, path: str) -> list[str | None]:
        """The token each call to ``path`` carried, oldest first."""
        return [call.token for call in self.calls if call.path == path]

    def app(self) -> FastAPI:
        api = FastAPI()
        by_token = {user.token: user for user in self.users}

        def authenticated(request: Request, token: str | None) -> ApiUser | None:
            self.calls.append(Call(request.url.path, token))
            return by_token.get(token or "")

        @api.get("/users/info")
        async def user_info(request: Request) -> Response:
            user = authenticated(request, _bearer(request))
            if user is None:
                return JSONResponse({"detail": "invalid token"}, status_code=401)
            return JSONResponse(
                {"id": user.id, "display_name": user.display_name, "email": user.email, "is_admin": False}
            )

        @api.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            if authenticated(request, _bearer(request)) is None:
                return JSONResponse({"error": {"message": "invalid API key"}}, status_code=401)
            body = await request.json()
            return StreamingResponse(self._answer(body["messages"]), media_type="text/event-stream")

        @api.get("/static/{name}")
        async def static(request: Request, name: str, token: str | None = None) -> Response:
            if authenticated(request, token) is None:
                return JSONResponse({"detail": "invalid token"}, status_code=401)
            return Response(PNG_BYTES, media_type="image/png")

        return api

    async def _answer(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        turn = sum(message["role"] == "user" for message in messages)
        words = f"Here is what the documents say about: {messages[-1]['content']} (Answer {turn})".split()
        for number, word in enumerate(words):
            content = word if number == 0 else f" {word}"
            yield _event({"choices": [{"delta": {"content": content}}], "extra": "{}"})
            await asyncio.sleep(TOKEN_DELAY_SECONDS)
        source = {"filename": SOURCE_IMAGE, "file_url": f"{self.base_url}/static/{SOURCE_IMAGE}", "page": 1}
        yield _event({"choices": [{"delta": {}}], "extra": json.dumps({"sources": [source]})})
        yield "data: [DONE]\n\n"


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _event(chunk: dict[str, Any]) -> str:
    return f"data: {json.dumps({'object': 'chat.completion.chunk', **chunk})}\n\n"


@contextmanager
def serving(api: StandInApi) -> Iterator[StandInApi]:
    """The API on a free loopback port, in a thread of this process, until the block ends."""
    port = free_port()
    api.base_url = f"http://{LOOPBACK}:{port}"
    server = uvicorn.Server(uvicorn.Config(api.app(), host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the stand-in API did not start")
            threading.Event().wait(0.05)
        yield api
    finally:
        server.should_exit = True
        thread.join(30)
