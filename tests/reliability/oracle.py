"""The documented normalisations (README "Normalisations"), written independently of convert.py.

NUL and lone surrogates become U+FFFD; metadata values JSON cannot hold become JSON (datetimes -> ISO
strings, bytes -> UTF-8 text or base64, sets -> sorted lists, NaN and infinities -> null, other objects ->
str()); nesting deeper than 64 levels is cut to a string; keys named in REDACT_METADATA_KEYS (any depth,
any case) hold "[redacted]"; unparseable timestamps are replaced (createdAt) or dropped (start, end).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

REPLACEMENT = "\ufffd"
REDACTED = "[redacted]"
MAX_DEPTH = 64
SECRET_KEYS = frozenset({"api_key", "openrag_api_key", "token", "password", "secret"})


def normalised(text: str) -> str:
    """Text as PostgreSQL can hold it."""
    return "".join(REPLACEMENT if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def iso(moment: datetime) -> str:
    """Chainlit's timestamp shape: UTC, microseconds, a trailing Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def parsed_time(value: object) -> datetime | None:
    """An ISO-8601 string (``Z``, an offset, or naive meaning UTC) as an aware datetime; else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def redacted(value: Any, keys: frozenset[str] = SECRET_KEYS) -> Any:
    """Every value under a secret key replaced, at any depth, before anything else."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and k.lower() in keys else redacted(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redacted(v, keys) for v in value]
    return value


def as_json(value: Any, depth: int = 0) -> Any:
    """The JSON a metadata value is stored as."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return normalised(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {_key(k): as_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [as_json(v, depth + 1) for v in sorted(value, key=repr)]
    if isinstance(value, list | tuple):
        return [as_json(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return normalised(value.decode("utf-8"))
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return as_json(float(value), depth) if not value.is_nan() else None
    return normalised(str(value))


def _key(key: object) -> str:
    return normalised(key) if isinstance(key, str) else normalised(str(as_json(key)))


def same_json(stored: Any, expected: Any) -> bool:
    """Equal as JSON; a float may come back as an int of the same value (jsonb keeps decimals)."""
    if isinstance(expected, float) or isinstance(stored, float):
        return isinstance(stored, int | float) and float(stored) == float(expected)
    if isinstance(expected, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == expected.keys()
            and all(same_json(stored[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(expected)
            and all(same_json(s, e) for s, e in zip(stored, expected, strict=True))
        )
    return type(stored) is type(expected) and stored == expected
