"""Errors raised by the data layer; each message says what to do next.

DataLayerError
 ├── ConfigurationError     a setting is missing, malformed or contradicts another
 ├── SchemaOutOfDateError   the database is not at this package's migration head
 └── StorageError           the object store refused an operation
"""

from __future__ import annotations


class DataLayerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(DataLayerError):
    """A setting is missing, malformed or contradicts another one."""


class SchemaOutOfDateError(DataLayerError):
    """The database schema is not at the revision this package needs."""


class SchemaConflictError(SchemaOutOfDateError):
    """The tables match no shape ``upgrade`` can adopt; nothing was changed."""


class StorageError(DataLayerError):
    """The object store refused an upload, a delete or a URL."""
