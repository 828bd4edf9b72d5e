"""Read statements whose rows PostgreSQL assembles as Chainlit's own dicts (JSON), in one round trip.

Building each StepDict in Python (datetime formatting, ~20 keys) cost ~10 µs per step; a thread of
200 steps spent more time there than in the database. Here PostgreSQL builds the JSON and the layer
only decodes it. Key names, UTC ``...Z`` timestamps and the ``showInput`` bool/str rule match
``convert.py``'s write side; the conformance suite checks every field.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from .schema import element, feedback, step, thread, user

ISO_UTC: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'""")
# StepDict keys sent only when set (Chainlit's defaults apply otherwise).
_OPTIONAL_STEP_KEYS = (
    "command", "modes", "waitForAnswer", "tags", "generation",
    "defaultOpen", "autoCollapse", "language", "icon",
)  # fmt: skip

THREAD_OWNER = (
    select(user.c.identifier).where(user.c.id == thread.c.userId).scalar_subquery().label("userIdentifier")
)


def _object(**pairs: Any) -> ColumnElement[Any]:
    """``jsonb_build_object`` with the key names inlined as SQL literals."""
    arguments: list[Any] = []
    for key, value in pairs.items():
        arguments += [literal_column(f"'{key}'"), value]
    return func.jsonb_build_object(*arguments)


def _iso(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.to_char(func.timezone(literal_column("'UTC'"), column), ISO_UTC)


def _show_input() -> ColumnElement[Any]:
    """Stored as text the way Chainlit's own layer stores it: "True"/"False" are the booleans."""
    is_true = or_(step.c.showInput == literal_column("'True'"), step.c.showInput == literal_column("'true'"))
    is_false = or_(
        step.c.showInput == literal_column("'False'"), step.c.showInput == literal_column("'false'")
    )
    return case(
        (is_true, func.to_jsonb(true())),
        (is_false, func.to_jsonb(false())),
        else_=func.to_jsonb(step.c.showInput),
    )


def _step_document(latest_feedback: Any) -> ColumnElement[Any]:
    """A StepDict: unknown keys kept from ``extra``, then the optional keys that are set, then the rest."""
    optional: ColumnElement[Any] = cast(literal_column("'{}'"), JSONB)
    for key in _OPTIONAL_STEP_KEYS:  # one by one: jsonb_strip_nulls would also strip nested nulls
        optional = optional.op("||")(
            case(
                (step.c[key].is_(None), cast(literal_column("'{}'"), JSONB)),
                else_=_object(**{key: step.c[key]}),
            )
        )
    feedback_document: ColumnElement[Any] = case(
        (latest_feedback.c.id.is_(None), cast(literal_column("'null'"), JSONB)),
        else_=_object(
            forId=step.c.id,
            id=latest_feedback.c.id,
            value=case((latest_feedback.c.value >= 0.5, 1), else_=0),
            comment=latest_feedback.c.comment,
        ),
    )
    core = _object(
        id=step.c.id,
        threadId=func.coalesce(step.c.threadId, ""),
        parentId=step.c.parentId,
        name=func.coalesce(step.c.name, ""),
        type=step.c.type,
        input=func.coalesce(step.c.input, ""),
        output=func.coalesce(step.c.output, ""),
        metadata=step.c.metadata,
        isError=func.coalesce(step.c.isError, False),
        showInput=_show_input(),
        createdAt=_iso(step.c.createdAt),
        start=_iso(step.c.startTime),
        end=_iso(step.c.endTime),
    )
    return step.c.extra.op("||")(optional).op("||")(core).op("||")(_object(feedback=feedback_document))


def _latest_feedback() -> Any:
    return (
        select(feedback.c.id, feedback.c.value, feedback.c.comment)
        .where(feedback.c.stepId == step.c.id)
        .order_by(feedback.c.updatedAt.desc())
        .limit(1)
        .lateral("latest_feedback")
    )


def _steps_json(*where: ColumnElement[bool], newest_first: bool = False) -> Select[Any]:
    latest = _latest_feedback()
    order = (step.c.createdAt.desc(),) if newest_first else (step.c.createdAt, step.c.startTime, step.c.id)
    documents = func.json_agg(aggregate_order_by(_step_document(latest), *order))
    return (
        select(func.coalesce(documents, literal_column("'[]'::json")).label("steps"))
        .select_from(step)
        .outerjoin(latest, true())
        .where(*where)
    )


@cache
def thread_with_contents() -> Select[Any]:
    """A thread with its owner, its steps (creation order, with their latest feedback) and its elements."""
    steps = _steps_json(step.c.threadId == thread.c.id).scalar_subquery().label("steps")
    elements = (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(func.row_to_json(literal_column('"Element"')), element.c.createdAt)
                ),
                literal_column("'[]'::json"),
            )
        )
        .where(element.c.threadId == thread.c.id)
        .scalar_subquery()
        .label("elements")
    )
    return select(thread, THREAD_OWNER, steps, elements).where(
        thread.c.id == bindparam("threadId"), thread.c.deletedAt.is_(None)
    )


@cache
def favorite_steps() -> Select[Any]:
    """The user's steps marked favorite, newest first, as one JSON list."""
    users_thread = select(thread.c.id).where(thread.c.userId == bindparam("userId"))
    return _steps_json(
        step.c.threadId.in_(users_thread),
        step.c.metadata.op("@>")(cast({"favorite": True}, JSONB)),
        newest_first=True,
    )
