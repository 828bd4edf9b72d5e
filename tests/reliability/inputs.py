"""Hypothesis strategies for what users and models send: any text, odd ids, values JSON cannot hold."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.reliability.figures import FULL

# deadline=None: examples wait on PostgreSQL; the fixture (one layer, one database) serves every example.
EXAMPLES = settings(
    max_examples=300 if FULL else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECIAL = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\udc80", "'", '"', "%", "_", "\\", "/", "..", ";", "--", "\r\n", "\x1b",
     "\u202e", "\ufeff", "\U0001f600", "\u0301", "*", "[", "]", "^", "$", "?", "&", "=", "#", "%%", "\\%"]
)  # fmt: skip
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
ANY_CHAR = st.one_of(st.characters(), SURROGATE, st.characters(max_codepoint=0x1F))
TEXT = st.lists(st.one_of(ANY_CHAR, SPECIAL), max_size=50).map("".join)
NONEMPTY_TEXT = TEXT.filter(bool)
ODD_IDS = st.sampled_from(
    ["..", ".", "../../etc", "../../../etc/passwd", "/", "a/b", "%2F", "..%2F..", "~", "\\..\\"]
)
IDS = st.one_of(ODD_IDS, NONEMPTY_TEXT, st.uuids().map(str))


class Opaque:
    """An object JSON knows nothing about; stored as its str()."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return f"Opaque({self.label})"


OFFSETS = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)
TIMEZONES = st.one_of(st.none(), st.just(timezone.utc), OFFSETS.map(timezone))
DATETIMES = st.datetimes(timezones=TIMEZONES)
HASHABLE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), TEXT, st.binary(max_size=16), DATETIMES
)
SCALARS = st.one_of(
    HASHABLE,
    st.decimals(),
    st.dates(),
    st.times(),
    st.uuids(),
    st.builds(Opaque, TEXT),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, 5e-324, -0.0]),
)
KEYS = st.one_of(
    TEXT, st.sampled_from(["api_key", "Token", "PASSWORD", "secret", "openrag_api_key"]), st.integers()
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(KEYS, inner, max_size=4),
        st.frozensets(HASHABLE, max_size=4),
        st.sets(HASHABLE, max_size=4),
    ),
    max_leaves=16,
)
METADATA = st.dictionaries(KEYS, VALUES, max_size=6)


def nested(depth: int, leaf: Any) -> Any:
    """`leaf` under `depth` levels of alternating dicts and lists."""
    value = leaf
    for level in range(depth):
        value = {"level": value} if level % 2 else [value]
    return value


TIMESTAMPS = st.one_of(
    st.none(),
    TEXT,
    st.integers(),
    DATETIMES.map(lambda moment: moment.isoformat()),
    DATETIMES.map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    st.sampled_from(["", " ", "now", "2024-13-45T25:61:61Z", "2024-02-30", "0000-00-00", "1e10", "NaN"]),
)


def fresh_id() -> str:
    """A new id per Hypothesis example: the fixtures (layer, database) live across examples."""
    return str(uuid.uuid4())
