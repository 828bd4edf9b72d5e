"""The `layer` fixture: every conformance test runs against OpenRAGDataLayer and Chainlit's ChainlitDataLayer.

`-m openrag` or `-m builtin` picks one; `-m pgbouncer` runs ours through PgBouncer in transaction mode.
`builtin_fails(reason)` marks an xfail for the built-in layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.data.storage_clients.s3 import S3StorageClient

from tests.conformance.objects import StoredObjects
from tests.prisma_schema import create_prisma_schema
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY


@pytest.fixture(autouse=True)
async def in_chainlit_context(chainlit_context: None) -> None:
    """Every conformance test runs inside an HTTP Chainlit context."""


@pytest.fixture
def stored_objects(s3_server: str, bucket_name: str) -> StoredObjects:
    """The test's bucket, to check what a layer uploaded or deleted."""
    return StoredObjects(endpoint_url=s3_server, bucket=bucket_name)


@pytest.fixture
async def builtin_layer(database_url: str, stored_objects: StoredObjects) -> AsyncIterator[BaseDataLayer]:
    """Chainlit's ChainlitDataLayer on the Prisma-shaped schema, with S3 storage on the moto server."""
    await create_prisma_schema(database_url)
    stored_objects.create_bucket()
    storage = S3StorageClient(
        bucket=stored_objects.bucket,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        endpoint_url=stored_objects.endpoint_url,
    )
    layer = ChainlitDataLayer(database_url=database_url, storage_client=storage)
    yield layer
    # ChainlitDataLayer.close() awaits boto3's sync close() and raises TypeError: close pool and client apart.
    await layer.cleanup()  # type: ignore[no-untyped-call]
    storage.client.close()


@pytest.fixture(
    params=[
        pytest.param("openrag_layer", marks=pytest.mark.openrag, id="openrag"),
        pytest.param("builtin_layer", marks=pytest.mark.builtin, id="builtin"),
        pytest.param("pgbouncer_layer", marks=pytest.mark.pgbouncer, id="pgbouncer"),
    ]
)
def layer(request: pytest.FixtureRequest) -> BaseDataLayer:
    """The data layer under test."""
    data_layer: BaseDataLayer = request.getfixturevalue(request.param)
    return data_layer
