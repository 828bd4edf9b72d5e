"""The four contenders, each on its own database of the one PostgreSQL server and its own bucket.

- ``openrag``: this package, on a database brought to head by its migrations;
- ``builtin``: Chainlit's ``ChainlitDataLayer`` on the Prisma-shaped schema;
- ``sqlalchemy``: Chainlit's ``SQLAlchemyDataLayer`` on its documented schema;
- ``raw``: one asyncpg connection and one prepared single-row INSERT into this package's ``Step``
  table, the physical floor of a write (one round trip, no layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import boto3
from chainlit.data.base import BaseDataLayer
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.storage_clients.s3 import S3StorageClient

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.services import s3_environ

from . import dataset as ds
from .schemas import create_prisma_schema, create_sqlalchemy_schema
from .services import s3_credentials

LABELS = {
    "openrag": "this package",
    "openrag_large": "this package, 10x history",
    "builtin": "ChainlitDataLayer",
    "sqlalchemy": "SQLAlchemyDataLayer",
    "raw": "raw asyncpg INSERT",
    "aioboto3": "plain aioboto3 upload_file",
}
LAYERS = ("openrag", "builtin", "sqlalchemy")
SHAPE = {"openrag": "openrag", "builtin": "prisma", "sqlalchemy": "sqlalchemy"}
# Per schema: how to find a step, for the checks after a workload (table names are constants).
STEP_TABLE = {"openrag": '"Step"', "prisma": '"Step"', "sqlalchemy": "steps"}
STEP_ID_TYPE = {"openrag": "text", "prisma": "text", "sqlalchemy": "uuid"}

RAW_INSERT = """
INSERT INTO "Step" (id, "threadId", "parentId", name, type, input, output, metadata, "showInput",
                    "isError", "startTime", "endTime", "createdAt")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
"""


@dataclass
class Contender:
    """A data layer under test on its history, with what the workloads need to check its writes.

    ``name`` keys the results; ``kind`` is the layer (``openrag``, ``builtin`` or ``sqlalchemy``).
    """

    name: str
    kind: str
    scale: ds.Scale
    database_url: str
    bucket: str
    layer: BaseDataLayer
    storage: S3StorageClient | None = None
    probe: asyncpg.Connection | None = field(default=None, repr=False)

    @property
    def shape(self) -> str:
        return SHAPE[self.kind]

    async def step_exists(self, step_id: str) -> bool:
        """Whether a step really reached the database (SQLAlchemyDataLayer swallows its errors)."""
        assert self.probe is not None
        table, id_type = STEP_TABLE[self.shape], STEP_ID_TYPE[self.shape]
        query = f"SELECT count(*) FROM {table} WHERE id = $1::{id_type}"  # noqa: S608
        return bool(await self.probe.fetchval(query, step_id))

    async def step_output(self, step_id: str) -> str | None:
        assert self.probe is not None
        table, id_type = STEP_TABLE[self.shape], STEP_ID_TYPE[self.shape]
        query = f"SELECT output FROM {table} WHERE id = $1::{id_type}"  # noqa: S608
        output: str | None = await self.probe.fetchval(query, step_id)
        return output

    async def count_steps(self, step_ids: list[str]) -> int:
        assert self.probe is not None
        table, id_type = STEP_TABLE[self.shape], STEP_ID_TYPE[self.shape]
        query = f"SELECT count(*) FROM {table} WHERE id = ANY($1::{id_type}[])"  # noqa: S608
        return int(await self.probe.fetchval(query, step_ids))

    async def close(self) -> None:
        if isinstance(self.layer, OpenRAGDataLayer):
            await self.layer.close()
        elif isinstance(self.layer, ChainlitDataLayer):
            await self.layer.cleanup()  # type: ignore[no-untyped-call]  # close() raises TypeError
        elif isinstance(self.layer, SQLAlchemyDataLayer):
            await self.layer.engine.dispose()
        if self.storage is not None:
            self.storage.client.close()
        if self.probe is not None:
            await self.probe.close()


@dataclass
class RawInsert:
    """The floor: one connection, one prepared statement, one row per call."""

    connection: asyncpg.Connection
    statement: Any

    @classmethod
    async def open(cls, database_url: str) -> RawInsert:
        connection = await asyncpg.connect(database_url)
        return cls(connection, await connection.prepare(RAW_INSERT))

    async def insert(self, args: tuple[Any, ...]) -> None:
        await self.statement.fetch(*args)

    async def close(self) -> None:
        await self.connection.close()


async def prepare_schema(name: str, database_url: str) -> None:
    if name == "openrag":
        await upgrade_async(database_url)
    elif name == "builtin":
        await create_prisma_schema(database_url)
    else:
        await create_sqlalchemy_schema(database_url)


def _builtin_storage(endpoint_url: str, bucket: str) -> S3StorageClient:
    return S3StorageClient(bucket=bucket, **s3_credentials(endpoint_url))


async def open_contender(
    kind: str, database_url: str, endpoint_url: str, scale: ds.Scale, name: str | None = None
) -> Contender:
    """The layer ``kind`` on its (already loaded) database, with a fresh bucket holding the elements."""
    name = name or kind
    bucket = f"bench-{name}".replace("_", "-")
    _put_element_objects(endpoint_url, bucket, scale)
    storage = None
    layer: BaseDataLayer
    if kind == "openrag":
        layer = OpenRAGDataLayer(
            Settings.from_env({"DATABASE_URL": database_url, **s3_environ(endpoint_url, bucket)})
        )
    elif kind == "builtin":
        storage = _builtin_storage(endpoint_url, bucket)
        layer = ChainlitDataLayer(database_url=database_url, storage_client=storage)
    else:
        storage = _builtin_storage(endpoint_url, bucket)
        async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        layer = SQLAlchemyDataLayer(conninfo=async_url, storage_provider=storage)
    probe = await asyncpg.connect(database_url)
    return Contender(name, kind, scale, database_url, bucket, layer, storage, probe)


def _put_element_objects(endpoint_url: str, bucket: str, scale: ds.Scale) -> None:
    """The bucket, with the small objects behind the elements of the ``get_thread`` thread."""
    client = boto3.client("s3", **s3_credentials(endpoint_url))
    try:
        client.create_bucket(Bucket=bucket)
        for element in ds.elements(scale):
            client.put_object(Bucket=bucket, Key=element.object_key, Body=b"\x89PNG" + b"0" * 2048)
    finally:
        client.close()
