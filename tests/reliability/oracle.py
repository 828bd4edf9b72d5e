"""The documented normalisations (README "Normalisations"), written independently of convert.py.

NUL and lone surrogates become U+FFFD; metadata values JSON cannot hold become JSON (datetimes -> ISO
strings, bytes -> UTF-8 text or base64, sets -> sorted lists, NaN and infinities -> null, other objects ->
str()); nesting deeper than 64 levels is cut to a string; then secrets are left out (README "Secrets"):
entries whose key names a credential, at any depth, after normalisation; unparseable timestamps are replaced
(createdAt) or dropped (start, end).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

REPLACEMENT = "\ufffd"
MAX_DEPTH = 64
# README "Secrets": words that make a key secret whatever its value (booleans and nulls aside) ...
ALWAYS_SECRET = ("password", "passwd", "passphrase", "secret", "credential", "authorization", "authorisation",
                 "apikey", "privatekey", "accesskey", "signature", "cookie", "bearer")  # fmt: skip
LAST_WORD_SECRET = ("auth", "oauth", "sig")
# ... and "token", secret when it holds text, unless it is "tokens", "tokenizer..." or a measure.
TOKEN_MEASURES = ("count", "usage", "limit", "length", "len", "size", "budget", "type", "id", "ids")


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


def words(key: str) -> list[str]:
    """camelCase, `-`, `_`, `.` and spaces separate words; case is folded."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    spaced = re.sub(r"([A-Z])([A-Z][a-z])", r"\1 \2", spaced)
    return [word for word in re.split(r"[\s._-]+", spaced.lower()) if word]


def secret(key: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    parts = words(key) or [""]
    joined = "".join(parts)
    if any(word in joined for word in ALWAYS_SECRET) or parts[-1] in LAST_WORD_SECRET:
        return True
    if isinstance(value, int | float):
        return False
    for index, word in enumerate(parts):
        for after in word.split("token")[1:]:
            if after.startswith(("s", "iz")):
                continue
            following = after or (parts[index + 1] if index + 1 < len(parts) else "")
            if following not in TOKEN_MEASURES:
                return True
    return False


def redacted(stored_json: Any) -> Any:
    """Stored JSON without its secrets: object entries and [key, value] pairs under a secret key."""
    if isinstance(stored_json, dict):
        return {k: redacted(v) for k, v in stored_json.items() if not secret(k, v)}
    if isinstance(stored_json, list):
        return [
            redacted(v)
            for v in stored_json
            if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and secret(v[0], v[1]))
        ]
    return stored_json


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
