"""What a layer left in S3, seen from outside the layer: the bucket's keys and the bytes its URLs serve."""

from __future__ import annotations

from dataclasses import dataclass

import chainlit.data
import httpx
from chainlit.data.base import BaseDataLayer

from tests.services import s3_client


@dataclass(frozen=True)
class StoredObjects:
    """The test's bucket on the moto server."""

    endpoint_url: str
    bucket: str

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix`; [] when the bucket does not exist."""
        client = s3_client(self.endpoint_url)
        try:
            if not any(b["Name"] == self.bucket for b in client.list_buckets()["Buckets"]):
                return []
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        finally:
            client.close()

    def create_bucket(self) -> None:
        """Create the bucket (the built-in layer does not create it for itself)."""
        client = s3_client(self.endpoint_url)
        try:
            client.create_bucket(Bucket=self.bucket)
        finally:
            client.close()


async def fetch(url: str | None, layer: BaseDataLayer | None = None) -> bytes:
    """GET an element URL as a browser would and return the body; fails unless the answer is 200.

    A URL without a host is served by the Chainlit app (served mode, or an element type Chainlit's
    front end fetches by script): it is asked of Chainlit's app, with ``layer`` as its data layer.
    """
    assert url, f"no URL: {url!r}"
    if url.startswith("/"):
        assert layer is not None, f"{url} is served by the Chainlit app: pass the layer that made it"
        response = await _from_chainlit_app(url, layer)
    else:
        assert url.startswith("http"), f"not an http URL: {url!r}"
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
    assert response.status_code == 200, f"GET {url} -> {response.status_code}: {response.text[:200]}"
    return response.content


async def _from_chainlit_app(url: str, layer: BaseDataLayer) -> httpx.Response:
    from chainlit.server import app

    saved = chainlit.data._data_layer, chainlit.data._data_layer_initialized
    chainlit.data._data_layer, chainlit.data._data_layer_initialized = layer, True
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            return await http.get(url)
    finally:
        chainlit.data._data_layer, chainlit.data._data_layer_initialized = saved


def element_key(thread_id: str, element_id: str) -> str:
    """The object key both layers use for an element's file (uuid ids need no escaping)."""
    return f"threads/{thread_id}/files/{element_id}"
