"""Thread sharing survives Chainlit's disconnect, which writes back a stale copy of the metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from chainlit.context import init_http_context, init_ws_context
from chainlit.session import WebsocketSession

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import create_user, new_id


@pytest.fixture
async def websocket_session() -> AsyncIterator[WebsocketSession]:
    """A websocket session like the one whose disconnect persists the session metadata."""

    def ignore(*args: Any) -> None:
        return None

    session = WebsocketSession(
        id=new_id(), socket_id=new_id(), emit=ignore, emit_call=ignore, user_env={}, client_type="webapp"
    )
    yield session
    await session.delete()  # type: ignore[no-untyped-call]  # Chainlit leaves it unannotated


async def shared_thread(layer: OpenRAGDataLayer) -> str:
    """A thread its owner shared through the share endpoint (an HTTP request: no websocket context)."""
    user, thread_id = await create_user(layer), new_id()
    await layer.update_thread(thread_id, user_id=user.id, metadata={"chat_profile": "docs"})
    init_http_context()
    await layer.update_thread(thread_id, metadata={"is_shared": True, "shared_at": "2026-11-26T10:00:00Z"})
    return thread_id


async def metadata_of(layer: OpenRAGDataLayer, thread_id: str) -> dict[str, Any]:
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["metadata"] is not None
    return thread["metadata"]


async def test_disconnect_with_stale_metadata_keeps_is_shared(
    openrag_layer: OpenRAGDataLayer, websocket_session: WebsocketSession
) -> None:
    """The disconnect's copy, taken before the share, writes is_shared=False: sharing stays on."""
    thread_id = await shared_thread(openrag_layer)
    init_ws_context(websocket_session)

    await openrag_layer.update_thread(thread_id, metadata={"is_shared": False, "chat_profile": "code"})

    metadata = await metadata_of(openrag_layer, thread_id)
    assert (metadata["is_shared"], metadata["shared_at"], metadata["chat_profile"]) == (
        True,
        "2026-11-26T10:00:00Z",
        "code",
    )


async def test_unsharing_through_the_share_endpoint_clears_is_shared(openrag_layer: OpenRAGDataLayer) -> None:
    """The share endpoint (HTTP) can turn sharing off again."""
    thread_id = await shared_thread(openrag_layer)

    await openrag_layer.update_thread(thread_id, metadata={"is_shared": False, "shared_at": None})

    metadata = await metadata_of(openrag_layer, thread_id)
    assert metadata["is_shared"] is False and "shared_at" not in metadata
