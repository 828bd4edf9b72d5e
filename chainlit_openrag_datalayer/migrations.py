"""Schema migrations over Alembic: ``upgrade``, ``current``, and the start-up ``check``.

Revisions live in the repository's ``migrations/`` folder and ship inside the wheel as
``chainlit_openrag_datalayer/migrations``. They use their own version table, so an application's
``alembic_version`` in the same database is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, column, select, table, text

from . import adoption
from .config import Settings
from .connection import Connector, parse_database_url
from .errors import DataLayerError, SchemaOutOfDateError
from .schema import VERSION_TABLE

logger = logging.getLogger(__name__)

# Every schema change (an Alembic upgrade, an adoption) holds this advisory lock for its transaction:
# workers starting together change the schema one after another.
SCHEMA_LOCK_KEY = 0x636C6F72  # "clor"
UPGRADE_COMMAND = "python -m chainlit_openrag_datalayer upgrade"


def script_location() -> Path:
    """The migrations folder: inside the installed package, or at the repository root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DataLayerError(
        "The migrations folder is missing from this installation: reinstall chainlit-openrag-datalayer."
    )


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def _connector(database: str | Connector) -> Connector:
    """A ``DATABASE_URL`` string connects the way commands do (``CLI_STATEMENT_TIMEOUT``)."""
    if isinstance(database, Connector):
        return database
    return Settings(database_url=parse_database_url(database)).cli_connector()


def upgrade(
    database: str | Connector,
    revision: str = "head",
    *,
    dry_run: bool = False,
    progress: adoption.Progress | None = None,
) -> list[str]:
    """Bring the database to ``revision`` (blocking; for the CLI and scripts); see ``upgrade_async``."""
    return asyncio.run(upgrade_async(database, revision, dry_run=dry_run, progress=progress))


async def upgrade_async(
    database: str | Connector,
    revision: str = "head",
    *,
    dry_run: bool = False,
    adopt: bool = True,
    progress: adoption.Progress | None = None,
) -> list[str]:
    """Bring the database to ``revision``, adopting a Prisma or OpenRAG-init schema on the way.

    Returns the plan: what was done, or with ``dry_run`` what would be done (nothing changes).
    Everything runs in one transaction; concurrent callers wait on an advisory lock. With
    ``adopt=False`` (start-up migrations) an existing schema is refused: converting one is the
    operator's call, after ``upgrade --dry-run`` and a backup. ``progress`` gets a line as each
    long step starts or ends (tables copied with their row counts, revisions applied).
    """
    engine = _connector(database).engine()
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(
                _upgrade_on, revision, dry_run, adopt, progress or adoption.quiet
            )
    finally:
        await engine.dispose()


def lock_schema(connection: Connection) -> None:
    """Wait for any other upgrade or adoption; held until the transaction ends."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def _upgrade_on(
    connection: Connection, revision: str, dry_run: bool, adopt: bool, progress: adoption.Progress
) -> list[str]:
    lock_schema(connection)
    detection = adoption.detect(connection)
    if detection.shape is adoption.Shape.UNKNOWN:
        raise adoption.refusal(detection)
    if detection.shape.adoptable and not adopt:
        raise SchemaOutOfDateError(
            f"This database holds an existing Chainlit schema ({detection.shape.value}). Review the "
            f"conversion with `{UPGRADE_COMMAND} --dry-run`, back the database up, "
            f"then run: {UPGRADE_COMMAND}"
        )
    plan = adoption.plan(connection, detection)
    current, pending = _pending(connection, plan, revision)
    steps = [f"apply revision {r.revision}: {r.doc}" for r in pending]
    lines = [f"Database shape: {detection.shape.value}", *plan.steps, *steps]
    if not pending:
        lines.append(f"Schema is already at {current} ({revision}): nothing to apply.")
    if dry_run:
        return lines
    config = alembic_config()
    config.attributes["connection"] = connection
    if plan.shape.adoptable:
        adoption.prepare(connection, plan)
        adoption.adopt(connection, plan, lambda: command.upgrade(config, adoption.TARGET_REVISION), progress)
    for line in steps:
        progress(line)
    command.upgrade(config, revision)
    if pending:
        lines.append(f"Schema is now at {pending[-1].revision} ({revision}).")
        logger.info("Database schema upgraded to %s", pending[-1].revision)
    return lines


def _pending(connection: Connection, plan: adoption.Plan, revision: str) -> tuple[str | None, list[Script]]:
    """The revision the schema is at (after any adoption), and those ``upgrade`` applies, oldest first."""
    current: str | None = None
    if plan.shape is adoption.Shape.MANAGED:
        version = table(VERSION_TABLE, column("version_num"))
        current = connection.execute(select(version.c.version_num)).scalar_one_or_none()
    elif plan.shape.adoptable:
        current = adoption.TARGET_REVISION
    script = ScriptDirectory.from_config(alembic_config())
    revisions = script.iterate_revisions(revision, current or "base")
    return current, [r for r in reversed(list(revisions)) if r is not None]


async def current_revision(connection: asyncpg.Connection) -> str | None:
    """The revision recorded in the database, or None before the first upgrade (an asyncpg connection)."""
    if await connection.fetchval("SELECT to_regclass($1)::text", VERSION_TABLE) is None:
        return None
    revision: str | None = await connection.fetchval(f'SELECT version_num FROM "{VERSION_TABLE}"')  # noqa: S608
    return revision


async def check(connection: asyncpg.Connection) -> None:
    """Refuse to run against a schema that is not at this package's head (an asyncpg connection)."""
    current = await current_revision(connection)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDateError(
            f"The database has no chainlit-openrag-datalayer schema yet. Run: {UPGRADE_COMMAND}"
        )
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
        raise SchemaOutOfDateError(
            f"The database schema is at revision {current}, newer than this package knows "
            f"(head {head}): upgrade chainlit-openrag-datalayer."
        )
    raise SchemaOutOfDateError(
        f"The database schema is at revision {current} but this version needs {head}. Run: {UPGRADE_COMMAND}"
    )
