"""Adopt a Chainlit database this package did not create: detect its shape, convert it in one transaction.

Known shapes (see the README, "Migrating from the Prisma schema"):

- ``prisma``: created by the ``chainlit-datalayer`` Prisma migrations (text ids, ``"StepType"`` enum,
  ``TIMESTAMP(3)`` without time zone, a ``_prisma_migrations`` table);
- ``openrag-init``: created by OpenRAG's ``scripts/postgres-init/01-chainlit.sql`` (uuid ids, text
  metadata on User and Thread, jsonb step input/output, no ``Thread."updatedAt"``);
- ``empty``: none of the five tables; ``managed``: this package's version table exists.

Conversion moves the old tables into a side schema, lets revision 0001 create the exact target tables,
copies every row with its conversions, checks the row counts, and drops the old tables. It runs on the
caller's connection, inside the caller's transaction: if anything fails, nothing changes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, text

from .errors import SchemaConflictError, SchemaOutOfDateError
from .schema import VERSION_TABLE

logger = logging.getLogger(__name__)

TARGET_REVISION = "0001"
SIDE_SCHEMA = "chainlit_openrag_adopting"
PRISMA_TABLE = "_prisma_migrations"
TABLES = ("User", "Thread", "Step", "Element", "Feedback")  # parents before children
# Same key as migrations/env.py: adoption and Alembic's upgrade wait on the same lock.
ADVISORY_LOCK_KEY = 0x636C6F72


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


def lock(connection: Connection) -> None:
    """Wait for any other upgrade or adoption; held until the transaction ends."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


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


# --- conversion ------------------------------------------------------------------------------

Copy = Mapping[str, Mapping[str, str]]  # table -> target column -> expression over the old row "o"
_OLD = '"chainlit_openrag_adopting"'  # SIDE_SCHEMA, quoted; written out so that SQL stays literal


def _utc(column: str) -> str:
    """A Prisma ``TIMESTAMP(3)`` (no time zone) read as UTC."""
    return f"(o.\"{column}\" AT TIME ZONE 'UTC')"


def _same(*columns: str) -> dict[str, str]:
    return {column: f'o."{column}"' for column in columns}


def _text_of_jsonb(column: str) -> str:
    """jsonb -> text: a JSON string gives its text; ``{}`` (the column default) gives NULL."""
    value = f'o."{column}"'
    return (
        f"CASE WHEN {value} IS NULL OR {value} = '{{}}'::jsonb THEN NULL "
        f"WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' ELSE {value}::text END"
    )


_STEP_OF_ROW = '(SELECT s."threadId" FROM "chainlit_openrag_adopting"."Step" s WHERE s.id = o."stepId")'
_NEWEST_STEP = (
    '(SELECT max(s."createdAt") FROM "chainlit_openrag_adopting"."Step" s WHERE s."threadId" = o.id)'
)

PRISMA_COPY: Copy = {
    "User": {
        **_same("id", "identifier", "metadata"),
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    },
    "Thread": {
        **_same("id", "name", "metadata", "userId", "tags"),
        "createdAt": _utc("createdAt"),
        "updatedAt": f"GREATEST({_utc('updatedAt')}, {_NEWEST_STEP} AT TIME ZONE 'UTC')",
        "deletedAt": _utc("deletedAt"),
    },
    "Step": {
        **_same("id", "threadId", "parentId", "input", "output", "metadata", "name", "showInput", "isError"),
        "type": 'o."type"::text',
        **{column: _utc(column) for column in ("startTime", "endTime", "createdAt", "updatedAt")},
    },
    "Element": {
        **_same("id", "threadId", "stepId", "metadata", "mime", "name", "objectKey", "url", "chainlitKey"),
        **_same("display", "size", "language", "page", "props"),
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    },
    "Feedback": {
        **_same("id", "stepId", "name", "value", "comment"),
        "threadId": _STEP_OF_ROW,
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    },
}

_JSON_OBJECT_FUNCTION = """
CREATE FUNCTION pg_temp.adopt_json_object(value text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE parsed jsonb;
BEGIN
    IF value IS NULL OR btrim(value) = '' THEN RETURN '{}'::jsonb; END IF;
    parsed := value::jsonb;
    IF jsonb_typeof(parsed) = 'object' THEN RETURN parsed; END IF;
    IF jsonb_typeof(parsed) = 'null' THEN RETURN '{}'::jsonb; END IF;
    RETURN jsonb_build_object('value', parsed);
EXCEPTION WHEN invalid_text_representation THEN
    RETURN jsonb_build_object('value', value);
END $$
"""
_JSON_OF_TEXT = 'pg_temp.adopt_json_object(o."metadata")'
_STEP_TIME = (
    '(SELECT COALESCE(s."createdAt", s."startTime") '
    'FROM "chainlit_openrag_adopting"."Step" s WHERE s.id = o."stepId")'
)
_THREAD_TIME = '(SELECT t."createdAt" FROM "chainlit_openrag_adopting"."Thread" t WHERE t.id = o."threadId")'
_STEP_END = (
    '(SELECT COALESCE(s."endTime", s."createdAt") '
    'FROM "chainlit_openrag_adopting"."Step" s WHERE s.id = o."stepId")'
)
_OPENRAG_STEP_TIME = 'COALESCE(o."createdAt", o."startTime", now())'

