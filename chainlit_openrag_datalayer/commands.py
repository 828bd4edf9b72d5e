"""What each command of ``cli`` does: a few lines over ``migrations``, ``maintenance`` and ``doctor``.

Destructive commands list what they will delete, then ask on a terminal or take ``--yes``. Text that
came from users or clients (names, identifiers, keys) is printed through ``printable`` (no terminal
escape sequences), CSV cells through ``spreadsheet_cell`` (no formulas).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import adoption, doctor, maintenance, migrations, sweep
from .config import Settings
from .errors import DataLayerError, describe
from .storage import ElementStorage, storage_for

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")
Command = Callable[[Settings, argparse.Namespace], int]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Unconfirmed(DataLayerError):
    """A destructive command with no terminal to ask on and no ``--yes``: exit 2."""


def run(args: argparse.Namespace) -> int:
    """Run the parsed command and turn its errors into one line on stderr and an exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(os.environ, base_dir=getattr(args, "app_dir", None))
        return COMMANDS[args.command](settings, args)
    except Unconfirmed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
    except (TimeoutError, asyncio.TimeoutError):
        print(
            "error: the database did not answer in time (DATABASE_CONNECT_TIMEOUT to connect, "
            "CLI_STATEMENT_TIMEOUT per statement). Run `doctor` to see what to fix.",
            file=sys.stderr,
        )
    except (
        OSError,
        SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        BotoCoreError,
        ClientError,
    ) as error:
        print(f"error: {describe(error)}. Run `doctor` to see what to fix.", file=sys.stderr)
    return EXIT_ERROR


# --- output ------------------------------------------------------------------------------------


def plural(count: int, noun: str) -> str:
    """``1 thread``, ``2 threads``; a multi-word noun takes the ``s`` on its last word."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def printable(value: object) -> str:
    """``value`` as text safe for a terminal: control and format characters shown as escapes."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(value))


