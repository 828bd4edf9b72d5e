"""Secrets never reach the database nor the logs, and come back absent (never a placeholder) on resume."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import chainlit.data
import pytest
from chainlit.auth import authenticate_user, create_jwt
from chainlit.session import WebsocketSession
from chainlit.socket import persist_user_session, resume_thread
from chainlit.user import PersistedUser, User
from chainlit.user_session import user_sessions

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import text_element
from tests.reliability.conftest import LayerFactory
from tests.reliability.faults import UnreachableStorage
from tests.reliability.inputs import fresh_id, nested
from tests.reliability.test_bad_input import raw_step

SECRET = "s3cr3t-VALUE-never-stored"
TABLE_DUMPS = [
    f"SELECT coalesce(string_agg(t::text, ' '), '') FROM \"{table}\" t"  # noqa: S608  # constant names
    for table in ("User", "Thread", "Step", "Element", "Feedback")
]


def secret_metadata() -> dict[Any, Any]:
    """Secrets under many spellings and depths, next to values that must be kept."""
    return {
        "api_key": SECRET,
        "kept": "visible",
        "Token": {"nested": SECRET},
        "list": [{"PASSWORD": SECRET}, ("tuple", {"secret": SECRET})],
        "deep": {"a": {"b": {"openrag_api_key": SECRET}}},
        "openrag-api-key": SECRET,
        "openragApiKey": SECRET,
        "access_token": SECRET,
        "Authorization": f"Bearer {SECRET}",
        "OPENAI_API_KEY": SECRET,
        "x-api-key": SECRET,
        "client_secret": SECRET,
        b"api_key": SECRET,
        "client": ClientSettings(api_key=SECRET, model="visible"),
        "headers": [("token", SECRET), ("accept", "visible")],
        "callback": f"https://app.example/cb#access_token={SECRET}&state=visible",
        "download": f"https://b.example/k?X-Amz-Signature={SECRET}&sig={SECRET}&part=visible",
        "usage": {"max_tokens": 256, "prompt_tokens": 12, "completion_tokens": 30, "token_count": 42},
    }


@dataclass
class ClientSettings:
    api_key: str
    model: str


async def database_text(database_url: str) -> str:
    """Every row of every table as text, read with asyncpg (not through the layer)."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = [await connection.fetchval(query) for query in TABLE_DUMPS]
        return "".join(rows)
    finally:
        await connection.close()


def secret_element(thread_id: str, **fields: Any) -> Any:
    element = text_element(thread_id, None, content="file")
    element.url = f"https://files.example/doc?token={SECRET}&api_key={SECRET}&page=2"
    # Text declares no props; Chainlit's Element.to_dict reads it with getattr, so set it the same way.
    for name, value in {"props": {"secret": SECRET, "kept": "visible"}, **fields}.items():
        setattr(element, name, value)
    return element


async def test_secrets_are_left_out_of_every_stored_row(layer: OpenRAGDataLayer, database_url: str) -> None:
    """User, thread, step (metadata, generation, unknown keys) and element (props, URL) rows: no secret,
    no placeholder, every other value kept (counts named after tokens included)."""
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}", metadata=secret_metadata()))
    assert user is not None
    thread_id = fresh_id()
    await layer.update_thread(thread_id, name="secrets", user_id=user.id, metadata=secret_metadata())
    step = raw_step(
        thread_id, fresh_id(), metadata=secret_metadata(), generation={"settings": secret_metadata()}
    )
    await layer.create_step({**step, "openrag_api_key": SECRET})  # type: ignore[typeddict-unknown-key]
    await layer.create_element(secret_element(thread_id))

    stored = await database_text(database_url)
    assert SECRET not in stored and "redacted" not in stored
    assert stored.count("visible") == 4 * 5 + 1 and "page=2" in stored  # 5 in each metadata, 1 in props
    assert stored.count("completion_tokens") == stored.count("max_tokens") == 4


