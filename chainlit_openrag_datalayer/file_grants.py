"""The served-URL token: what a file URL grants (object key, file name, type, owner, thread, expiry),
carried in its query string and signed with HMAC-SHA256 under a key derived from ``CHAINLIT_AUTH_SECRET``.

Only the format lives here; the route that reads it is ``served``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_FIELDS = ("k", "n", "m", "u", "t", "e")


class InvalidGrant(Exception):
    """The URL was not signed by this app's secret, was altered, or has expired."""


@dataclass(frozen=True)
class FileGrant:
    """What a served URL allows: read ``key`` of ``thread`` until ``expires``, as ``user`` (empty: anyone)."""

    key: str
    name: str
    mime: str
    user: str
    thread: str
    expires: int


class GrantSigner:
    """Signs grants into query fields, and checks them."""

    def __init__(self, secret: str | None, expiry_seconds: int) -> None:
        if secret is None:
            secret = secrets.token_urlsafe(32)
            logger.warning(
                "CHAINLIT_AUTH_SECRET is not set: element URLs are signed with a per-process key and "
                "stop working after a restart or on another worker. Set it (chainlit create-secret)."
            )
        self._key = hmac.new(
            secret.encode(), b"chainlit-openrag-datalayer/element-url", hashlib.sha256
        ).digest()
        self.expiry_seconds = expiry_seconds

    def sign(
        self,
        key: str,
        name: str,
        mime: str,
        user: str | None,
        thread: str | None = None,
        now: float | None = None,
    ) -> dict[str, str]:
        """A URL's query fields granting ``key`` for ``expiry_seconds`` from ``now``, signature included."""
        expires = int((time.time() if now is None else now) + self.expiry_seconds)
        values = {"k": key, "n": name, "m": mime, "u": user or "", "t": thread or "", "e": str(expires)}
        values["s"] = self._signature(values)
        return values

    def verify(self, query: Mapping[str, str], now: float | None = None) -> FileGrant:
        if any(field not in query for field in (*_FIELDS, "s")):
            raise InvalidGrant("incomplete file URL")
        signature, expires = query["s"], query["e"]
        # compare_digest raises on non-ASCII text: such a signature was never ours.
        if not signature.isascii() or not hmac.compare_digest(self._signature(query), signature):
            raise InvalidGrant("file URL signature does not match")
        # isdigit() alone accepts other scripts' digits, which int() reads too.
        if not (expires.isascii() and expires.isdigit()) or int(expires) < (
            time.time() if now is None else now
        ):
            raise InvalidGrant("file URL has expired: reload the thread for a fresh one")
        return FileGrant(
            key=query["k"],
            name=query["n"],
            mime=query["m"],
            user=query["u"],
            thread=query["t"],
            expires=int(expires),
        )

    def _signature(self, values: Mapping[str, str]) -> str:
        message = json.dumps([values[field] for field in _FIELDS]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
