"""Normalisation on its own (no services): text, column values, JSON and timestamps as stored, then the
secret rule (which keys and URL parameters are left out, and which survive)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from literalai import ChatGeneration
from pydantic import BaseModel

from chainlit_openrag_datalayer.normalise import (
    MAX_JSON_DEPTH,
    TOO_DEEP,
    approximate_size,
    clean_text,
    dumps,
    iso_utc,
    json_object,
    json_safe,
    loads,
    normalised_key,
    optional_bool,
    optional_int32,
    optional_text,
    parse_timestamp,
    redact,
    redact_url,
    text_list,
)
from tests.reliability.inputs import EXAMPLES, METADATA, TEXT, Opaque, nested
from tests.reliability.oracle import as_json, normalised, same_json

# --- text and column values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("lone \ud800 and \udfff", "lone \ufffd and \ufffd"),
        ("ü 😀 \u202e", "ü 😀 \u202e"),
        ("", ""),
    ],
)
def test_nul_and_lone_surrogates_become_the_replacement_character(sent: str, stored: str) -> None:
    assert clean_text(sent) == stored


@EXAMPLES
@given(text=TEXT)
def test_any_text_becomes_storable_utf8(text: str) -> None:
    cleaned = clean_text(text)
    assert cleaned == normalised(text) and "\x00" not in cleaned
    cleaned.encode("utf-8")  # raises on a lone surrogate


@pytest.mark.parametrize(
    ("sent", "stored"), [(None, None), ("a\x00", "a\ufffd"), (3, "3"), ({"k": [1, "é"]}, '{"k": [1, "é"]}')]
)
def test_text_columns_take_text_or_json(sent: object, stored: str | None) -> None:
    assert optional_text(sent) == stored


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (True, True), (False, False), (None, None), (1, True), (0, False), (2.5, True), (0.0, False),
        (float("nan"), None), ("TRUE", True), (" yes ", True), ("on", True), ("1", True), ("Off", False),
        ("no", False), ("0", False), ("", False), ("maybe", None), ([True], None),
    ],
)  # fmt: skip
def test_boolean_columns_read_the_documented_words(sent: object, stored: bool | None) -> None:
    assert optional_bool(sent) == stored


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(3, 3), (3.0, 3), (3.5, None), (2**31 - 1, 2**31 - 1), (2**31, None), (-(2**31), -(2**31)),
     (True, None), ("3", None), (None, None)],
)  # fmt: skip
def test_integer_columns_take_integers_postgresql_can_hold(sent: object, stored: int | None) -> None:
    assert optional_int32(sent) == stored


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(None, None), ("rag", ["rag"]), (["a", None, 1], ["a", "1"]), (("x\x00",), ["x\ufffd"]),
     ({"b", "a"}, ["a", "b"]), (5, ["5"]), ({"k": 1}, ['{"k": 1}'])],
)  # fmt: skip
def test_tags_become_a_list_of_text(sent: object, stored: list[str] | None) -> None:
    assert text_list(sent) == stored


def test_approximate_size_counts_text_and_bytes_and_eight_per_other_item() -> None:
    assert approximate_size({"ab": [b"cde", 1, None], "f": "é"}) == 2 + 3 + 8 + 8 + 1 + 1
    assert approximate_size(nested(10_000, "x")) == 1 + 5 * 5_000  # deep values are walked, not recursed


# --- JSON ------------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    y: int


class Model(BaseModel):
    name: str


UTC_NOON = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (float("nan"), None), (float("inf"), None), (Decimal("1.5"), 1.5), (Decimal("NaN"), None),
        (UTC_NOON, "2024-05-01T12:00:00.000000Z"),
        (datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T12:00:00.000000Z"),
        (datetime(2024, 5, 1, 12), "2024-05-01T12:00:00.000000Z"), (date(2024, 5, 1), "2024-05-01"),
        (b"caf\xc3\xa9", "café"), (b"\xff\xfe", "//4="), (bytearray(b"ab"), "ab"),
        (Colour.RED, "red"), (UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Point(1, 2), {"x": 1, "y": 2}), (Model(name="n"), {"name": "n"}),
        ({3, 1, 2}, [1, 2, 3]), ((1, "a"), [1, "a"]), ({1: "a", None: "b"}, {"1": "a", "None": "b"}),
        (Opaque("o\x00"), "Opaque(o\ufffd)"),
    ],
    ids=repr,
)  # fmt: skip
def test_values_json_cannot_hold_become_the_documented_json(value: object, stored: object) -> None:
    assert json_safe(value) == stored


def test_nesting_past_the_limit_becomes_a_marker() -> None:
    kept, cut = json_safe(nested(MAX_JSON_DEPTH - 1, "leaf")), json_safe(nested(MAX_JSON_DEPTH + 5, "leaf"))
    assert json.dumps(kept).count("leaf") == 1 and TOO_DEEP not in json.dumps(kept)
    assert json.dumps(cut).count(TOO_DEEP) == 1 and "leaf" not in json.dumps(cut)


@EXAMPLES
@given(metadata=METADATA)
def test_dumps_writes_the_documented_json_for_anything(metadata: dict[Any, Any]) -> None:
    """What the engine sends to jsonb: valid JSON (no NaN), equal to the documented normalisation."""
    constants: list[str] = []  # NaN, Infinity: JSON has none, jsonb refuses them
    assert same_json(json.loads(dumps(metadata), parse_constant=constants.append), as_json(metadata))
    assert constants == []


@pytest.mark.parametrize(
    ("value", "stored"), [(None, {}), ({"a": 1}, {"a": 1}), (3, {"value": 3}), ("s", {"value": "s"})]
)
def test_metadata_columns_hold_an_object(value: object, stored: dict[str, Any]) -> None:
    assert json_object(value) == stored


def test_loads_reads_json_and_gives_a_fresh_empty_object() -> None:
    first, second = loads("{}"), loads("{}")
    first["changed"] = True
    assert second == {} and loads('{"a": [1, "é"]}') == {"a": [1, "é"]}


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "parsed"),
    [
        ("2024-05-01T12:00:00Z", UTC_NOON), ("2024-05-01T12:00:00z", UTC_NOON),
        ("2024-05-01T14:00:00+02:00", UTC_NOON), ("2024-05-01T12:00:00", UTC_NOON),
        (" 2024-05-01T12:00:00.000000Z ", UTC_NOON), (UTC_NOON, UTC_NOON),
        (datetime(2024, 5, 1, 12), UTC_NOON),
        ("0001-01-01T00:00:00+05:00", None), ("9999-12-31T23:00:00-05:00", None),
        ("", None), ("now", None), ("2024-13-45T25:61:61Z", None), (None, None), (1714564800, None),
    ],
    ids=repr,
)  # fmt: skip
def test_timestamps_parse_to_utc_or_none(sent: object, parsed: datetime | None) -> None:
    result = parse_timestamp(sent)
    assert result == parsed
    assert result is None or result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (UTC_NOON, "2024-05-01T12:00:00.000000Z"),
        (datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=PLUS_TWO), "2024-05-01T12:00:00.000005Z"),
        (datetime(2024, 5, 1, 12), "2024-05-01T12:00:00.000000Z"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "0001-01-01T00:00:00.000000+05:00"),
    ],
)  # fmt: skip
def test_times_are_written_as_chainlit_writes_them(moment: datetime, text: str) -> None:
    """UTC ISO-8601 with microseconds and a Z; a time with no UTC form in years 1-9999 keeps its own."""
    assert iso_utc(moment) == text


# --- secrets ---------------------------------------------------------------------------------

SECRET = "s3cr3t-VALUE"


@dataclass
class ClientSettings:
    api_key: str
    model: str


class PydanticSettings(BaseModel):
    client_secret: str
    temperature: float


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("openragApiKey", "openrag_api_key"),
        ("OPENRAG-API-KEY", "openrag_api_key"),
        ("openrag api.key", "openrag_api_key"),
        ("APIKey", "api_key"),
        ("X-Amz-Signature", "x_amz_signature"),
        ("ttFirstToken", "tt_first_token"),
    ],
)
def test_keys_are_compared_in_normalised_form(key: str, normalised: str) -> None:
    assert normalised_key(key) == normalised


@pytest.mark.parametrize(
    "key",
    [
        "openrag_api_key", "OPENRAG_API_KEY", "openrag-api-key", "openragApiKey", "access_token",
        "Authorization", "OPENAI_API_KEY", "x-api-key", "client_secret", "api_key", "apikey", "token",
        "idToken", "x-auth-token", "refresh_token", "password", "db_passwd", "credentials", "private_key",
        "aws_secret_access_key", "X-Amz-Signature", "sig", "basic_auth", "Cookie", "session_token",
    ],
)  # fmt: skip
def test_secret_keys_are_left_out(key: str) -> None:
    """Every spelling of a credential key: the entry is absent, its neighbours stay."""
    assert redact({key: SECRET, "kept": "visible"}) == {"kept": "visible"}


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens", "prompt_tokens", "completion_tokens", "total_tokens", "token_count", "tokenCount",
        "inputTokenCount", "ttFirstToken", "tokenThroughputInSeconds", "max_new_tokens", "tokens_per_second",
    ],
)  # fmt: skip
def test_token_counts_are_kept(key: str) -> None:
    """Counts and timings named after tokens are numbers, not credentials."""
    assert redact({key: 1024, "nested": {key: 0.25}}) == {key: 1024, "nested": {key: 0.25}}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tokenizer", "cl100k_base"),
        ("token_usage", {"prompt_tokens": 3, "completion_tokens": 5}),
        ("prompt_tokens_details", {"cached_tokens": 0}),
        ("token_type_ids", [0, 0, 1]),
        ("auth_mode", "token"),
        ("has_api_key", True),
        ("password", None),
    ],
)
def test_words_near_secrets_are_kept(key: str, value: Any) -> None:
    """A tokenizer's name, usage objects, flags and nulls are no credentials."""
    assert redact({key: value}) == {key: value}


