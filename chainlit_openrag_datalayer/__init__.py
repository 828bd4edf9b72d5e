"""A durable Chainlit data layer: PostgreSQL for records, S3 for element files.

The public names below are imported on first use (PEP 562): importing Chainlit writes
``.chainlit/`` and ``.files/`` into the working directory and takes about two seconds, which the
command line (``python -m chainlit_openrag_datalayer``) must not pay for ``--help``.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    DataLayerError,
    SchemaConflictError,
    SchemaOutOfDateError,
    StorageError,
    WriteQueueFullError,
    WriteRefusedError,
)

if TYPE_CHECKING:
    from .config import S3Settings, Settings
    from .data_layer import OpenRAGDataLayer
    from .storage.base import ElementStorage


def _quiet_alembic() -> None:
    """Importing Alembic logs seven "setup plugin" lines at INFO, and each run "Context impl PostgresqlImpl."
    and "Will assume transactional DDL."; ``migrations`` logs what it did itself. These loggers go to
    WARNING unless the application's logging configuration set their level (Alembic's fileConfig does)."""
    for name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)


_quiet_alembic()

try:
    __version__ = version("chainlit-openrag-datalayer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY = {
    "OpenRAGDataLayer": ".data_layer",
    "S3Settings": ".config",
    "Settings": ".config",
    "ElementStorage": ".storage.base",
}

__all__ = [
    "ConfigurationError",
    "DataLayerError",
    "DatabaseUnavailableError",
    "ElementStorage",
    "OpenRAGDataLayer",
    "S3Settings",
    "SchemaConflictError",
    "SchemaOutOfDateError",
    "Settings",
    "StorageError",
    "WriteQueueFullError",
    "WriteRefusedError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
