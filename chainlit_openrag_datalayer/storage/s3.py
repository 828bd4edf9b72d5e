"""S3Storage: element files in S3 or any S3-compatible store, through aioboto3 (never blocking)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from ..config import S3Settings
from ..errors import StorageError
from ..file_headers import content_disposition, mime_essence
from .presign import Presigner

logger = logging.getLogger(__name__)

# Streaming uploads hold the parts queued, in flight (each seemingly twice while sent) and being filled:
# about (1 + 2 x 3 + 1) x 6 MiB = 48 MiB; with 8 MiB parts, 4 in flight and 2 queued, 77 MiB was measured.
_PART = 6 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=_PART, multipart_chunksize=_PART, max_concurrency=3, max_io_queue=1
)
# Our own write sequencer retries for WRITE_RETRY_SECONDS; botocore retrying 5 times on top would hold a
# request (and the served-file route) for ~25 s before anyone hears of the outage.
_CLIENT_RETRIES = {"max_attempts": 2, "mode": "standard"}
_DELETE_BATCH = 1000
_READ_CHUNK = 256 * 1024


class S3Storage:
    """One aioboto3 client per process, opened on first use; URLs are signed when read.

    Credentials are ``APP_AWS_ACCESS_KEY``/``APP_AWS_SECRET_KEY`` when set, else the AWS default
    chain (environment, profile, SSO, web identity, container or instance role), whose temporary
    credentials botocore refreshes. With ``public_endpoint_url``, URLs are signed for the host the
    browser reaches, while uploads go to ``endpoint_url`` (e.g. ``http://minio:9000`` in compose).
    """

    def __init__(self, settings: S3Settings, url_expiry_seconds: int = 3600) -> None:
        self._settings = settings
        self._expiry = url_expiry_seconds
        self._session = aioboto3.Session(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            region_name=settings.region,
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._signer: Presigner | None = None
        self._lock = asyncio.Lock()

    @property
    def bucket(self) -> str:
        return self._settings.bucket

    async def _get_client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    try:
                        client = await stack.enter_async_context(
                            self._new_client(self._settings.endpoint_url)
                        )
                        await self._ensure_bucket(client)
                    except BaseException:
                        await stack.aclose()
                        raise
                    self._stack, self._client = stack, client
        return self._client

    async def _url_signer(self) -> Presigner:
        """Made once, from a client of the endpoint the browser reaches (closed at once: no request)."""
        if self._signer is None:
            async with self._lock:
                if self._signer is None:
                    endpoint = self._settings.public_endpoint_url or self._settings.endpoint_url
                    async with self._new_client(endpoint) as client:
                        credentials = await self._session.get_credentials()
                        self._signer = await Presigner.of(client, self.bucket, self._expiry, credentials)
        return self._signer

    def _new_client(self, endpoint_url: str | None) -> Any:
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries=_CLIENT_RETRIES,
            connect_timeout=5,
            read_timeout=60,
        )
        return self._session.client("s3", endpoint_url=endpoint_url, config=config)

    async def _ensure_bucket(self, client: Any) -> None:
        """Create the bucket when it does not exist (a fresh MinIO or localstack)."""
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _status(error) != 404:
                raise StorageError(
                    f"Bucket {self.bucket!r} is not reachable ({error}). Check BUCKET_NAME, "
                    "APP_AWS_ACCESS_KEY/APP_AWS_SECRET_KEY and DEV_AWS_ENDPOINT."
                ) from error
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self._settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._settings.region}
        try:
            await client.create_bucket(**kwargs)
            logger.info("Created bucket %s", self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",):
                raise StorageError(f"Could not create bucket {self.bucket!r}: {error}") from error

    async def put(self, key: str, source: bytes | Path, mime: str, filename: str) -> None:
        client = await self._get_client()
        # The type came from the uploading browser: S3 serves it back as is, so store the same essence and
        # disposition the served route sends (an HTML "audio" file must not render on the bucket's origin).
        extra = {"ContentType": mime_essence(mime), "ContentDisposition": content_disposition(filename, mime)}
        try:
            if isinstance(source, Path):
                await client.upload_file(str(source), self.bucket, key, ExtraArgs=extra, Config=_TRANSFER)
            else:
                await client.put_object(Bucket=self.bucket, Key=key, Body=source, **extra)
        except ClientError as error:
            raise StorageError(f"Upload of {key!r} to bucket {self.bucket!r} failed: {error}") from error

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        client = await self._get_client()
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = await client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            failed = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                raise StorageError(
                    f"Could not delete {len(failed)} objects from {self.bucket!r}: {failed[:3]}"
                )

    async def read(self, key: str) -> AsyncIterator[bytes]:
        client = await self._get_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _status(error) == 404:
                raise FileNotFoundError(key) from error
            raise StorageError(f"Download of {key!r} from bucket {self.bucket!r} failed: {error}") from error
        body = response["Body"]
        try:
            while chunk := await body.read(_READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, datetime]]:
        """Every key under ``prefix`` with its last-modified time (for ``sweep`` and ``erase-user``)."""
        client = await self._get_client()
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"]

    async def url(self, key: str) -> str:
        """A presigned GET URL, signed by botocore; signing is local computation, no request is sent."""
        return await (await self._url_signer()).url(key)

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
