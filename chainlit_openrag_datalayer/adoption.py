"""Adopt a Chainlit database this package did not create: detect its shape, convert it in one transaction.

Known shapes (see the README, "Migrating from the Prisma schema"):

- ``prisma``: created by the ``chainlit-datalayer`` Prisma migrations (text ids, ``"StepType"`` enum,
  ``TIMESTAMP(3)`` without time zone, a ``_prisma_migrations`` table);
- ``openrag-init``: created by OpenRAG's ``scripts/postgres-init/01-chainlit.sql`` (uuid ids, text
  metadata on User and Thread, jsonb step input/output, no ``Thread."updatedAt"``);
- ``empty``: none of the five tables; ``managed``: this package's version table exists.

Conversion moves the old tables into a side schema and analyzes them, lets revision 0001 create the
exact target tables, copies every row with its conversions (``adoption_sql``; one statement per table,
derived columns joined from one grouped pass, never looked up per row), checks the row counts, rebuilds
the indexes and foreign keys it set aside during the copy, and drops the old tables. It runs on the
caller's connection, inside the caller's transaction: if anything fails, nothing changes.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, text

from .adoption_sql import JSON_OBJECT_FUNCTION, OLD, OPENRAG_INIT_COPY, PRISMA_COPY, Copy
from .errors import SchemaConflictError, SchemaOutOfDateError
from .schema import VERSION_TABLE

logger = logging.getLogger(__name__)

TARGET_REVISION = "0001"
SIDE_SCHEMA = "chainlit_openrag_adopting"
PRISMA_TABLE = "_prisma_migrations"
TABLES = ("User", "Thread", "Step", "Element", "Feedback")  # parents before children


class Shape(enum.Enum):
    MANAGED = "managed by chainlit-openrag-datalayer"
    PRISMA = "Prisma chainlit-datalayer"
    OPENRAG_INIT = "OpenRAG init script (01-chainlit.sql)"
    EMPTY = "empty"
    UNKNOWN = "unknown"

    @property
    def adoptable(self) -> bool:
        return self in (Shape.PRISMA, Shape.OPENRAG_INIT)


Columns = Mapping[str, Mapping[str, str]]  # table -> column -> PostgreSQL type name (udt_name)

_TS3 = "timestamp"
PRISMA_COLUMNS: Columns = {
    "User": {"id": "text", "createdAt": _TS3, "updatedAt": _TS3, "metadata": "jsonb", "identifier": "text"},
    "Thread": {
        "id": "text", "createdAt": _TS3, "updatedAt": _TS3, "deletedAt": _TS3, "name": "text",
        "metadata": "jsonb", "userId": "text", "tags": "_text",
    },
    "Step": {
        "id": "text", "createdAt": _TS3, "updatedAt": _TS3, "parentId": "text", "threadId": "text",
        "input": "text", "metadata": "jsonb", "name": "text", "output": "text", "type": "StepType",
        "showInput": "text", "isError": "bool", "startTime": _TS3, "endTime": _TS3,
    },
    "Element": {
        "id": "text", "createdAt": _TS3, "updatedAt": _TS3, "threadId": "text", "stepId": "text",
        "metadata": "jsonb", "mime": "text", "name": "text", "objectKey": "text", "url": "text",
        "chainlitKey": "text", "display": "text", "size": "text", "language": "text", "page": "int4",
        "props": "jsonb",
    },
    "Feedback": {
        "id": "text", "createdAt": _TS3, "updatedAt": _TS3, "stepId": "text", "name": "text",
        "value": "float8", "comment": "text",
    },
}  # fmt: skip

_TZ = "timestamptz"
OPENRAG_INIT_COLUMNS: Columns = {
    "User": {"id": "uuid", "identifier": "text", "metadata": "text", "createdAt": _TZ, "updatedAt": _TZ},
    "Thread": {
        "id": "uuid", "name": "text", "userId": "uuid", "tags": "_text", "metadata": "text",
        "createdAt": _TZ, "deletedAt": _TZ,
    },
    "Step": {
        "id": "uuid", "threadId": "uuid", "parentId": "uuid", "input": "jsonb", "metadata": "jsonb",
        "name": "text", "output": "jsonb", "type": "text", "startTime": _TZ, "endTime": _TZ,
        "showInput": "text", "isError": "bool", "createdAt": _TZ,
    },
    "Feedback": {"id": "text", "stepId": "uuid", "name": "text", "value": "float8", "comment": "text"},
    "Element": {
        "id": "text", "threadId": "uuid", "stepId": "uuid", "metadata": "jsonb", "mime": "text",
        "name": "text", "objectKey": "text", "url": "text", "chainlitKey": "text", "display": "text",
        "size": "text", "language": "text", "page": "int4", "props": "jsonb",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Detection:
    """The shape found, and for an unknown shape what differs from the closest known one."""

    shape: Shape
    differences: tuple[str, ...] = ()
    closest: Shape | None = None


@dataclass(frozen=True)
class Plan:
    """What ``upgrade`` will do to adopt the database, one line per step."""

    shape: Shape
    row_counts: dict[str, int] = field(default_factory=dict)
    steps: tuple[str, ...] = ()


Progress = Callable[[str], None]  # one line about long work: a table being copied, indexes rebuilt


def quiet(line: str) -> None:
    """No progress reporting."""


def read_columns(connection: Connection) -> dict[str, dict[str, str]]:
    """The columns of the five Chainlit tables in the current schema."""
    statement = text(
        "SELECT table_name, column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name IN :tables"
    ).bindparams(bindparam("tables", expanding=True))
    found: dict[str, dict[str, str]] = {}
    for table_name, column_name, udt_name in connection.execute(statement, {"tables": list(TABLES)}):
        found.setdefault(table_name, {})[column_name] = udt_name
    return found


def _table_exists(connection: Connection, name: str) -> bool:
    statement = text("SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:name))")
    return connection.scalar(statement, {"name": name}) is not None


def differences(found: Columns, expected: Columns) -> list[str]:
    """What ``found`` lacks, adds or types differently compared with ``expected``."""
    lines: list[str] = []
    for table in TABLES:
        if table not in found:
            lines.append(f'table "{table}" is missing')
            continue
        have, want = found[table], expected[table]
        lines += [f'column "{table}"."{c}" is missing' for c in want if c not in have]
        lines += [f'column "{table}"."{c}" is not expected' for c in have if c not in want]
        lines += [
            f'column "{table}"."{c}" is {have[c]}, expected {want[c]}'
            for c in want
            if c in have and have[c] != want[c]
        ]
    return lines


def detect(connection: Connection) -> Detection:
    """Which shape the database has; an unknown one comes with what differs from the closest."""
    if _table_exists(connection, VERSION_TABLE):
        return Detection(Shape.MANAGED)
    found = read_columns(connection)
    has_prisma_table = _table_exists(connection, PRISMA_TABLE)
    if not found and not has_prisma_table:
        return Detection(Shape.EMPTY)
    candidates = {
        Shape.PRISMA: differences(found, PRISMA_COLUMNS)
        + ([] if has_prisma_table else [f'table "{PRISMA_TABLE}" is missing']),
        Shape.OPENRAG_INIT: differences(found, OPENRAG_INIT_COLUMNS)
        + ([f'table "{PRISMA_TABLE}" is not expected'] if has_prisma_table else []),
    }
    closest = min(candidates, key=lambda shape: len(candidates[shape]))
    if not candidates[closest]:
        return Detection(closest)
    return Detection(Shape.UNKNOWN, tuple(candidates[closest]), closest)


def refusal(detection: Detection) -> SchemaConflictError:
    """The error for a shape that cannot be adopted, listing what differs."""
    listed = "\n".join(f"  - {line}" for line in detection.differences)
    closest = detection.closest.value if detection.closest else "none"
    return SchemaConflictError(
        "This database has Chainlit tables of a shape this package cannot adopt, so nothing was changed.\n"
        f"Closest known shape: {closest}. Differences:\n{listed}\n"
        "Make the tables match that shape, or point DATABASE_URL at an empty database."
    )


COPIES: dict[Shape, Mapping[str, Copy]] = {Shape.PRISMA: PRISMA_COPY, Shape.OPENRAG_INIT: OPENRAG_INIT_COPY}

_CONVERSIONS: dict[Shape, tuple[str, ...]] = {
    Shape.PRISMA: (
        "timestamps TIMESTAMP(3) (no time zone) are read as UTC and become timestamptz",
        'Step.type: enum "StepType" becomes text',
        'Feedback."threadId" is filled from the rated step',
        'Thread."updatedAt" becomes the last activity: the later of the stored value and the newest step',
        'keep "_prisma_migrations", so that a Prisma deploy does not recreate the tables',
    ),
    Shape.OPENRAG_INIT: (
        "uuid ids become text",
        "User/Thread metadata text becomes a jsonb object "
        '(text that is not a JSON object is kept under "value")',
        "Step input/output jsonb become text (a JSON string gives its text, {} gives nothing)",
        'Thread."updatedAt" is added: the newest step, else "createdAt"',
        'Element and Feedback get "createdAt"/"updatedAt" from their step (Feedback: its end time)',
        'Feedback."threadId" is filled from the rated step',
    ),
}


def plan(connection: Connection, detection: Detection) -> Plan:
    """The adoption steps for an adoptable shape, with the number of rows in each table."""
    if not detection.shape.adoptable:
        return Plan(detection.shape)
    counts = {
        table: int(connection.scalar(text(f'SELECT count(*) FROM "{table}"')) or 0)  # noqa: S608 (constant)
        for table in TABLES
    }
    steps = (
        f"adopt the {detection.shape.value} tables in one transaction (nothing changes if a step fails):",
        f"move the existing tables into schema {SIDE_SCHEMA} and analyze them",
        f"create the revision {TARGET_REVISION} tables (indexes and foreign keys after the copy)",
        *(f'copy "{table}": {counts[table]} rows' for table in TABLES),
        *_CONVERSIONS[detection.shape],
        "check that every table has as many rows as before, then drop the old tables",
    )
    return Plan(detection.shape, counts, steps)


def adopt(
    connection: Connection, adoption: Plan, create_target: Callable[[], None], progress: Progress = quiet
) -> None:
    """Convert the tables of an adoptable shape; ``create_target`` creates revision 0001.

    The old tables are analyzed before they are read. The new ones are filled before their secondary
    indexes and foreign keys exist, then analyzed, then indexed and checked in one pass each: with
    them in place, copying 1,000,000 steps took 17 s instead of 3.4 s (README: adoption figures).
    """
    for table in TABLES:
        connection.execute(text(f'ALTER TABLE "{table}" SET SCHEMA {OLD}'))
        connection.execute(text(f'ANALYZE {OLD}."{table}"'))
    create_target()
    rebuild = _drop_indexes_and_foreign_keys(connection)
    for table in TABLES:
        _copy(connection, table, COPIES[adoption.shape][table], adoption.row_counts[table], progress)
    progress(f"rebuilding {len(rebuild)} indexes and foreign keys")
    for table in TABLES:
        connection.execute(text(f'ANALYZE "{table}"'))
    for statement in rebuild:
        connection.execute(text(statement))
    old_tables = ", ".join(f'{OLD}."{table}"' for table in TABLES)
    connection.execute(text(f"DROP TABLE {old_tables}"))
    connection.execute(text(f"DROP SCHEMA {OLD}"))
    if adoption.shape is Shape.PRISMA:
        connection.execute(text('DROP TYPE "StepType"'))
    logger.info("Adopted the %s tables: %s", adoption.shape.value, adoption.row_counts)


def _copy(connection: Connection, table: str, copy: Copy, expected: int, progress: Progress) -> None:
    """One INSERT ... SELECT for the whole table; refuses a row count other than the one planned."""
    progress(f'copying "{table}": {expected} rows')
    began = time.perf_counter()
    copied = connection.execute(text(copy.insert(table))).rowcount
    if copied != expected:
        raise SchemaOutOfDateError(
            f'Adoption copied {copied} rows of "{table}" instead of {expected}: '
            "nothing was changed. Please report this."
        )
    seconds = time.perf_counter() - began
    progress(
        f'copied "{table}": {copied} rows in {seconds:.1f} s ({copied / max(seconds, 1e-3):,.0f} rows/s)'
    )


# The new tables' secondary indexes, then their foreign keys: (drop, create) statements.
_INDEXES_AND_FOREIGN_KEYS = """
WITH target AS (
    SELECT oid FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relname = ANY(:tables)
)
SELECT 'DROP INDEX ' || i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), 1 AS phase
FROM pg_index i
WHERE i.indrelid IN (SELECT oid FROM target)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype <> 'f')
UNION ALL
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s',
              c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)),
       2 AS phase
FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid IN (SELECT oid FROM target)
ORDER BY phase, 1
"""


def _drop_indexes_and_foreign_keys(connection: Connection) -> list[str]:
    """Drop what slows a bulk insert down; returns the statements that recreate it, in order."""
    rows = connection.execute(text(_INDEXES_AND_FOREIGN_KEYS), {"tables": list(TABLES)}).all()
    for drop, _, _ in reversed(rows):
        connection.execute(text(drop))
    return [create for _, create, _ in rows]


def prepare(connection: Connection, adoption: Plan) -> None:
    """Create the side schema (and, for text metadata, the parsing function) before ``adopt``."""
    connection.execute(text(f"CREATE SCHEMA {OLD}"))
    if adoption.shape is Shape.OPENRAG_INIT:
        connection.execute(text(JSON_OBJECT_FUNCTION))
