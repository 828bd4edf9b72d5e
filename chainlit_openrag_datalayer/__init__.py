"""A durable Chainlit data layer: PostgreSQL for records, S3 for element files."""

from importlib.metadata import PackageNotFoundError, version

from .config import S3Settings, Settings
from .data_layer import OpenRAGDataLayer
from .errors import (
    ConfigurationError,
    DataLayerError,
    SchemaConflictError,
    SchemaOutOfDateError,
    StorageError,
)
from .storage import ElementStorage

try:
    __version__ = version("chainlit-openrag-datalayer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "ConfigurationError",
    "DataLayerError",
    "ElementStorage",
    "OpenRAGDataLayer",
    "S3Settings",
    "SchemaConflictError",
    "SchemaOutOfDateError",
    "Settings",
    "StorageError",
    "__version__",
]