def test_a_real_llm_generation_keeps_every_count() -> None:
    """literalai's ChatGeneration as Chainlit stores it: settings, usage and timings all survive."""
    generation = ChatGeneration(
        provider="openai",
        model="gpt-4o",
        settings={"max_tokens": 256, "temperature": 0.2, "api_key": SECRET},
        messages=[{"role": "user", "content": "hi"}],
        token_count=120,
        input_token_count=100,
        output_token_count=20,
        tt_first_token=310.5,
        token_throughput_in_s=42.0,
    ).to_dict()  # type: ignore[no-untyped-call]  # literalai leaves it unannotated

    stored = redact(generation)

    assert SECRET not in repr(stored)
    assert stored["settings"] == {"max_tokens": 256, "temperature": 0.2}
    expected = {"tokenCount": 120, "inputTokenCount": 100, "outputTokenCount": 20, "ttFirstToken": 310.5}
    assert {key: stored[key] for key in expected} == expected
    assert stored["tokenThroughputInSeconds"] == 42.0


def test_secrets_are_found_after_normalisation() -> None:
    """Bytes keys, dataclass fields, pydantic fields and lists of pairs are seen as the keys they become."""
    value = {
        b"api_key": SECRET,
        "client": ClientSettings(api_key=SECRET, model="m"),
        "pydantic": PydanticSettings(client_secret=SECRET, temperature=0.5),
        "headers": [("Authorization", f"Bearer {SECRET}"), ("Accept", "text/plain")],
        "params": (("token", SECRET),),
    }

    assert redact(value) == {
        "client": {"model": "m"},
        "pydantic": {"temperature": 0.5},
        "headers": [["Accept", "text/plain"]],
        "params": [],
    }


