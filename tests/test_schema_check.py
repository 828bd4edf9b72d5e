"""A layer started against a database that is not at the package's head says which command to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainlit_openrag_datalayer import OpenRAGDataLayer, SchemaOutOfDateError, Settings
from chainlit_openrag_datalayer.migrations import UPGRADE_COMMAND, head_revision, upgrade_async
from tests.services import free_port


async def test_layer_on_an_empty_database_asks_for_upgrade(database_url: str) -> None:
    """No schema yet: the first call fails with the upgrade command."""
    layer = OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": database_url}))
    with pytest.raises(SchemaOutOfDateError, match=UPGRADE_COMMAND):
        await layer.get_user("anyone")
    await layer.close()


async def test_layer_on_an_older_revision_names_both_revisions(database_url: str) -> None:
    """A database at 0001 while the package needs head: the message names both and the command."""
    await upgrade_async(database_url, "0001")
    layer = OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": database_url}))
    with pytest.raises(
        SchemaOutOfDateError, match=f"at revision 0001 but this version needs {head_revision()}"
    ):
        await layer.get_user("anyone")
    await layer.close()


async def test_auto_migrate_brings_the_database_to_head(database_url: str) -> None:
    """DATABASE_AUTO_MIGRATE=true upgrades on first use instead of refusing."""
    layer = OpenRAGDataLayer(
        Settings.from_env({"DATABASE_URL": database_url, "DATABASE_AUTO_MIGRATE": "true"})
    )
    assert await layer.get_user("anyone") is None
    await layer.close()


async def test_unreachable_database_fails_instead_of_falling_back(tmp_path: Path) -> None:
    """A configured PostgreSQL that does not answer is an error; the embedded default never starts."""
    embedded_dir = tmp_path / "pgdata"
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/chainlit",
            "EMBEDDED_POSTGRES_DIR": str(embedded_dir),
        }
    )
    layer = OpenRAGDataLayer(settings)
    with pytest.raises(OSError):
        await layer.get_user("anyone")
    await layer.close()
    assert not embedded_dir.exists()
