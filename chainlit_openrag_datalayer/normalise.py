"""Normalisation of what users and models send into what PostgreSQL stores; no I/O.

NUL characters and lone surrogates become U+FFFD; metadata values that JSON cannot hold become JSON
(datetimes -> ISO strings, bytes -> UTF-8 text or base64, sets/tuples -> lists, NaN/Infinity -> null,
other objects -> str); nesting deeper than ``MAX_JSON_DEPTH`` becomes ``TOO_DEEP``; unparseable
timestamps give None (the server's clock wins); values under the keys of ``redact`` become
``REDACTED``. The README's "Normalisations" section is the user-facing copy of these rules.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from uuid import UUID

MAX_JSON_DEPTH = 64
TOO_DEEP = "[nested too deep]"
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Make a string storable in PostgreSQL: NUL and lone surrogates become U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if not value.isascii() and _SURROGATE.search(value):
        value = _SURROGATE.sub(REPLACEMENT, value)
    return value


def optional_text(value: object) -> str | None:
    """Text for a text column: None stays None, strings are cleaned, anything else becomes JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    return json.dumps(json_safe(value), ensure_ascii=False)


def json_safe(value: object, depth: int = 0) -> Any:
    """Return ``value`` as plain JSON data that PostgreSQL's jsonb accepts."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_JSON_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {json_key(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(v, depth + 1) for v in items]
    return _json_scalar(value, depth)


def _json_scalar(value: object, depth: int) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return clean_text(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, Decimal):
        return None if value.is_nan() else json_safe(float(value), depth)
    if isinstance(value, Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), depth + 1)
    return clean_text(str(value))


def json_key(key: object) -> str:
    return clean_text(key) if isinstance(key, str) else clean_text(str(json_safe(key)))


def json_object(value: object) -> dict[str, Any]:
    """A JSON object for a metadata column; a non-mapping value is kept under ``"value"``.

    Values are made JSON-safe later, by the engine's serializer (``dumps``).
    """
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else {"value": value}


def loads(text: str) -> Any:
    """The JSON columns' decoder; most ``extra`` and many ``metadata`` values are the empty object."""
    return {} if text == "{}" else json.loads(text)


def dumps(value: Any) -> str:
    """The engine's JSON serializer: sanitises, then refuses NaN like jsonb does."""
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)


def parse_timestamp(value: object) -> datetime | None:
    """Parse ``Z``, ``+00:00`` or naive (taken as UTC) ISO-8601 strings; garbage gives None.

    So does a time whose UTC form falls outside the years 1-9999.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        return None


def iso_utc(value: datetime) -> str:
    """ISO-8601 in UTC ending with ``Z``, as Chainlit writes it (naive values are taken as UTC)."""
    if value.tzinfo is timezone.utc:  # what asyncpg returns for timestamptz: the hot path of get_thread
        return value.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"
    utc = parse_timestamp(value)
    if utc is None:  # outside the years 1-9999 once in UTC: keep the local form
        return value.isoformat(timespec="microseconds")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


REDACTED = "[redacted]"
_QUERY_PARAMETER = re.compile(r"(^|[&;])([^=&;]*)=([^&;]*)")


def redact(value: Any, keys: frozenset[str], depth: int = 0) -> Any:
    """Replace the value of every mapping key named in ``keys`` (any depth, any case)."""
    if not keys or depth > MAX_JSON_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and k.lower() in keys else redact(v, keys, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, keys, depth + 1) for v in value]
    return value


def redact_url(url: str | None, keys: frozenset[str]) -> str | None:
    """Blank query parameters such as ``token=`` or ``api_key=`` (``&`` or ``;`` separated) and the
    password of ``user:password@`` in a stored URL."""
    if not url or not keys:
        return url
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1))
    query = _QUERY_PARAMETER.sub(
        lambda m: f"{m[1]}{m[2]}={REDACTED}" if unquote(m[2]).lower() in keys else m[0], parts.query
    )
    return urlunsplit(parts._replace(query=query))