async def test_added_key_names_are_left_out(make_layer: LayerFactory, database_url: str) -> None:
    """REDACT_METADATA_KEYS adds names, in any spelling, to the built-in rule."""
    layer = await make_layer(redact_keys=frozenset({"session_id"}))
    thread_id = fresh_id()
    await layer.update_thread(
        thread_id, metadata={"sessionId": SECRET, "SESSION-ID": SECRET, "api_key": SECRET}
    )

    assert SECRET not in await database_text(database_url)


async def test_resumed_session_has_no_secret_not_even_a_placeholder(
    layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chainlit persists the user session on disconnect and restores it on resume: the API key comes back
    absent, so the app falls back to its own store instead of sending a placeholder as its token."""
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}"))
    assert user is not None
    thread_id = fresh_id()
    await layer.update_thread(thread_id, user_id=user.id)

    await persist_user_session(thread_id, {"openrag_api_key": SECRET, "chat_profile": "docs", "messages": []})
    restored = await resumed_session(user, thread_id)

    assert "openrag_api_key" not in restored
    assert (restored["chat_profile"], restored["messages"]) == ("docs", [])


async def test_placeholder_stored_by_an_earlier_version_goes_at_the_next_write(
    layer: OpenRAGDataLayer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread whose metadata holds an older version's "[redacted]" loses it when the session is saved."""
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}"))
    assert user is not None
    thread_id = fresh_id()
    await layer.update_thread(thread_id, user_id=user.id)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """UPDATE "Thread" SET metadata = '{"openrag_api_key": "[redacted]"}' WHERE id = $1""", thread_id
        )
    finally:
        await connection.close()

    await persist_user_session(thread_id, {"openrag_api_key": SECRET, "chat_profile": "docs"})

    assert "openrag_api_key" not in await resumed_session(user, thread_id)


async def test_user_read_back_on_connect_has_no_secret(
    layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chainlit reads the user back from the layer on every websocket connect: its secret is absent."""
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    login = User(identifier=f"user-{fresh_id()}", metadata={"openrag_api_key": SECRET, "role": "admin"})
    await layer.create_user(login)

    connected = await authenticate_user(create_jwt(login))

    assert isinstance(connected, PersistedUser)
    assert connected.metadata == {"role": "admin"}


async def resumed_session(user: PersistedUser, thread_id: str) -> dict[str, Any]:
    """The user session Chainlit builds when `user` resumes `thread_id` (chainlit.socket.resume_thread)."""
    session = WebsocketSession(
        id=fresh_id(), socket_id=fresh_id(), emit=ignore, emit_call=ignore, user_env={}, client_type="webapp",
        user=user, thread_id=thread_id,
    )  # fmt: skip
    session.thread_id_to_resume = thread_id
    try:
        assert await resume_thread(session) is not None
        return dict(user_sessions.pop(session.id))
    finally:
        await session.delete()  # type: ignore[no-untyped-call]  # Chainlit leaves it unannotated


def ignore(*args: Any) -> None:
    return None


@pytest.mark.parametrize("depth", [60, 64, 70, 120])
async def test_secret_nested_past_the_depth_limit_is_not_stored(
    layer: OpenRAGDataLayer, database_url: str, depth: int
) -> None:
    """Redaction reaches as deep as storage does: the cut-off string holds no secret either."""
    await layer.create_step(
        raw_step(fresh_id(), fresh_id(), metadata={"x": nested(depth, {"api_key": SECRET})})
    )

    assert SECRET not in await database_text(database_url)


async def test_a_write_lost_to_an_outage_logs_no_secret(
    make_layer: LayerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage unreachable past the budget: the ERROR names the element, and carries no secret."""
    caplog.set_level(logging.DEBUG)
    layer = await make_layer(storage=UnreachableStorage(tmp_path / "files"), write_retry_seconds=0.3)
    element = secret_element(fresh_id())
    with pytest.raises(ConnectionRefusedError) as raised:
        await layer.create_element(element)

    assert any(element.id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert SECRET not in caplog.text and SECRET not in repr(raised.value)
