"""What the Chainlit call in progress says: its websocket session, if any, and Chainlit's write queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from chainlit.data.utils import queue_until_user_message

if TYPE_CHECKING:
    from chainlit.session import WebsocketSession

T = TypeVar("T")
P = ParamSpec("P")


def queued_until_user_message(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Chainlit's queue (writes wait for the first user message), with the method's own types.

    Chainlit's decorator sits on ``BaseDataLayer``'s abstract methods and is not inherited.
    """
    return cast(Callable[P, Awaitable[T]], queue_until_user_message()(method))  # type: ignore[no-untyped-call]


def websocket_session() -> WebsocketSession | None:
    from chainlit.context import context_var
    from chainlit.session import WebsocketSession

    context = context_var.get(None)
    session = None if context is None else context.session
    return session if isinstance(session, WebsocketSession) else None


def in_websocket_session() -> bool:
    return websocket_session() is not None


def outside_session_thread(thread_id: str | None) -> bool:
    """An element write naming another thread than its websocket session's.

    Chainlit's ``PUT``/``DELETE /project/element`` take the element's thread from the request
    body; the session (checked by Chainlit to be the caller's) says which thread is the caller's.
    """
    session = websocket_session()
    return session is not None and thread_id != session.thread_id
