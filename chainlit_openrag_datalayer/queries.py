"""Statement builders: idempotent upserts with their merge rules, keyset pages, search.

Builds, never runs. Every write is one statement, so one round trip in autocommit mode: a step
upsert creates its missing thread in the same statement (a data-modifying CTE), which is what
makes Chainlit's racing fire-and-forget writes order-independent.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, Insert, insert
from sqlalchemy.sql.dml import ReturningDelete, ReturningInsert
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import Text

from .read_queries import THREAD_OWNER
from .schema import UTCDateTime, element, feedback, step, thread, user

MESSAGE_TYPES = ("user_message", "assistant_message")
LIKE_ESCAPE = "\\"


def _params(table_columns: list[str]) -> dict[str, Any]:
    return {name: bindparam(name) for name in table_columns}


def _keep_unless_null(insert_stmt: Insert, name: str) -> ColumnElement[Any]:
    """A write that does not carry a value keeps the stored one."""
    return func.coalesce(insert_stmt.excluded[name], insert_stmt.table.c[name])


def _keep_unless_empty(insert_stmt: Insert, name: str) -> ColumnElement[Any]:
    """A late write with empty text (Chainlit's create after update) keeps the stored text."""
    return func.coalesce(func.nullif(insert_stmt.excluded[name], ""), insert_stmt.table.c[name])


def _merge_json(insert_stmt: Insert, name: str) -> ColumnElement[Any]:
    """JSON objects merge key by key; an empty object changes nothing."""
    stored = func.coalesce(insert_stmt.table.c[name], cast({}, JSONB))
    return stored.op("||")(insert_stmt.excluded[name])


# --- users -------------------------------------------------------------------------------------


@cache
def user_by_identifier() -> Select[Any]:
    return select(user).where(user.c.identifier == bindparam("identifier"))


@cache
def user_upsert() -> ReturningInsert[Any]:
    """Login writes the user: created once, metadata replaced on every login."""
    stmt = insert(user).values(identifier=bindparam("identifier"), metadata=bindparam("metadata"))
    return stmt.on_conflict_do_update(
        index_elements=[user.c.identifier],
        set_={"metadata": stmt.excluded.metadata, "updatedAt": func.now()},
    ).returning(*user.c)


# --- threads -----------------------------------------------------------------------------------


@cache
def thread_upsert() -> Insert:
    """``update_thread``: None leaves a field as stored; metadata merges, ``remove`` keys go."""
    values = _params(["id", "name", "userId", "tags"])
    values["metadata"] = bindparam("metadata", type_=JSONB)
    stmt = insert(thread).values(values)
    merged = thread.c.metadata.op("||")(func.coalesce(stmt.excluded.metadata, cast({}, JSONB)))
    return stmt.on_conflict_do_update(
        index_elements=[thread.c.id],
        set_={
            "name": _keep_unless_null(stmt, "name"),
            # A thread's owner, once set, never changes: no call can move a thread to another user.
            "userId": func.coalesce(thread.c.userId, stmt.excluded.userId),
            "tags": _keep_unless_null(stmt, "tags"),
            "metadata": merged.op("-")(bindparam("remove", type_=ARRAY(Text))),
        },
    )


@cache
def thread_author() -> Select[Any]:
    return (
        select(user.c.identifier)
        .join(thread, thread.c.userId == user.c.id)
        .where(thread.c.id == bindparam("threadId"), thread.c.deletedAt.is_(None))
    )


def escape_like(text: str) -> str:
    """``%``, ``_`` and the escape character itself are matched literally."""
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return f"%{text}%"


@cache
def thread_page(*, with_cursor: bool, with_search: bool, with_feedback: bool) -> Select[Any]:
    """One page of a user's threads, newest activity first, keyset-paginated on (updatedAt, id).

    The cursor is a thread id, looked up among the same user's threads only: a cursor naming
    another user's thread matches nothing and yields an empty page.
    """
    user_id: BindParameter[str] = bindparam("userId")
    stmt = (
        select(thread, THREAD_OWNER)
        .where(thread.c.userId == user_id, thread.c.deletedAt.is_(None))
        .order_by(thread.c.updatedAt.desc(), thread.c.id.desc())
        .limit(bindparam("limit"))
    )
    if with_cursor:
        anchor = thread.alias("anchor")
        anchor_time = (
            select(anchor.c.updatedAt)
            .where(anchor.c.id == bindparam("cursor"), anchor.c.userId == user_id)
            .scalar_subquery()
        )
        stmt = stmt.where(tuple_(thread.c.updatedAt, thread.c.id) < tuple_(anchor_time, bindparam("cursor")))
    if with_search:
        pattern: BindParameter[str] = bindparam("pattern")
        in_messages = exists().where(
            step.c.threadId == thread.c.id,
            # Literal types, not a parameter: the planner must see them to use the partial search index.
            step.c.type.in_([literal_column(f"'{name}'") for name in MESSAGE_TYPES]),
            step.c.output.ilike(pattern, escape=LIKE_ESCAPE),
        )
        stmt = stmt.where(or_(thread.c.name.ilike(pattern, escape=LIKE_ESCAPE), in_messages))
    if with_feedback:
        stmt = stmt.where(
            exists().where(feedback.c.threadId == thread.c.id, feedback.c.value == bindparam("feedback"))
        )
    return stmt


@cache
def thread_delete() -> Select[Any]:
    """Delete a thread with everything in it; returns the object keys to remove from storage.

    Steps, elements and feedback go by ``ON DELETE CASCADE``; feedback written by Chainlit's own
    layer (no thread id) is removed through its step.
    """
    thread_id: BindParameter[str] = bindparam("threadId")
    keys = (
        select(element.c.objectKey)
        .where(element.c.threadId == thread_id, element.c.objectKey.is_not(None))
        .cte("object_keys")
    )
    thread_steps = select(step.c.id).where(step.c.threadId == thread_id)
    orphan_feedback = delete(feedback).where(feedback.c.stepId.in_(thread_steps)).cte("orphan_feedback")
    doomed = delete(thread).where(thread.c.id == thread_id).cte("doomed_thread")
    return select(keys.c.objectKey).add_cte(orphan_feedback, doomed)


# --- steps -------------------------------------------------------------------------------------

_STEP_FIELDS = [
    "id", "threadId", "parentId", "name", "type", "input", "output", "metadata", "showInput",
    "isError", "startTime", "endTime", "createdAt", "command", "modes", "language",
    "defaultOpen", "autoCollapse", "waitForAnswer", "tags", "generation", "icon", "extra",
]  # fmt: skip


def _thread_touch(activity_only: bool) -> Insert:
    """Create a write's thread if missing; with ``activity``, also move ``updatedAt`` forward."""
    # INSERT ... SELECT: the step's other parameters ("name", "metadata"...) must not become
    # values of the thread row, as they would in INSERT ... VALUES.
    activity = bindparam("activity", type_=UTCDateTime) if activity_only else func.now()
    row = select(bindparam("threadId", type_=Text), activity)
    stmt = insert(thread).from_select(["id", "updatedAt"], row)
    if activity_only:
        return stmt.on_conflict_do_update(
            index_elements=[thread.c.id],
            set_={"updatedAt": stmt.excluded.updatedAt},
            where=thread.c.updatedAt < stmt.excluded.updatedAt,
        )
    return stmt.on_conflict_do_nothing(index_elements=[thread.c.id])


@cache
def step_upsert(with_thread: bool) -> Insert:
    """``create_step`` and ``update_step``: one idempotent, order-independent merge."""
    stmt = insert(step).values(_params(_STEP_FIELDS))
    set_: dict[str, Any] = {
        name: _keep_unless_null(stmt, name)
        for name in _STEP_FIELDS
        if name
        not in {"id", "input", "output", "metadata", "extra", "isError", "startTime", "createdAt", "endTime"}
    }
    set_.update(
        input=_keep_unless_empty(stmt, "input"),
        output=_keep_unless_empty(stmt, "output"),
        metadata=_merge_json(stmt, "metadata"),
        extra=_merge_json(stmt, "extra"),
        # An error is a fact once seen: a late create with isError=False does not clear it.
        isError=func.coalesce(step.c.isError, False).op("OR")(func.coalesce(stmt.excluded.isError, False)),
        # Times: the earliest start and creation, the latest end, whatever order writes land in.
        createdAt=func.least(step.c.createdAt, stmt.excluded.createdAt),
        startTime=func.least(step.c.startTime, stmt.excluded.startTime),
        endTime=func.greatest(step.c.endTime, stmt.excluded.endTime),
        updatedAt=func.now(),
    )
    upsert = stmt.on_conflict_do_update(index_elements=[step.c.id], set_=set_)
    if with_thread:
        upsert = upsert.add_cte(_thread_touch(activity_only=True).cte("touched_thread"))
    return upsert


@cache
def step_delete() -> Select[Any]:
    """Delete a step, its descendants, their elements and feedback; returns object keys."""
    doomed = select(step.c.id).where(step.c.id == bindparam("stepId")).cte("doomed", recursive=True)
    doomed = doomed.union(select(step.c.id).join(doomed, step.c.parentId == doomed.c.id))
    doomed_ids = select(doomed.c.id)
    elements = (
        delete(element)
        .where(element.c.stepId.in_(doomed_ids))
        .returning(element.c.objectKey)
        .cte("doomed_elements")
    )
    feedbacks = delete(feedback).where(feedback.c.stepId.in_(doomed_ids)).cte("doomed_feedback")
    steps = delete(step).where(step.c.id.in_(doomed_ids)).cte("doomed_steps")
    return select(elements.c.objectKey).where(elements.c.objectKey.is_not(None)).add_cte(feedbacks, steps)


# --- elements ----------------------------------------------------------------------------------

_ELEMENT_FIELDS = [
    "id", "threadId", "stepId", "metadata", "mime", "name", "objectKey", "url", "chainlitKey",
    "display", "size", "language", "page", "props", "autoPlay", "playerConfig", "extra",
]  # fmt: skip


@cache
def element_upsert(with_thread: bool) -> Insert:
    """``create_element``: idempotent; a repeated write fills gaps and merges JSON."""
    stmt = insert(element).values(_params(_ELEMENT_FIELDS))
    set_: dict[str, Any] = {
        name: _keep_unless_null(stmt, name)
        for name in _ELEMENT_FIELDS
        if name not in {"id", "metadata", "extra", "name", "props"}
    }
    set_.update(
        name=_keep_unless_empty(stmt, "name"),
        metadata=_merge_json(stmt, "metadata"),
        props=_merge_json(stmt, "props"),
        extra=_merge_json(stmt, "extra"),
        updatedAt=func.now(),
    )
    upsert = stmt.on_conflict_do_update(index_elements=[element.c.id], set_=set_)
    if with_thread:
        upsert = upsert.add_cte(_thread_touch(activity_only=False).cte("touched_thread"))
    return upsert


@cache
def element_by_id() -> Select[Any]:
    """One element of a thread, with the thread owner's identifier (served URLs are bound to it)."""
    owner = (
        select(user.c.identifier)
        .join(thread, thread.c.userId == user.c.id)
        .where(thread.c.id == element.c.threadId)
        .scalar_subquery()
        .label("userIdentifier")
    )
    return select(element, owner).where(
        element.c.id == bindparam("elementId"), element.c.threadId == bindparam("threadId")
    )


@cache
def element_delete(with_thread: bool) -> ReturningDelete[Any]:
    stmt = delete(element).where(element.c.id == bindparam("elementId"))
    if with_thread:
        stmt = stmt.where(element.c.threadId == bindparam("threadId"))
    return stmt.returning(element.c.objectKey)


# --- feedback ----------------------------------------------------------------------------------


@cache
def feedback_upsert() -> ReturningInsert[Any]:
    """Feedback on a step; without an id, the step's existing feedback is updated, not doubled.

    The thread is filled in from the step by a trigger, for Chainlit's built-in layer's writes too.
    """
    step_id: BindParameter[str] = bindparam("stepId")
    existing_id = (
        select(feedback.c.id)
        .where(feedback.c.stepId == step_id, feedback.c.name == "user_feedback")
        .order_by(feedback.c.updatedAt.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = insert(feedback).values(
        id=func.coalesce(bindparam("id", type_=Text), existing_id, func.gen_random_uuid().cast(Text)),
        stepId=step_id,
        name="user_feedback",
        value=bindparam("value"),
        comment=bindparam("comment"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[feedback.c.id],
        set_={
            "value": stmt.excluded.value,
            "comment": stmt.excluded.comment,
            "stepId": stmt.excluded.stepId,
            "updatedAt": func.now(),
        },
    ).returning(feedback.c.id)


@cache
def feedback_delete() -> Delete:
    return delete(feedback).where(feedback.c.id == bindparam("feedbackId"))
