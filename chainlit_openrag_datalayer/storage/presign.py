"""S3 presigned GET URLs (AWS Signature Version 4, query string), computed locally.

botocore's ``generate_presigned_url`` runs its event and endpoint-resolution machinery on every
call: ~0.4 ms per URL, so 4 ms of a 10-element ``get_thread``. This signer does the same HMAC work
in ~20 µs. It is used for custom endpoints (MinIO, localstack, path-style) with static keys; AWS
itself, and credentials from the default chain, keep going through botocore. Tests compare its
URLs with botocore's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


@dataclass
class PathStyleSigner:
    """Signs GET URLs for ``{endpoint}/{bucket}/{key}``."""

    endpoint_url: str
    bucket: str
    region: str
    access_key: str
    secret_key: str
    _keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        default_port = _DEFAULT_PORTS.get(parts.scheme)
        # botocore signs the Host header without a default port
        self._host = parts.netloc if parts.port not in (None, default_port) else (parts.hostname or "")
        self._prefix = parts.path.rstrip("/")

    def url(self, key: str, expires_seconds: int, now: datetime) -> str:
        """A URL valid for ``expires_seconds`` from ``now`` (an aware UTC datetime)."""
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        scope = f"{day}/{self.region}/s3/aws4_request"
        path = f"{self._prefix}/{self.bucket}/{quote(key, safe='/~')}"
        query = "&".join(
            f"{name}={_encode(value)}"
            for name, value in (
                ("X-Amz-Algorithm", ALGORITHM),
                ("X-Amz-Credential", f"{self.access_key}/{scope}"),
                ("X-Amz-Date", amz_date),
                ("X-Amz-Expires", str(expires_seconds)),
                ("X-Amz-SignedHeaders", "host"),
            )
        )
        canonical = f"GET\n{path}\n{query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._origin}{path}?{query}&X-Amz-Signature={signature}"

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = f"AWS4{self.secret_key}".encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}  # one day's key; yesterday's is dropped
        return key
