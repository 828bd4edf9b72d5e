"""The SQL that converts the rows of each adoptable shape: one ``INSERT ... SELECT`` per table.

The old tables sit in the side schema ``chainlit_openrag_adopting``; each SELECT reads one of them as
``o``, plus at most one joined row per join. ``adoption.adopt`` runs these statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Every derived column comes from a join, never from a subquery per row: without statistics (a
# database restored by pg_restore and not analyzed yet) PostgreSQL planned the newest step of each
# thread as a backward scan of the whole "Step_createdAt_idx" per thread, so 1,000,000 steps never
# finished in 600 s. tests/test_adoption_plan.py keeps per-row scans out of these statements.

OLD = '"chainlit_openrag_adopting"'  # adoption.SIDE_SCHEMA, quoted; written out so that SQL stays literal


@dataclass(frozen=True)
class Copy:
    """How one table is copied: target column -> expression over the old row ``o`` and its joins."""

    columns: Mapping[str, str]
    joins: tuple[str, ...] = ()  # LEFT JOINs that match at most one row each

    def select(self, table: str) -> str:
        """The SELECT producing the converted rows of ``table``, in the order of ``columns``."""
        joins = "".join(f" LEFT JOIN {join}" for join in self.joins)
        return f'SELECT {", ".join(self.columns.values())} FROM {OLD}."{table}" AS o{joins}'  # noqa: S608

    def insert(self, table: str) -> str:
        names = ", ".join(f'"{name}"' for name in self.columns)
        return f'INSERT INTO "{table}" ({names}) {self.select(table)}'


def _utc(column: str, row: str = "o") -> str:
    """A Prisma ``TIMESTAMP(3)`` (no time zone) read as UTC."""
    return f"({row}.\"{column}\" AT TIME ZONE 'UTC')"


def _same(*columns: str) -> dict[str, str]:
    return {column: f'o."{column}"' for column in columns}


def _text_of_jsonb(column: str) -> str:
    """jsonb -> text: a JSON string gives its text; ``{}`` (the column default) gives NULL."""
    value = f'o."{column}"'
    return (
        f"CASE WHEN {value} IS NULL OR {value} = '{{}}'::jsonb THEN NULL "
        f"WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' ELSE {value}::text END"
    )


def _newest_step(moment: str) -> str:
    """Join ``newest``: one grouped pass over the old steps, the latest ``moment`` of each thread."""
    return (
        f'(SELECT s."threadId", max({moment}) AS at FROM {OLD}."Step" AS s GROUP BY s."threadId") '  # noqa: S608
        'AS newest ON newest."threadId" = o.id'
    )


_RATED_STEP = f'{OLD}."Step" AS s ON s.id = o."stepId"'  # join ``s``: the step of a feedback/element
_ELEMENT_THREAD = f'{OLD}."Thread" AS t ON t.id = o."threadId"'  # join ``t``: the element's thread

PRISMA_COPY: Mapping[str, Copy] = {
    "User": Copy({
        **_same("id", "identifier", "metadata"),
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    }),
    "Thread": Copy({
        **_same("id", "name", "metadata", "userId", "tags"),
        "createdAt": _utc("createdAt"),
        "updatedAt": f"GREATEST({_utc('updatedAt')}, {_utc('at', 'newest')})",
        "deletedAt": _utc("deletedAt"),
    }, joins=(_newest_step('s."createdAt"'),)),
    "Step": Copy({
        **_same("id", "threadId", "parentId", "input", "output", "metadata", "name", "showInput", "isError"),
        "type": 'o."type"::text',
        **{column: _utc(column) for column in ("startTime", "endTime", "createdAt", "updatedAt")},
    }),
    "Element": Copy({
        **_same("id", "threadId", "stepId", "metadata", "mime", "name", "objectKey", "url", "chainlitKey"),
        **_same("display", "size", "language", "page", "props"),
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    }),
    "Feedback": Copy({
        **_same("id", "stepId", "name", "value", "comment"),
        "threadId": 's."threadId"',
        "createdAt": _utc("createdAt"),
        "updatedAt": _utc("updatedAt"),
    }, joins=(_RATED_STEP,)),
}  # fmt: skip

JSON_OBJECT_FUNCTION = """
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
_OPENRAG_STEP_TIME = 'COALESCE(o."createdAt", o."startTime", now())'
_ELEMENT_TIME = 'COALESCE(s."createdAt", s."startTime", t."createdAt", now())'
_FEEDBACK_TIME = 'COALESCE(s."endTime", s."createdAt", now())'

OPENRAG_INIT_COPY: Mapping[str, Copy] = {
    "User": Copy({
        **_same("identifier", "createdAt", "updatedAt"),
        "id": "o.id::text",
        "metadata": _JSON_OF_TEXT,
    }),
    "Thread": Copy({
        **_same("name", "tags", "createdAt", "deletedAt"),
        "id": "o.id::text",
        "userId": 'o."userId"::text',
        "metadata": _JSON_OF_TEXT,
        "updatedAt": 'GREATEST(o."createdAt", newest.at)',
    }, joins=(_newest_step('COALESCE(s."createdAt", s."startTime")'),)),
    "Step": Copy({
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
    }),
    "Element": Copy({
        **_same("id", "mime", "name", "objectKey", "url", "chainlitKey", "display", "size", "language"),
        **_same("page", "props"),
        "threadId": 'o."threadId"::text',
        "stepId": 'o."stepId"::text',
        "metadata": "COALESCE(o.metadata, '{}'::jsonb)",
        "createdAt": _ELEMENT_TIME,
        "updatedAt": _ELEMENT_TIME,
    }, joins=(_RATED_STEP, _ELEMENT_THREAD)),
    "Feedback": Copy({
        **_same("id", "name", "value", "comment"),
        "stepId": 'o."stepId"::text',
        "threadId": 's."threadId"::text',
        "createdAt": _FEEDBACK_TIME,
        "updatedAt": _FEEDBACK_TIME,
    }, joins=(_RATED_STEP,)),
}  # fmt: skip
