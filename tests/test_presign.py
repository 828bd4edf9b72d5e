"""Our local SigV4 presigner produces exactly botocore's presigned URLs (moto checks no signature)."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import aioboto3
import pytest
from aiobotocore.config import AioConfig

from chainlit_openrag_datalayer.storage.presign import PathStyleSigner

KEYS = [
    "threads/3f1c/files/9a2b",
    "threads/a%2Fb/files/%2E%2E",
    "threads/ü ñ/files/quote\"'~ (1).pdf",
    "files/%sha256-0123abcd",
]
ENDPOINTS = [
    "http://127.0.0.1:9000",
    "http://minio:80",
    "https://s3.example.org",
    "https://s3.example.org:8443/prefix",
]


async def botocore_url(endpoint: str, key: str, expires: int) -> str:
    config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"})
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=config,
    ) as client:
        url: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": "chainlit-files", "Key": key}, ExpiresIn=expires
        )
    return url


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
async def test_local_presigned_url_equals_botocore(endpoint: str, key: str) -> None:
    """Same path, same query parameters, same signature, for the same instant."""
    expected = urlsplit(await botocore_url(endpoint, key, 900))
    expected_query = dict(parse_qsl(expected.query))
    signed_at = datetime.strptime(expected_query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    signer = PathStyleSigner(
        endpoint, "chainlit-files", "eu-west-3", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )

    ours = urlsplit(signer.url(key, 900, signed_at))

    assert (ours.scheme, ours.netloc, ours.path) == (expected.scheme, expected.netloc, expected.path)
    assert dict(parse_qsl(ours.query)) == expected_query


def test_signature_changes_with_the_key_the_expiry_and_the_secret() -> None:
    """A URL signed for one object, lifetime or secret does not verify for another."""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    signer = PathStyleSigner("http://minio:9000", "b", "us-east-1", "AK", "secret")
    other_secret = PathStyleSigner("http://minio:9000", "b", "us-east-1", "AK", "other")

    def signature(url: str) -> str:
        return dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]

    signatures = {
        signature(signer.url("threads/t/files/1", 60, now)),
        signature(signer.url("threads/t/files/2", 60, now)),
        signature(signer.url("threads/t/files/1", 61, now)),
        signature(other_secret.url("threads/t/files/1", 60, now)),
    }
    assert len(signatures) == 4
