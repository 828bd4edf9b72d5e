"""The secret rule on its own (no services): which keys and URL parameters are left out, and which survive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from literalai import ChatGeneration
from pydantic import BaseModel

from chainlit_openrag_datalayer.normalise import normalised_key, redact, redact_url

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
