"""Presigned S3 GET URLs, signed by botocore's own SigV4 query signer (``S3SigV4QueryAuth``).

``generate_presigned_url`` resolves the endpoint and runs botocore's event machinery on every call:
~0.4 ms per URL, 4 ms of a 10-element ``get_thread``. Nothing it resolves depends on the key, so
``Presigner`` asks botocore once for the URL of a probe key, keeps everything but that key (scheme,
host, path or virtual-hosted style, signing region), and signs each URL with ``S3SigV4QueryAuth``
and the client's credentials, frozen per URL so that temporary ones are refreshed when they expire.
tests/test_presign.py compares its URLs with ``generate_presigned_url``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.utils import percent_encode

_PROBE_KEY = "chainlit-openrag-datalayer-probe"


@dataclass(frozen=True)
class Presigner:
    """Signs GET URLs for the keys of one bucket, with botocore's signer."""

    base_url: str  # everything before the key: "https://host/bucket/" or "https://bucket.host/"
    region: str
    service: str
    expires_seconds: int
    credentials: Any  # aiobotocore credentials, static or refreshable; None signs nothing

    @classmethod
    async def of(cls, client: Any, bucket: str, expires_seconds: int, credentials: Any) -> Presigner:
        """Learn the URL shape from one ``generate_presigned_url`` of ``client`` (no request is sent)."""
        probe: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=expires_seconds
        )
        parts = urlsplit(probe)
        assert parts.path.endswith(f"/{_PROBE_KEY}"), probe
        # X-Amz-Credential is access-key/day/region/service/aws4_request
        *_, region, service, _ = dict(parse_qsl(parts.query))["X-Amz-Credential"].split("/")
        base_url = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE_KEY)]}"
        return cls(base_url, region, service, expires_seconds, credentials)

    async def url(self, key: str) -> str:
        """A URL that GETs ``key`` until ``expires_seconds`` from now."""
        frozen = await self.credentials.get_frozen_credentials() if self.credentials else None
        request = AWSRequest(method="GET", url=self.base_url + percent_encode(key, safe="/~"))
        S3SigV4QueryAuth(frozen, self.service, self.region, expires=self.expires_seconds).add_auth(request)
        signed: str = request.url
        return signed
