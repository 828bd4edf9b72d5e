"""Identity guard, through Chainlit's real HTTP login: two people with the same display name (OpenRAG's
identifier) never share one account, and the second never receives the first one's metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import chainlit.auth
import chainlit.data
import chainlit.server
import httpx
import pytest
from chainlit.config import config
from chainlit.user import User

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.reliability.conftest import LayerFactory

# API token -> (OpenRAG user id, display name). Two people are called "Jean Dupont".
PEOPLE = {"token-jean-1": (1, "Jean Dupont"), "token-jean-2": (2, "Jean Dupont"), "token-ann": (3, "Ann")}


async def openrag_login(username: str, password: str) -> User | None:
    """OpenRAG's password callback: the password is an API token; the identifier is the display name."""
    if password not in PEOPLE:
        return None
    user_id, display_name = PEOPLE[password]
    return User(
        identifier=display_name,
        metadata={"role": "user", "extra": {"id": user_id}, "openrag_auth_handle": f"handle-{password}"},
    )


@pytest.fixture
def login_app(monkeypatch: pytest.MonkeyPatch) -> Callable[[OpenRAGDataLayer], httpx.AsyncClient]:
    """Chainlit's own ASGI app, with OpenRAG's login and the given layer as its `@cl.data_layer`."""
    monkeypatch.setattr(config.code, "password_auth_callback", openrag_login)
    monkeypatch.setattr(chainlit.data, "_data_layer_initialized", True)

    def client(layer: OpenRAGDataLayer) -> httpx.AsyncClient:
        monkeypatch.setattr(chainlit.data, "_data_layer", layer)
        transport = httpx.ASGITransport(app=chainlit.server.app)
        return httpx.AsyncClient(transport=transport, base_url="http://openrag")

    return client


async def log_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/login", data={"username": "anyone", "password": token})


@pytest.fixture
async def layer_and_client(
    make_layer: LayerFactory, login_app: Callable[[OpenRAGDataLayer], httpx.AsyncClient]
) -> AsyncIterator[tuple[OpenRAGDataLayer, httpx.AsyncClient]]:
    layer = await make_layer()
    async with login_app(layer) as client:
        yield layer, client


async def test_second_person_with_the_same_name_is_refused(
    layer_and_client: tuple[OpenRAGDataLayer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Jean #2 logs in after Jean #1: 401, no session cookie, one WARNING; Jean #1's stored user is intact."""
    layer, client = layer_and_client
    assert (await log_in(client, "token-jean-1")).status_code == 200

    refused = await log_in(client, "token-jean-2")

    assert refused.status_code == 401 and "access_token" not in refused.cookies
    stored = await layer.get_user("Jean Dupont")
    assert stored is not None and stored.metadata["openrag_auth_handle"] == "handle-token-jean-1"
    warnings = [r.getMessage() for r in caplog.records if "Login refused" in r.getMessage()]
    assert len(warnings) == 1 and "extra.id" in warnings[0] and "token-jean-2" not in caplog.text


async def test_the_same_person_logs_in_again(
    layer_and_client: tuple[OpenRAGDataLayer, httpx.AsyncClient],
) -> None:
    """Jean #1 logs in again (another device) after Jean #2 was refused: accepted, and Ann too."""
    layer, client = layer_and_client
    assert (await log_in(client, "token-jean-1")).status_code == 200
    assert (await log_in(client, "token-jean-2")).status_code == 401

    assert (await log_in(client, "token-jean-1")).status_code == 200
    assert (await log_in(client, "token-ann")).status_code == 200
    stored = await layer.get_user("Jean Dupont")
    assert stored is not None and stored.metadata["extra"] == {"id": 1}


async def test_refused_person_never_receives_the_stored_metadata(
    layer_and_client: tuple[OpenRAGDataLayer, httpx.AsyncClient],
) -> None:
    """The websocket connect reads the user back with the session token: Jean #2 has none to show."""
    _, client = layer_and_client
    await log_in(client, "token-jean-1")
    client.cookies.clear()  # Jean #2's own browser

    response = await log_in(client, "token-jean-2")

    assert "handle-token-jean-1" not in response.text
    assert (await client.get("/user")).status_code == 401  # no session cookie was set


async def test_a_login_without_the_stable_id_is_not_guarded(
    layer_and_client: tuple[OpenRAGDataLayer, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apps whose users carry no `extra.id` log in as before: the guard has nothing to compare."""
    layer, client = layer_and_client

    async def plain_login(username: str, password: str) -> User:
        return User(identifier=username, metadata={"team": password})

    monkeypatch.setattr(config.code, "password_auth_callback", plain_login)
    for team in ("red", "blue"):
        assert (await log_in(client, team)).status_code == 200

    stored = await layer.get_user("anyone")
    assert stored is not None and stored.metadata == {"team": "blue"}


async def test_the_guard_can_be_turned_off(
    make_layer: LayerFactory, login_app: Callable[[OpenRAGDataLayer], httpx.AsyncClient]
) -> None:
    """IDENTITY_GUARD_PATH=off: Chainlit's own behaviour, the last login's metadata replaces the stored."""
    layer = await make_layer(identity_path=())
    async with login_app(layer) as client:
        assert (await log_in(client, "token-jean-1")).status_code == 200
        assert (await log_in(client, "token-jean-2")).status_code == 200

    stored = await layer.get_user("Jean Dupont")
    assert stored is not None and stored.metadata["openrag_auth_handle"] == "handle-token-jean-2"


async def test_the_first_login_of_a_process_is_guarded(
    make_layer: LayerFactory,
    login_app: Callable[[OpenRAGDataLayer], httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chainlit builds the layer during the first request that needs it, inside its login: the refusal
    holds there too, with Chainlit's create_jwt unwrapped until then."""
    first = await make_layer()
    async with login_app(first) as client:
        await log_in(client, "token-jean-1")
    monkeypatch.setattr(chainlit.server, "create_jwt", chainlit.auth.create_jwt)  # a fresh process
    built: list[Any] = []

    def factory() -> OpenRAGDataLayer:
        layer = OpenRAGDataLayer(first.settings)
        built.append(layer)
        return layer

    monkeypatch.setattr(config.code, "data_layer", factory)
    async with login_app(first) as client:
        monkeypatch.setattr(chainlit.data, "_data_layer", None)
        monkeypatch.setattr(chainlit.data, "_data_layer_initialized", False)
        refused = await log_in(client, "token-jean-2")
    for layer in built:
        await layer.close()

    assert len(built) == 1 and refused.status_code == 401