def spreadsheet_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a leading ``= + - @``, tab or CR gets a ``'`` before it
    (OWASP's CSV injection advice); control characters other than tab and newline are escaped (no
    terminal escape sequences). Numbers stay numbers."""
    if not isinstance(value, str):
        return value
    text = "".join(ch if ch.isprintable() or ch in "\t\n" else ascii(ch)[1:-1] for ch in value)
    return "'" + text if value.startswith(_FORMULA_START) else text


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask on the terminal (default no); ``--yes`` answers for scripts; without either, refuse."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise Unconfirmed(f"{question} Standard input is not a terminal: pass --yes to confirm.")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


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


def _declined() -> int:
    print("Nothing was deleted.", file=sys.stderr)
    return EXIT_ERROR


# --- services ----------------------------------------------------------------------------------


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, ElementStorage]]:
    """An engine on a schema at head, and the element storage; both closed afterwards."""
    connector = settings.cli_connector()
    async with connector.connection() as connection:
        await migrations.check(connection)
    engine = connector.engine(pool_size=2)
    storage = storage_for(settings)
    try:
        yield engine, storage
    finally:
        await engine.dispose()
        await storage.close()


def _with_services(settings: Settings, work: Callable[[AsyncEngine, ElementStorage], Awaitable[T]]) -> T:
    async def run() -> T:
        async with _services(settings) as (engine, storage):
            return await work(engine, storage)

    return asyncio.run(run())


# --- commands ----------------------------------------------------------------------------------


def upgrade(settings: Settings, args: argparse.Namespace) -> int:
    # progress on stderr: adoption copies and index builds can take minutes on a large history
    connector = settings.cli_connector()
    for line in migrations.upgrade(connector, dry_run=args.dry_run, progress=_progress_line):
        print(line)
    if args.dry_run:
        print("Dry run: nothing was changed.")
    return EXIT_OK


def current(settings: Settings, args: argparse.Namespace) -> int:
    revision, shape = asyncio.run(_read_state(settings))
    head = migrations.head_revision()
    if revision == head:
        print(f"revision: {revision} (head)")
    elif revision is None:
        print(f"revision: none (no chainlit-openrag-datalayer schema yet; run: {migrations.UPGRADE_COMMAND})")
    else:
        print(f"revision: {revision} (this package's head is {head}; run: {migrations.UPGRADE_COMMAND})")
    print(f"shape: {shape.value}")
    return EXIT_OK


async def _read_state(settings: Settings) -> tuple[str | None, adoption.Shape]:
    connector = settings.cli_connector()
    async with connector.connection() as connection:
        revision = await migrations.current_revision(connection)
    engine = connector.engine()
    try:
        async with engine.connect() as connection:
            detection = await connection.run_sync(adoption.detect)
        return revision, detection.shape
    finally:
        await engine.dispose()


def doctor_(settings: Settings, args: argparse.Namespace) -> int:
    checks = asyncio.run(doctor.diagnose(settings, args.app_url))
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if all(check.ok for check in checks) else EXIT_ERROR


def purge(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine, storage: ElementStorage) -> int:
        plan = await maintenance.purge_plan(engine, args.older_than, user_identifier=args.user)
        for listed in plan.threads:
            print(
                f"thread {printable(listed.id)}  owner {printable(listed.owner or '(none)')}  "
                f'last activity {listed.updated_at:%Y-%m-%d %H:%M} UTC  name "{printable(listed.name or "")}"'
            )
        totals = f"{plural(len(plan.threads), 'thread')} and {plural(plan.objects, 'stored file')}"
        if args.dry_run:
            print(f"purge would delete {totals}")
            return EXIT_OK
        if plan.threads and not confirm(f"Delete {totals}? This cannot be undone.", args.yes):
            return _declined()
        result = await maintenance.purge(engine, storage, plan, progress=_progress("purge"))
        print(f"purge deleted {plural(result.threads, 'thread')} and {plural(result.objects, 'stored file')}")
        return EXIT_OK

    return _with_services(settings, work)


def export_user(settings: Settings, args: argparse.Namespace) -> int:
    result = _with_services(
        settings,
        lambda engine, storage: maintenance.export_user(
            engine, storage, args.identifier, args.out, progress=_progress("export")
        ),
    )
    things = f"{plural(result.threads, 'thread')} and {plural(result.files, 'file')}"
    print(f"exported {things} to {args.out}")
    for key in result.missing_files:
        print(f"warning: file {printable(key)} is missing from storage (run `sweep`)", file=sys.stderr)
    return EXIT_OK


def erase_user(settings: Settings, args: argparse.Namespace) -> int:
    who = printable(args.identifier)

    async def work(engine: AsyncEngine, storage: ElementStorage) -> int:
        found = await maintenance.erase_overview(engine, args.identifier)
        totals = f"{plural(found.threads, 'thread')} and {plural(found.objects, 'stored file')}"
        print(f"user {who}: {totals}")
        if not confirm(f"Erase user {who} with {totals}? This cannot be undone.", args.yes):
            return _declined()
        result = await maintenance.erase_user(engine, storage, args.identifier, progress=_progress("erase"))
        erased = f"{plural(result.threads, 'thread')} and {plural(result.objects, 'stored file')}"
        print(f"erased user {who}: {erased}")
        return EXIT_OK

    return _with_services(settings, work)


def sweep_(settings: Settings, args: argparse.Namespace) -> int:
    grace = sweep.GRACE if args.min_age is None else args.min_age

    async def work(engine: AsyncEngine, storage: ElementStorage) -> int:
        found = await sweep.find(engine, storage, grace=grace)
        _print_sweep(found)
        totals = _sweep_totals(found)
        if not args.apply:
            print(f"sweep found {totals} (run with --apply to delete them)")
            return EXIT_OK
        if (found.orphan_objects or found.missing_objects) and not confirm(f"Delete {totals}?", args.yes):
            return _declined()
        applied = await sweep.apply(engine, storage, found)
        print(f"sweep deleted {_sweep_totals(applied)}")
        kept = len(found.orphan_objects) + len(found.missing_objects)
        kept -= len(applied.orphan_objects) + len(applied.missing_objects)
        if kept:
            print(f"kept {plural(kept, 'item')} that changed since the scan")
        return EXIT_OK

    return _with_services(settings, work)


def _print_sweep(found: sweep.SweepResult) -> None:
    for key in found.orphan_objects:
        print(f"orphan file: {printable(key)}")
    for element_id, key in found.missing_objects:
        print(f"missing file: element {printable(element_id)} points at {printable(key)}")


def _sweep_totals(result: sweep.SweepResult) -> str:
    orphans = plural(len(result.orphan_objects), "orphan file")
    return f"{orphans} and {plural(len(result.missing_objects), 'element')} without file"


def feedback(settings: Settings, args: argparse.Namespace) -> int:
    rows = _with_services(settings, lambda engine, _: maintenance.feedback_report(engine, args.since))
    if args.format == "jsonl":
        for row in rows:
            print(_json_line(row))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=maintenance.FEEDBACK_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: spreadsheet_cell(value) for key, value in row.items()} for row in rows)
    return EXIT_OK


def _json_line(row: dict[str, Any]) -> str:
    """One JSON object per line; JSON escapes C0 controls, and C1 controls (terminal escapes too) are
    escaped here, so the line is safe to print."""
    line = json.dumps(row, ensure_ascii=False)
    return "".join(ch if not 0x80 <= ord(ch) < 0xA0 else f"\\u{ord(ch):04x}" for ch in line)


COMMANDS: dict[str, Command] = {
    "upgrade": upgrade,
    "current": current,
    "doctor": doctor_,
    "purge": purge,
    "export-user": export_user,
    "erase-user": erase_user,
    "sweep": sweep_,
    "feedback": feedback,
}
