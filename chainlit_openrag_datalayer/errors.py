"""Errors raised by the data layer; each message says what to do next.

DataLayerError
 ├── ConfigurationError     a setting is missing, malformed or contradicts another
 ├── SchemaOutOfDateError   the database is not at this package's migration head
 ├── DatabaseUnavailableError  the database cannot be reached or refuses the connection
 ├── StorageError           the object store refused an operation
 ├── WriteRefusedError      a write would cross threads or revive a deleted thread; nothing changed
 └── WriteQueueFullError    too many writes are waiting (the database or storage is down); this one is lost
"""

from __future__ import annotations

import re
import traceback
from pathlib import PurePath


class DataLayerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(DataLayerError):
    """A setting is missing, malformed or contradicts another one."""


class SchemaOutOfDateError(DataLayerError):
    """The database schema is not at the revision this package needs."""


class SchemaConflictError(SchemaOutOfDateError):
    """The tables match no shape ``upgrade`` can adopt; nothing was changed."""


class DatabaseUnavailableError(DataLayerError):
    """The database cannot be reached, does not answer in time or refuses the connection."""


class StorageError(DataLayerError):
    """The object store refused an upload, a delete or a URL."""


_LIBRARY_LINK = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def describe(error: BaseException) -> str:
    """``Class: first line`` of the error at the root of ``error``, for a person to read.

    SQLAlchemy wraps driver errors (``.orig``, ``__cause__``) and appends the SQL and a link to its own
    documentation; neither helps an operator, and the SQL may carry user data.
    """
    cause = _root(error)
    lines = _LIBRARY_LINK.sub("", str(cause)).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def log_safe(error: BaseException) -> str:
    """What a log line may say about ``error``: its class, the codes and schema names it carries and
    where it was raised, never its text.

    PostgreSQL's messages quote values (``DETAIL: Failing row contains (...)``, ``invalid input syntax
    for type integer: "..."``) and a driver's may quote SQL parameters, which hold user data.
    """
    cause = _root(error)
    facts = [
        f"{label} {value}"
        for label, value in (
            ("SQLSTATE", getattr(cause, "sqlstate", None)),
            ("table", getattr(cause, "table_name", None)),
            ("column", getattr(cause, "column_name", None)),
            ("constraint", getattr(cause, "constraint_name", None)),
            ("S3 error", (getattr(cause, "response", None) or {}).get("Error", {}).get("Code")),
        )
        if value
    ]
    frames = traceback.extract_tb(cause.__traceback__)
    ours = [frame for frame in frames if "chainlit_openrag_datalayer" in PurePath(frame.filename).parts]
    if where := ours or frames:
        facts.append(f"at {PurePath(where[-1].filename).name}:{where[-1].lineno}")
    return f"{type(cause).__name__} ({', '.join(facts)})" if facts else type(cause).__name__


def _root(error: BaseException) -> BaseException:
    """The driver's error under SQLAlchemy's wrappers (``.orig``, ``__cause__``)."""
    cause = error
    while (deeper := getattr(cause, "orig", None) or cause.__cause__) is not None and deeper is not cause:
        if not isinstance(deeper, BaseException):
            break
        cause = deeper
    return cause


class WriteRefusedError(DataLayerError):
    """A write named a row of another thread (or step), or a deleted thread; nothing was changed."""


class WriteQueueFullError(DataLayerError):
    """``MAX_PENDING_WRITES`` writes (or ``MAX_PENDING_WRITE_MB``) are already waiting; this one is lost."""
