"""Users: create_user and get_user."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from chainlit.data.base import BaseDataLayer
from chainlit.user import User

from tests.conformance.factories import new_id, parse_timestamp


async def test_create_user_then_get_user_round_trips(layer: BaseDataLayer) -> None:
    """get_user returns the id, identifier and metadata create_user stored."""
    identifier = f"alice-{new_id()}"
    created = await layer.create_user(User(identifier=identifier, metadata={"role": "admin", "n": [1, 2]}))

    fetched = await layer.get_user(identifier)

    assert created is not None and fetched is not None
    assert isinstance(fetched.id, str) and fetched.id == created.id
    assert fetched.identifier == identifier
    assert fetched.metadata == {"role": "admin", "n": [1, 2]}


@pytest.mark.builtin_fails("createdAt is a naive isoformat() without Z")
async def test_user_created_at_is_utc_iso_8601_with_z(layer: BaseDataLayer) -> None:
    """A user's createdAt is an ISO-8601 UTC string ending in Z, close to now."""
    identifier = f"bob-{new_id()}"
    await layer.create_user(User(identifier=identifier))

    user = await layer.get_user(identifier)

    assert user is not None
    assert user.createdAt.endswith("Z")
    assert abs(parse_timestamp(user.createdAt) - datetime.now(timezone.utc)) < timedelta(minutes=1)


async def test_create_user_twice_updates_metadata_and_keeps_id(layer: BaseDataLayer) -> None:
    """A second create_user for the same identifier is an upsert: same id, new metadata."""
    identifier = f"carol-{new_id()}"
    first = await layer.create_user(User(identifier=identifier, metadata={"plan": "free"}))
    second = await layer.create_user(User(identifier=identifier, metadata={"plan": "pro"}))

    fetched = await layer.get_user(identifier)

    assert first is not None and second is not None and fetched is not None
    assert second.id == first.id == fetched.id
    assert second.metadata == fetched.metadata == {"plan": "pro"}


async def test_get_user_unknown_returns_none(layer: BaseDataLayer) -> None:
    """get_user of an identifier nobody created is None."""
    assert await layer.get_user(f"nobody-{new_id()}") is None