OPENRAG_INIT_COPY: Copy = {
    "User": {
        **_same("identifier", "createdAt", "updatedAt"),
        "id": "o.id::text",
        "metadata": _JSON_OF_TEXT,
    },
    "Thread": {
        **_same("name", "tags", "createdAt", "deletedAt"),
        "id": "o.id::text",
        "userId": 'o."userId"::text',
        "metadata": _JSON_OF_TEXT,
        "updatedAt": 'GREATEST(o."createdAt", (SELECT max(COALESCE(s."createdAt", s."startTime")) '
        'FROM "chainlit_openrag_adopting"."Step" s WHERE s."threadId" = o.id))',
    },
    "Step": {
        **_same("name", "startTime", "endTime", "showInput", "isError"),
        "id": "o.id::text",
        "threadId": 'o."threadId"::text',
        "parentId": 'o."parentId"::text',
        "input": _text_of_jsonb("input"),
        "output": _text_of_jsonb("output"),
        "metadata": "COALESCE(o.metadata, '{}'::jsonb)",
        "type": "COALESCE(o.type, 'undefined')",
        "createdAt": _OPENRAG_STEP_TIME,
        "updatedAt": _OPENRAG_STEP_TIME,
    },
    "Element": {
        **_same("id", "mime", "name", "objectKey", "url", "chainlitKey", "display", "size", "language"),
        **_same("page", "props"),
        "threadId": 'o."threadId"::text',
        "stepId": 'o."stepId"::text',
        "metadata": "COALESCE(o.metadata, '{}'::jsonb)",
        "createdAt": f"COALESCE({_STEP_TIME}, {_THREAD_TIME}, now())",
        "updatedAt": f"COALESCE({_STEP_TIME}, {_THREAD_TIME}, now())",
    },
    "Feedback": {
        **_same("id", "name", "value", "comment"),
        "stepId": 'o."stepId"::text',
        "threadId": _STEP_OF_ROW + "::text",
        "createdAt": f"COALESCE({_STEP_END}, now())",
        "updatedAt": f"COALESCE({_STEP_END}, now())",
    },
}

_COPIES: dict[Shape, Copy] = {Shape.PRISMA: PRISMA_COPY, Shape.OPENRAG_INIT: OPENRAG_INIT_COPY}

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


def _insert(table: str, columns: Mapping[str, str]) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(columns.values())
    return f'INSERT INTO "{table}" ({names}) SELECT {values} FROM {_OLD}."{table}" AS o'  # noqa: S608 (constants)


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
        f"move the existing tables into schema {SIDE_SCHEMA}",
        f"create the revision {TARGET_REVISION} tables",
        *(f'copy "{table}": {counts[table]} rows' for table in TABLES),
        *_CONVERSIONS[detection.shape],
        "check that every table has as many rows as before, then drop the old tables",
    )
    return Plan(detection.shape, counts, steps)


def adopt(connection: Connection, adoption: Plan, create_target: Callable[[], None]) -> None:
    """Convert the tables of an adoptable shape; ``create_target`` creates revision 0001."""
    for table in TABLES:
        connection.execute(text(f'ALTER TABLE "{table}" SET SCHEMA {_OLD}'))
    create_target()
    for table in TABLES:
        connection.execute(text(_insert(table, _COPIES[adoption.shape][table])))
    for table in TABLES:
        copied = connection.scalar(text(f'SELECT count(*) FROM "{table}"'))  # noqa: S608 (constant)
        if copied != adoption.row_counts[table]:
            raise SchemaOutOfDateError(
                f'Adoption copied {copied} rows of "{table}" instead of {adoption.row_counts[table]}: '
                "nothing was changed. Please report this."
            )
    old_tables = ", ".join(f'{_OLD}."{table}"' for table in TABLES)
    connection.execute(text(f"DROP TABLE {old_tables}"))
    connection.execute(text(f"DROP SCHEMA {_OLD}"))
    if adoption.shape is Shape.PRISMA:
        connection.execute(text('DROP TYPE "StepType"'))
    logger.info("Adopted the %s tables: %s", adoption.shape.value, adoption.row_counts)


def prepare(connection: Connection, adoption: Plan) -> None:
    """Create the side schema (and, for text metadata, the parsing function) before ``adopt``."""
    connection.execute(text(f"CREATE SCHEMA {_OLD}"))
    if adoption.shape is Shape.OPENRAG_INIT:
        connection.execute(text(_JSON_OBJECT_FUNCTION))
