"""``python -m chainlit_openrag_datalayer COMMAND`` (also the ``chainlit-openrag-datalayer`` script).

Each command is a few lines over ``migrations``, ``maintenance`` and ``doctor``. Exit codes: 0 done,
1 a reported error (or a check that failed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import adoption, doctor, maintenance, migrations
from .config import Settings
from .errors import DataLayerError
from .storage import ElementStorage, storage_for

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on a reported error, 2 on bad usage."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(os.environ)
        return int(args.run(settings, args))
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
    except (OSError, SQLAlchemyError) as error:
        print(
            f"error: {error.__class__.__name__}: {error}. Run `doctor` to see what to fix.", file=sys.stderr
        )
    return EXIT_ERROR


def duration(value: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``2w``."""
    match = _DURATION.match(value.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 90d, 12h, 30m or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def moment(value: str) -> datetime:
    """An ISO date or date-time; without a time zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date like 2026-01-31 or 2026-01-31T12:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainlit-openrag-datalayer",
        description="Operate the chainlit-openrag-datalayer database and bucket. Settings come from the "
        "environment (DATABASE_URL, BUCKET_NAME, APP_AWS_*, DEV_AWS_ENDPOINT, STORAGE_URL_MODE).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser("upgrade", help="migrate the schema, adopting a Prisma or OpenRAG-init one")
    upgrade.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    upgrade.set_defaults(run=_upgrade)
    current = commands.add_parser("current", help="print the schema revision and the database shape")
    current.set_defaults(run=_current)
    check = commands.add_parser("doctor", help="check database, schema, bucket and element URLs")
    check.set_defaults(run=_doctor)
    purge = commands.add_parser("purge", help="delete threads without activity for a while, files included")
    purge.add_argument("--older-than", type=duration, required=True, metavar="AGE", help="e.g. 90d, 12h, 2w")
    purge.add_argument("--user", metavar="IDENTIFIER", help="only this user's threads")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted")
    purge.set_defaults(run=_purge)
    export = commands.add_parser("export-user", help="zip a user's threads, steps, feedback and files")
    export.add_argument("identifier", metavar="IDENTIFIER")
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="the .zip to write")
    export.set_defaults(run=_export_user)
    erase = commands.add_parser("erase-user", help="delete a user, their threads and every file of theirs")
    erase.add_argument("identifier", metavar="IDENTIFIER")
    erase.set_defaults(run=_erase_user)
    sweep = commands.add_parser("sweep", help="find files no element points at, and elements without file")
    sweep.add_argument("--apply", action="store_true", help="delete what was found")
    sweep.add_argument(
        "--min-age", type=duration, default=maintenance.SWEEP_GRACE, metavar="AGE",
        help="leave younger files alone (uploads land before their row); default 1h",
    )  # fmt: skip
    sweep.set_defaults(run=_sweep)
    report = commands.add_parser("feedback", help="every feedback with its thread, answer and question")
    report.add_argument("--since", type=moment, required=True, metavar="DATE", help="e.g. 2026-01-01")
    report.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    report.set_defaults(run=_feedback)
    return parser


def _progress(label: str) -> maintenance.Progress:
    """A progress line on stderr: redrawn on a terminal, every tenth of the work in a log."""

    def show(done: int, total: int) -> None:
        line = f"{label}: {done}/{total}"
        if sys.stderr.isatty():
            print(f"\r{line}", end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(line, file=sys.stderr, flush=True)

    return show


def _progress_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, ElementStorage]]:
    """An engine on a schema at head, and the element storage; both closed afterwards."""
    engine = create_async_engine(settings.require_database_url(), pool_size=2)
    storage = storage_for(settings)
    try:
        await migrations.check(engine)
        yield engine, storage
    finally:
        await engine.dispose()
        await storage.close()


def _with_services(settings: Settings, work: Callable[[AsyncEngine, ElementStorage], Awaitable[T]]) -> T:
    async def run() -> T:
        async with _services(settings) as (engine, storage):
            return await work(engine, storage)

    return asyncio.run(run())


def _upgrade(settings: Settings, args: argparse.Namespace) -> int:
    progress = _progress_line  # adoption copies and index builds can take minutes on a large history
    for line in migrations.upgrade(settings.require_database_url(), dry_run=args.dry_run, progress=progress):
        print(line)
    print(
        "Dry run: nothing was changed."
        if args.dry_run
        else f"Schema is at {migrations.head_revision()} (head)."
    )
    return EXIT_OK


def _current(settings: Settings, args: argparse.Namespace) -> int:
    revision, shape = asyncio.run(_read_state(settings))
    head = migrations.head_revision()
    state = "head" if revision == head else f"behind head {head}, run: {migrations.UPGRADE_COMMAND}"
    print(f"revision: {revision or 'none'} ({state})")
    print(f"shape: {shape.value}")
    return EXIT_OK if revision == head else EXIT_ERROR


async def _read_state(settings: Settings) -> tuple[str | None, adoption.Shape]:
    engine = create_async_engine(settings.require_database_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            revision = await migrations.current_revision(connection)
            detection = await connection.run_sync(adoption.detect)
        return revision, detection.shape
    finally:
        await engine.dispose()


def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    checks = asyncio.run(doctor.diagnose(settings))
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if all(check.ok for check in checks) else EXIT_ERROR


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_services(
        settings,
        lambda engine, storage: maintenance.purge(
            engine, storage, args.older_than, user_identifier=args.user, dry_run=args.dry_run,
            progress=_progress("purge"),
        ),
    )  # fmt: skip
    verb = "would delete" if result.dry_run else "deleted"
    print(f"purge {verb} {result.threads} threads and {result.objects} stored files")
    return EXIT_OK


def _export_user(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_services(
        settings,
        lambda engine, storage: maintenance.export_user(
            engine, storage, args.identifier, args.out, progress=_progress("export")
        ),
    )
    print(f"exported {result.threads} threads and {result.files} files to {args.out}")
    for key in result.missing_files:
        print(f"warning: file {key} is missing from storage (run `sweep`)", file=sys.stderr)
    return EXIT_OK


def _erase_user(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_services(
        settings,
        lambda engine, storage: maintenance.erase_user(
            engine, storage, args.identifier, progress=_progress("erase")
        ),
    )
    print(f"erased user {args.identifier}: {result.threads} threads and {result.objects} stored files")
    return EXIT_OK


def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_services(
        settings,
        lambda engine, storage: maintenance.sweep(engine, storage, apply=args.apply, grace=args.min_age),
    )
    for key in result.orphan_objects:
        print(f"orphan file: {key}")
    for element_id, key in result.missing_objects:
        print(f"missing file: element {element_id} points at {key}")
    verb = "deleted" if result.applied else "found"
    hint = "" if result.applied else " (run with --apply to delete them)"
    orphans, missing = len(result.orphan_objects), len(result.missing_objects)
    print(f"sweep {verb} {orphans} orphan files and {missing} elements without file{hint}")
    return EXIT_OK


def _feedback(settings: Settings, args: argparse.Namespace) -> int:
    rows = _with_services(settings, lambda engine, _: maintenance.feedback_report(engine, args.since))
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=maintenance.FEEDBACK_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return EXIT_OK
