"""S3Storage's presigned URLs are exactly botocore's, for every endpoint shape and credential type.

moto does not check signatures, so equality with ``generate_presigned_url`` (same instant, same
credentials) is what proves a URL valid; where moto can serve it, the URL is also fetched.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig
from moto.server import ThreadedMotoServer

from chainlit_openrag_datalayer.config import S3Settings
from chainlit_openrag_datalayer.storage import S3Storage
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, s3_client

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BUCKET, REGION = "chainlit-files", "eu-west-3"
KEYS = [
    "threads/3f1c/files/9a2b",
    "threads/a%2Fb/files/%2E%2E",
    "threads/ü ñ/files/quote\"'~ (1).pdf",
    "files/%sha256-0123abcd",
]
ENDPOINTS = [
    "http://127.0.0.1:9000",
    "http://minio:80",
    "HTTP://MinIO:9000",  # browsers send a lowercase Host: the signature must cover that one
    "https://s3.example.org",
    "https://s3.example.org:8443/prefix",
    "http://[::1]",  # IPv6 literal on the default port
    "https://[2001:db8::1]:443",
    "http://[::1]:9000",
]
SIGNED_AT = datetime(2026, 11, 27, 12, 34, 56)


@pytest.fixture(autouse=True)
def frozen_signing_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's and S3Storage's signatures, taken at the same instant, must be equal."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: SIGNED_AT)


async def botocore_url(
    endpoint: str | None,
    key: str,
    credentials: dict[str, str] | None = None,
    *,
    bucket: str = BUCKET,
    region: str = REGION,
    expires: int = 900,
) -> str:
    """What botocore's own presigner gives for this endpoint (path style unless it is AWS itself)."""
    config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path" if endpoint else "auto"})
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint, region_name=region, config=config, **(credentials or {})
    ) as client:
        url: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )
    return url


def storage(endpoint: str | None = None, *, static_keys: bool = True, **settings: str) -> S3Storage:
    keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY} if static_keys else {}
    return S3Storage(S3Settings(bucket=BUCKET, region=REGION, endpoint_url=endpoint, **keys, **settings), 900)


STATIC = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
async def test_presigned_url_equals_botocore(endpoint: str, key: str) -> None:
    """Same host, path, query and signature as generate_presigned_url, for any endpoint and key."""
    assert await storage(endpoint).url(key) == await botocore_url(endpoint, key, STATIC)


async def test_uppercase_endpoint_is_signed_for_the_lowercase_host() -> None:
    """`HTTP://MinIO:9000` is signed as the host `minio:9000` a browser sends, not `MinIO:9000`."""
    upper = await storage("HTTP://MinIO:9000").url(KEYS[0])
    lower = await storage("http://minio:9000").url(KEYS[0])
    assert dict(parse_qsl(urlsplit(upper).query)) == dict(parse_qsl(urlsplit(lower).query))


async def test_aws_endpoint_uses_virtual_hosted_style_like_botocore() -> None:
    """Without an endpoint, the bucket is in the host name, as botocore puts it for AWS."""
    url = await storage().url(KEYS[0])
    assert urlsplit(url).netloc.startswith(f"{BUCKET}.s3.")
    assert url == await botocore_url(None, KEYS[0], STATIC)


async def test_session_token_from_the_default_chain_is_signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporary credentials from the AWS environment variables carry their token in the URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIATEMPORARY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token/with+special=chars")
    url = await storage("http://minio:9000", static_keys=False).url(KEYS[0])
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Security-Token"] == "token/with+special=chars"
    assert url == await botocore_url("http://minio:9000", KEYS[0])


@pytest.fixture
def expiring_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS profile whose credential_process hands out a new token, valid 5 minutes, at every call."""
    counter = tmp_path / "calls"
    script = tmp_path / "credentials.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "calls = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(calls))\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': 'ASIAROTATING', 'SecretAccessKey': 'secret',\n"
        "                  'SessionToken': f'token-{calls}', 'Expiration': expires.isoformat()}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "aws-config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "rotating")
    return counter


async def test_refreshable_credentials_are_refreshed_between_urls(expiring_credentials: Path) -> None:
    """Credentials close to expiry are fetched again before the next URL is signed, never reused stale."""
    layer_storage = storage("http://minio:9000", static_keys=False)
    first, second = [await layer_storage.url(KEYS[0]) for _ in range(2)]
    tokens = [dict(parse_qsl(urlsplit(url).query))["X-Amz-Security-Token"] for url in (first, second)]
    assert tokens[0] != tokens[1]
    assert all(token.startswith("token-") for token in tokens)


# --- fetched from a real S3 server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ipv6_s3_server() -> Iterator[str]:
    """moto's S3 on [::1], for URLs whose host is an IPv6 literal."""
    server = ThreadedMotoServer(ip_address="::1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        yield f"http://[::1]:{port}"
    finally:
        server.stop()


def put_object(endpoint: str, bucket: str, key: str, body: bytes) -> None:
    client = s3_client(endpoint)
    try:
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=key, Body=body)
    finally:
        client.close()


def moto_storage(bucket: str, endpoint: str, public_endpoint: str | None = None) -> S3Storage:
    settings = S3Settings(
        bucket=bucket, region=S3_REGION, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY,
        endpoint_url=endpoint, public_endpoint_url=public_endpoint,
    )  # fmt: skip
    return S3Storage(settings)


@pytest.mark.parametrize("shape", ["lowercase", "uppercase", "ipv6"])
async def test_presigned_url_serves_the_object(shape: str, s3_server: str, ipv6_s3_server: str) -> None:
    """The URL fetches the object's bytes, whatever the case of the endpoint or an IPv6 host."""
    endpoint = {
        "lowercase": s3_server,
        "uppercase": s3_server.upper().replace("127.0.0.1", "LOCALHOST"),
        "ipv6": ipv6_s3_server,
    }[shape]
    bucket, key, body = f"test-bucket-{uuid4().hex}", f"threads/{uuid4()}/files/ü ñ.txt", uuid4().bytes
    put_object(endpoint, bucket, key, body)
    url = await moto_storage(bucket, endpoint).url(key)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert (response.status_code, response.content) == (200, body)


async def test_public_endpoint_signs_for_the_browser_host_and_uploads_to_the_inner_one(
    s3_server: str,
) -> None:
    """Uploads go to the inner endpoint; the URL names the public host and serves the upload."""
    public = s3_server.replace("127.0.0.1", "localhost")
    bucket, key, body = f"test-bucket-{uuid4().hex}", f"threads/{uuid4()}/files/a.txt", uuid4().bytes
    layer_storage = moto_storage(bucket, s3_server, public)
    try:
        await layer_storage.put(key, body, "text/plain", "a.txt")
        url = await layer_storage.url(key)
    finally:
        await layer_storage.close()
    assert urlsplit(url).netloc == urlsplit(public).netloc
    moto_keys = {"aws_access_key_id": S3_ACCESS_KEY, "aws_secret_access_key": S3_SECRET_KEY}
    assert url == await botocore_url(public, key, moto_keys, bucket=bucket, region=S3_REGION, expires=3600)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert (response.status_code, response.content) == (200, body)