def test_added_names_are_compared_in_normalised_form() -> None:
    """REDACT_METADATA_KEYS adds names; `sessionId`, `session-id` and `SESSION_ID` all match `session_id`."""
    value = {"sessionId": SECRET, "session-id": SECRET, "SESSION_ID": SECRET, "session": "kept"}

    assert redact(value, frozenset({"session_id"})) == {"session": "kept"}


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://files.example/doc.pdf?token=abc&page=2", "https://files.example/doc.pdf?page=2"),
        ("https://files.example/doc.pdf?token=abc", "https://files.example/doc.pdf"),
        ("https://h/x?a=1;api_key=abc;b=2", "https://h/x?a=1;b=2"),
        ("https://h/cb#access_token=abc&state=xyz", "https://h/cb#state=xyz"),
        ("https://h/section#intro", "https://h/section#intro"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA&X-Amz-Signature=ff",
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4",
        ),
        (
            "https://a.blob.core.windows.net/c/f?sv=2024&sig=abc%3D",
            "https://a.blob.core.windows.net/c/f?sv=2024",
        ),
        ("https://maps.example/api?key=AIza123&q=paris", "https://maps.example/api?q=paris"),
        ("https://user:hunter2@h/x", "https://user@h/x"),
        ("https://h/x?max_tokens=5", "https://h/x?max_tokens=5"),
        ("http://[::1/x?token=abc", "http://[::1/x"),
    ],
)
def test_urls_lose_their_credentials(url: str, stored: str) -> None:
    """Secret query and fragment parameters and the password go; everything else stays as written."""
    assert redact_url(url) == stored


def test_url_strings_inside_metadata_lose_their_credentials() -> None:
    """A source URL kept in metadata is cleaned like an element's URL."""
    assert redact({"sources": [{"url": "https://h/d?token=abc&p=1"}]}) == {
        "sources": [{"url": "https://h/d?p=1"}]
    }
