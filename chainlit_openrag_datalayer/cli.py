"""``python -m chainlit_openrag_datalayer COMMAND`` (also the ``chainlit-openrag-datalayer`` script).

This module only parses. ``commands`` (SQLAlchemy, Alembic, aioboto3) is imported once a command is
chosen, so ``--help`` and usage errors answer at once and write nothing; Chainlit is never imported.
Exit codes: 0 done, 1 a reported error, a failed check or a declined confirmation, 2 bad usage
(a destructive command without a terminal to confirm on and without ``--yes`` included).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

_DURATION = re.compile(r"(\d+)\s*([a-z]*)")
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "hour", "hours"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), timedelta(days=1)),
    **dict.fromkeys(("w", "week", "weeks"), timedelta(weeks=1)),
    **dict.fromkeys(("month", "months"), timedelta(days=30)),
}
AGE_HELP = "a number and a unit: s, min, h, d, w or months (30 days each), e.g. 90d; 0 means now"
_YES_HELP = "do not ask for confirmation (for scripts; without a terminal the command refuses otherwise)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on a reported error, 2 on bad usage."""
    args = _parser().parse_args(argv)
    from . import commands  # the heavy imports, only once there is work to do

    return commands.run(args)


def duration(value: str) -> timedelta:
    """``45s``, ``30min``, ``12h``, ``90d``, ``2w``, ``3months`` or ``0``; a bare ``m`` is ambiguous."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not an age like 90d, 12h, 30min or 2w")
    number, unit = int(match.group(1)), match.group(2)
    if unit == "m":
        raise argparse.ArgumentTypeError(
            f"{value!r} is ambiguous: write {number}min for minutes or {number}months for months"
        )
    if not unit and number == 0:
        return timedelta(0)
    if unit not in _UNITS:
        raise argparse.ArgumentTypeError(
            f"{value!r} needs a unit: s, min, h, d, w or months (e.g. {number}d for {number} days)"
        )
    return number * _UNITS[unit]


def moment(value: str) -> datetime:
    """An ISO date or date-time; without a time zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date like 2026-01-31 or 2026-01-31T12:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, details: str
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` opens with what it does (``details``) and is listed with ``summary``."""
    return commands.add_parser(
        name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {details}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainlit-openrag-datalayer",
        description="Operate the chainlit-openrag-datalayer database and bucket. Settings come from the "
        "environment (DATABASE_URL, BUCKET_NAME, APP_AWS_*, DEV_AWS_ENDPOINT, STORAGE_URL_MODE), as for "
        "the app. Exit codes: 0 done, 1 an error, a failed check or a declined confirmation, 2 bad usage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upgrade = _command(
        commands, "upgrade", "migrate the schema, adopting a Prisma or OpenRAG-init one",
        "Creates the tables on an empty database, converts a Prisma or OpenRAG-init schema in place (keeping "
        "every row), and applies new revisions; prints what it did. Safe to run again.",
    )  # fmt: skip
    upgrade.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    _command(
        commands, "current", "print the schema revision and the database shape",
        "Reads only; exits 0 whatever the state (use `doctor` to check a deployment).",
    )  # fmt: skip
    doctor = _command(
        commands, "doctor", "check database, schema, storage and element URLs",
        "Connects to DATABASE_URL, checks the schema is at head, writes and deletes a probe object in the "
        "bucket (or the local folder the app uses without BUCKET_NAME) and fetches it through an element "
        "URL. Exits 1 if any check fails.",
    )  # fmt: skip
    doctor.add_argument(
        "--app-dir", type=Path, metavar="DIR",
        help="the directory the app runs in, where a relative LOCAL_STORAGE_DIR (default "
        ".chainlit/element-files) is found; default: the current directory",
    )  # fmt: skip
    doctor.add_argument(
        "--app-url", metavar="URL",
        help="the address the chat opens at, mount path included (e.g. http://localhost:8080/chainlit): "
        "checks that the app's file route answers there, as served element URLs need",
    )  # fmt: skip
    purge = _command(
        commands, "purge", "delete threads without activity for a while, files included",
        "Lists each thread (id, owner, last activity, name), then deletes them with their steps, elements, "
        "feedback and stored files after confirmation. Cannot be undone.",
    )  # fmt: skip
    purge.add_argument("--older-than", type=duration, required=True, metavar="AGE", help=AGE_HELP)
    purge.add_argument("--user", metavar="IDENTIFIER", help="only this user's threads")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    purge.add_argument("--yes", action="store_true", help=_YES_HELP)
    export = _command(
        commands, "export-user", "zip a user's threads, steps, feedback and files",
        "Writes user.json, threads/<id>.json and each element file under files/ (a data-subject access "
        "request). Reads only.",
    )  # fmt: skip
    export.add_argument("identifier", metavar="IDENTIFIER")
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="the .zip to write")
    erase = _command(
        commands, "erase-user", "delete a user, their threads and every file of theirs",
        "Deletes the user's row, every thread of theirs with its steps, elements and feedback, and every "
        "stored file under those threads (a data-subject erasure request), after confirmation. Cannot be "
        "undone.",
    )  # fmt: skip
    erase.add_argument("identifier", metavar="IDENTIFIER")
    erase.add_argument("--yes", action="store_true", help=_YES_HELP)
    sweep = _command(
        commands, "sweep", "find files no element points at, and elements without file",
        "Looks only at this package's own keys (threads/<id>/files/<id> and files/<id>): other objects in "
        "the bucket are never listed or touched. Reports by default; --apply deletes what it found, after "
        "confirmation, re-checking each item first.",
    )  # fmt: skip
    sweep.add_argument("--apply", action="store_true", help="delete what was found")
    sweep.add_argument(
        "--min-age", type=duration, metavar="AGE",
        help=f"leave files and elements younger than this alone (an upload lands before its row); "
        f"default 1h; {AGE_HELP}",
    )  # fmt: skip
    sweep.add_argument("--yes", action="store_true", help=_YES_HELP)
    report = _command(
        commands, "feedback", "every feedback with its thread, answer and question",
        "Prints CSV (cells that a spreadsheet would run as a formula are prefixed with ') or JSON lines.",
    )  # fmt: skip
    report.add_argument("--since", type=moment, required=True, metavar="DATE", help="e.g. 2026-01-01")
    report.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    return parser
