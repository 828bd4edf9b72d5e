"""Normalisation of what users and models send into what PostgreSQL stores; no I/O.

NUL characters and lone surrogates become U+FFFD; metadata values that JSON cannot hold become JSON
(datetimes -> ISO strings, bytes -> UTF-8 text or base64, sets/tuples -> lists, NaN/Infinity -> null,
dataclasses and pydantic models -> objects, other objects -> str); nesting deeper than ``MAX_JSON_DEPTH``
becomes ``TOO_DEEP``; unparseable timestamps give None (the server's clock wins); ``redact`` leaves
secrets out. The README's "Normalisations" and "Secrets" sections are the user-facing copy of these rules.
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
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from uuid import UUID

from pydantic import BaseModel

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


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
INT32 = range(-(2**31), 2**31)


def optional_bool(value: object) -> bool | None:
    """A boolean column's value: booleans as they are; numbers by truth; ``"true"``/``"false"``,
    ``"yes"``/``"no"``, ``"1"``/``"0"``, ``"on"``/``"off"`` in any case; anything else None (the stored
    value, or Chainlit's default, stays)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, float):
        return value != 0 if math.isfinite(value) else None
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def optional_int32(value: object) -> int | None:
    """An integer column's value: an integer (or integral float) in PostgreSQL's ``integer``, else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value in INT32 else None


def text_list(value: object) -> list[str] | None:
    """A ``text[]`` column's value (tags): a string is one item, any other iterable its items as text
    (None items dropped), any other value one item (its JSON text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [clean_text(value)]
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [text for text in map(optional_text, items) if text is not None]
    return [text] if (text := optional_text(value)) is not None else []


def approximate_size(value: object) -> int:
    """About how many bytes ``value`` holds: its text and binary lengths, 8 per other item; for the
    pending-writes bound, so cheap rather than exact (a walk, nothing copied)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        # Concrete types first: the ``Mapping`` check goes through the ABC machinery, slow on a hot path.
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 8
    return total


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
    if isinstance(value, BaseModel):
        return json_safe(value.model_dump(), depth + 1)
    return clean_text(str(value))


def json_key(key: object) -> str:
    return clean_text(key) if isinstance(key, str) else clean_text(str(json_safe(key)))


def json_object(value: object) -> dict[str, Any]:
    """A JSON object for a metadata column; a non-mapping value is kept under ``"value"``.

    Values are made JSON-safe later, by the JSON codec of the database connections (``dumps``).
    """
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else {"value": value}


def loads(text: str) -> Any:
    """The JSON columns' decoder; most ``extra`` and many ``metadata`` values are the empty object."""
    return {} if text == "{}" else json.loads(text)


def dumps(value: Any) -> str:
    """The JSON encoder of the database connections: sanitises, then refuses NaN like jsonb does."""
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


# --- secrets ---------------------------------------------------------------------------------
# A key is compared in its normalised form: camelCase split, "-", "_", ".", spaces folded, lower case
# ("openragApiKey", "OPENRAG-API-KEY" -> "openrag_api_key"), and its words joined ("openragapikey").
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s._-]+")
# Secret whatever the value holds (except a boolean or null: a flag such as has_api_key is no credential).
_SECRET_PART = re.compile(
    r"passw(?:or)?d|passphrase|secret|credential|authori[sz]ation|apikey|privatekey|accesskey|signature"
    r"|cookie|bearer"
)
_SECRET_LAST_WORDS = frozenset({"auth", "oauth", "sig"})
# Secret unless the value is a number, a boolean or null: "token" in a key, but not "tokens", "tokenizer"
# or a measure ("token_count", "token_usage"). So max_tokens, prompt_tokens, token_count, ttFirstToken: 0.4
# and every other count of an LLM generation survive, while access_token, x-auth-token, idToken go.
_TOKEN = re.compile(r"token(?!s|iz)(?!_?(?:count|usage|limit|length|len|size|budget|type|ids?)(?:_|$))")
# URL query and fragment parameters that carry credentials besides the secret keys (Google's key=).
_URL_ONLY_SECRETS = frozenset({"key"})
_PARAMETER_SEPARATOR = re.compile("([&;])")
NOT_SECRET, SECRET_TEXT, SECRET = 0, 1, 2


def normalised_key(key: str) -> str:
    """``openragApiKey``, ``OPENRAG-API-KEY``, ``openrag api key`` -> ``openrag_api_key``."""
    return "_".join(word for word in _SEPARATORS.split(_CAMEL_BOUNDARY.sub("_", key).lower()) if word)


@lru_cache(maxsize=8192)
def _secret_kind(key: str, extra_keys: frozenset[str]) -> int:
    name = normalised_key(key)
    if (
        name in extra_keys
        or _SECRET_PART.search(name.replace("_", ""))
        or name.rpartition("_")[2] in _SECRET_LAST_WORDS
    ):
        return SECRET
    return SECRET_TEXT if _TOKEN.search(name) else NOT_SECRET


def is_secret(key: str, value: object, extra_keys: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` under ``key`` is a credential (the rules: README, "Secrets")."""
    if value is None or isinstance(value, bool):
        return False
    kind = _secret_kind(key, extra_keys)
    return kind == SECRET or (kind == SECRET_TEXT and not isinstance(value, int | float))


def redact(value: object, extra_keys: frozenset[str] = frozenset()) -> Any:
    """``value`` as storable JSON (``json_safe``) with every secret left out, never replaced.

    Runs after normalisation, so dataclasses, pydantic models, bytes keys and tuples are seen as the
    dicts, string keys and lists they become. A secret key's entry is dropped from its object; a
    ``[key, value]`` pair whose key is secret is dropped from its list; URL strings lose their
    credentials (``redact_url``). A secret is thus absent when read back, never a placeholder an app
    could mistake for a value.
    """
    return _without_secrets(json_safe(value), extra_keys)


def _without_secrets(value: Any, extra_keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(item, extra_keys)
            for key, item in value.items()
            if not is_secret(key, item, extra_keys)
        }
    if isinstance(value, list):
        return [_without_secrets(item, extra_keys) for item in value if not _is_secret_pair(item, extra_keys)]
    if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")):
        return redact_url(value, extra_keys)
    return value


def _is_secret_pair(item: Any, extra_keys: frozenset[str]) -> bool:
    """``("token", "...")`` in a list of pairs (headers, query parameters) is a secret entry."""
    return (
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        and is_secret(item[0], item[1], extra_keys)
    )  # fmt: skip


def redact_url(url: str | None, extra_keys: frozenset[str] = frozenset()) -> str | None:
    """The URL without its credentials: secret query and fragment parameters (``token=``,
    ``X-Amz-Signature=``, ``sig=``, ``key=``, ``#access_token=``) and the password of ``user:password@``
    are removed; everything else is kept as written."""
    if not url or not any(mark in url for mark in "?#@"):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": what follows "?" or "#" cannot be told apart, so it goes
        return re.split("[?#]", url, maxsplit=1)[0].rpartition("@")[2] or None
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}@{host}"
    fragment = parts.fragment
    if "=" in fragment:
        fragment = _without_secret_parameters(fragment, extra_keys)
    query = _without_secret_parameters(parts.query, extra_keys)
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _without_secret_parameters(parameters: str, extra_keys: frozenset[str]) -> str:
    """``a=1&token=x;b=2`` -> ``a=1;b=2``: the other parameters and separators as written."""
    pieces = _PARAMETER_SEPARATOR.split(parameters)  # [parameter, separator, parameter, ...]
    kept: list[str] = []
    for index in range(0, len(pieces), 2):
        name, _, value = pieces[index].partition("=")
        name = unquote(name)
        if name.lower() in _URL_ONLY_SECRETS or is_secret(name, unquote(value), extra_keys):
            continue
        kept += [pieces[index - 1], pieces[index]] if kept else [pieces[index]]
    return "".join(kept)
