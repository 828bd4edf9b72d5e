"""``python -m chainlit_openrag_datalayer COMMAND`` (also the ``chainlit-openrag-datalayer`` script)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import create_async_engine

from . import migrations
from .config import Settings
from .errors import DataLayerError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on a reported error, 2 on bad usage."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = Settings.from_env(os.environ)
        return int(args.run(settings, args))
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainlit-openrag-datalayer",
        description="Operate the chainlit-openrag-datalayer database. Settings come from the "
        "environment (DATABASE_URL, BUCKET_NAME, APP_AWS_*, DEV_AWS_ENDPOINT).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser("upgrade", help="migrate the database schema to this version")
    upgrade.set_defaults(run=_upgrade)
    current = commands.add_parser("current", help="print the schema revision of the database")
    current.set_defaults(run=_current)
    return parser


def _upgrade(settings: Settings, args: argparse.Namespace) -> int:
    migrations.upgrade(settings.require_database_url())
    print(f"Schema is at {migrations.head_revision()} (head).")
    return EXIT_OK


def _current(settings: Settings, args: argparse.Namespace) -> int:
    revision = asyncio.run(_read_revision(settings))
    head = migrations.head_revision()
    state = "head" if revision == head else f"behind head {head}, run: {migrations.UPGRADE_COMMAND}"
    print(f"{revision or 'none'} ({state})")
    return EXIT_OK if revision == head else EXIT_ERROR


async def _read_revision(settings: Settings) -> str | None:
    engine = create_async_engine(settings.require_database_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            return await migrations.current_revision(connection)
    finally:
        await engine.dispose()
