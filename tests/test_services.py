"""The test services themselves: PostgreSQL and moto S3 answer on loopback."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import httpx

from tests.services import PostgresServer, s3_client


async def test_database_url_is_a_fresh_postgres_15_or_newer_database(database_url: str) -> None:
    """The per-test database accepts connections and has no tables of its own."""
    connection = await asyncpg.connect(database_url)
    try:
        version = await connection.fetchval("SHOW server_version_num")
        tables = await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    assert int(version) >= 150000
    assert tables == 0


async def test_postgres_restart_keeps_data(postgres_server: PostgresServer, database_url: str) -> None:
    """A restart brings the same cluster back on the same port with its data."""
    connection = await asyncpg.connect(database_url)
    await connection.execute("CREATE TABLE kept (id int)")
    await connection.close()

    postgres_server.restart()

    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM kept") == 0
    finally:
        await connection.close()


async def test_moto_serves_objects_over_http(s3_server: str, bucket_name: str) -> None:
    """A bucket created on the moto server stores an object that a presigned GET returns."""
    client = s3_client(s3_server)
    key = f"probe/{uuid4()}"
    client.create_bucket(Bucket=bucket_name)
    client.put_object(Bucket=bucket_name, Key=key, Body=b"hello")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket_name, "Key": key})
    client.close()

    async with httpx.AsyncClient() as http:
        response = await http.get(url)

    assert url.startswith(s3_server)
    assert response.content == b"hello"
