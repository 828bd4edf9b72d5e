"""Identity guard: a login never takes over a stored user that belongs to someone else.

Chainlit keys users by ``identifier`` alone, and an app may choose a non-unique one (OpenRAG uses the
display name): two people then share one account, and since each login replaces ``User.metadata`` and
Chainlit reads the user back on every websocket connect, one person's next request carries the other's
metadata (OpenRAG: their API token). With the guard, a stable id at a metadata path (``extra.id`` by
default) is compared inside ``create_user``'s statement: a login whose id differs from the stored user's
is refused, and the stored row is neither changed nor returned.

Chainlit's login (``chainlit.server._authenticate_user``, 2.2 to 2.12) swallows ``create_user``'s errors
and issues the session token anyway; the refusal reaches the browser through ``chainlit.server.create_jwt``,
which that function calls right after ``create_user``, in the same task: wrapped, it answers 401 for the
refused identifier. The wrapper is installed when the layer is built, which Chainlit does inside
``get_data_layer()``, before that call, so the first login of a process is guarded too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainlit.user import User

logger = logging.getLogger(__name__)

# The identifier whose login this task refused; read (and cleared) by the wrapped create_jwt.
_refused_login: ContextVar[str | None] = ContextVar("chainlit_openrag_refused_login", default=None)


def refuse_login(identifier: str, path: tuple[str, ...]) -> None:
    """Log the refusal (one line) and make the current login request fail with 401."""
    logger.warning(
        "Login refused for user identifier %r: its %s differs from the stored user's, so two people share "
        "this identifier; the stored user is left unchanged. Give each person a unique identifier "
        "(e.g. 'openrag:<id>'; README, Identity guard).",
        identifier, ".".join(path),
    )  # fmt: skip
    _refused_login.set(identifier)


def install_login_guard() -> None:
    """Wrap Chainlit's ``create_jwt`` (once per process) so that a refused login gets no session token."""
    import chainlit.server

    names = vars(chainlit.server)  # the module's globals: _authenticate_user looks create_jwt up there
    if not getattr(names["create_jwt"], "refuses_guarded_logins", False):
        names["create_jwt"] = _refusing(names["create_jwt"])


def _refusing(create_jwt: Callable[[User], str]) -> Callable[[User], str]:
    @functools.wraps(create_jwt)
    def guarded(user: User) -> str:
        if _refused_login.get() == user.identifier:
            from fastapi import HTTPException

            _refused_login.set(None)
            raise HTTPException(status_code=401, detail="credentialssignin")
        return create_jwt(user)

    guarded.refuses_guarded_logins = True  # type: ignore[attr-defined]
    return guarded
