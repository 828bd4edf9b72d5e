"""Secrets (REDACT_METADATA_KEYS, token=/api_key= in URLs) never reach the database, nor the logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from chainlit.user import User

from chainlit_openrag_datalayer import OpenRAGDataLayer
from tests.conformance.factories import text_element
from tests.reliability.conftest import LayerFactory
from tests.reliability.faults import UnreachableStorage
from tests.reliability.inputs import fresh_id, nested
from tests.reliability.test_bad_input import raw_step

SECRET = "s3cr3t-VALUE-never-stored"
TABLE_DUMPS = [
    f"SELECT coalesce(string_agg(t::text, ' '), '') FROM \"{table}\" t"  # noqa: S608  # constant names
    for table in ("User", "Thread", "Step", "Element", "Feedback")
]


def secret_metadata() -> dict[str, Any]:
    """Secrets under each default key, in several cases and depths, next to values that must be kept."""
    return {
        "api_key": SECRET,
        "kept": "visible",
        "Token": {"nested": SECRET},
        "list": [{"PASSWORD": SECRET}, ("tuple", {"secret": SECRET})],
        "deep": {"a": {"b": {"openrag_api_key": SECRET}}},
    }


async def database_text(database_url: str) -> str:
    """Every row of every table as text, read with asyncpg (not through the layer)."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = [await connection.fetchval(query) for query in TABLE_DUMPS]
        return "".join(rows)
    finally:
        await connection.close()


def secret_element(thread_id: str, **fields: Any) -> Any:
    element = text_element(thread_id, None, content="file")
    element.url = f"https://files.example/doc?token={SECRET}&api_key={SECRET}&page=2"
    # Text declares no props; Chainlit's Element.to_dict reads it with getattr, so set it the same way.
    for name, value in {"props": {"secret": SECRET, "kept": "visible"}, **fields}.items():
        setattr(element, name, value)
    return element


async def test_secrets_are_redacted_in_every_stored_row(layer: OpenRAGDataLayer, database_url: str) -> None:
    """User, thread, step (metadata, generation, unknown keys) and element (props, URL) rows: no secret."""
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}", metadata=secret_metadata()))
    assert user is not None
    thread_id = fresh_id()
    await layer.update_thread(thread_id, name="secrets", user_id=user.id, metadata=secret_metadata())
    step = raw_step(
        thread_id, fresh_id(), metadata=secret_metadata(), generation={"settings": secret_metadata()}
    )
    await layer.create_step({**step, "openrag_api_key": SECRET})  # type: ignore[typeddict-unknown-key]
    await layer.create_element(secret_element(thread_id))

    stored = await database_text(database_url)
    assert SECRET not in stored
    assert stored.count("visible") >= 5 and "[redacted]" in stored and "page=2" in stored


@pytest.mark.parametrize("depth", [60, 64, 70, 120])
async def test_secret_nested_past_the_depth_limit_is_not_stored(
    layer: OpenRAGDataLayer, database_url: str, depth: int
) -> None:
    """Redaction reaches as deep as storage does: the cut-off string holds no secret either."""
    await layer.create_step(
        raw_step(fresh_id(), fresh_id(), metadata={"x": nested(depth, {"api_key": SECRET})})
    )

    assert SECRET not in await database_text(database_url)


async def test_a_write_lost_to_an_outage_logs_no_secret(
    make_layer: LayerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage unreachable past the budget: the ERROR names the element, and carries no secret."""
    caplog.set_level(logging.DEBUG)
    layer = await make_layer(storage=UnreachableStorage(tmp_path / "files"), write_retry_seconds=0.3)
    element = secret_element(fresh_id())
    with pytest.raises(ConnectionRefusedError) as raised:
        await layer.create_element(element)

    assert any(element.id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert SECRET not in caplog.text and SECRET not in repr(raised.value)


async def test_a_write_the_database_rejects_logs_no_secret(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """An element PostgreSQL refuses (page out of int32 range): the logged error carries no secret."""
    caplog.set_level(logging.DEBUG)
    element = secret_element(fresh_id(), page=2**40)
    try:
        await layer.create_element(element)
    except Exception as error:  # refused and logged is acceptable; leaking the secret is not
        assert SECRET not in f"{error!r} {error.__cause__!r}"
    assert SECRET not in caplog.text
