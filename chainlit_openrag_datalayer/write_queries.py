"""Write statements: idempotent upserts with their merge rules, and deletes (reads: ``read_queries``).

Builds, never runs. Every write is one statement, so one round trip in autocommit mode: a step
upsert creates its missing thread in the same statement (a data-modifying CTE), which is what
makes Chainlit's racing fire-and-forget writes order-independent.

Two guards sit inside the write statements, so that no race between a check and a write exists:
a stored step, element or feedback never changes thread (or step), whatever id a client reuses; and
a thread listed in ``"DeletedThread"`` is never written again. Guarded writes return one row,
``(threadDeleted, applied)``, so that the caller can tell a refusal from a success.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
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
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, Insert, insert
from sqlalchemy.sql.dml import ReturningDelete, ReturningInsert
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.schema import Table
from sqlalchemy.types import Text

from .schema import UTCDateTime, deleted_thread, element, feedback, step, thread, user

# How long a deleted thread's id is remembered: longer than any retry (WRITE_RETRY_SECONDS) and than
# Chainlit's login lifetime (user_session_timeout, 15 days by default), which bounds a live tab's session.
DELETED_THREAD_RETENTION = timedelta(days=30)


def _typed_params(table: Table, names: list[str]) -> list[BindParameter[Any]]:
    """Parameters typed as their columns, for ``INSERT ... SELECT`` (a SELECT list gives no types)."""
    return [bindparam(name, type_=table.c[name].type) for name in names]


def _thread_deleted(thread_id: ColumnElement[Any]) -> ColumnElement[bool]:
    return exists().where(deleted_thread.c.id == thread_id)


def _guarded(written: ReturningInsert[Any], thread_id: ColumnElement[Any] | None) -> Select[Any]:
    """``(threadDeleted, applied)`` of a guarded write (see the module docstring)."""
    deleted = false() if thread_id is None else _thread_deleted(thread_id)
    done = written.cte("written")
    outcome: list[ColumnElement[Any]] = [
        deleted.label("threadDeleted"),
        exists(select(done.c.id)).label("applied"),
    ]
    return select(*outcome).add_cte(done)


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
def user_upsert(guarded: bool) -> ReturningInsert[Any]:
    """Login writes the user: created once, metadata replaced on every login.

    ``guarded`` (the identity guard): a login whose stable id, at ``identityPath`` in the metadata,
    differs from the stored user's changes nothing and returns no row. Either side without an id passes.
    """
    stmt = insert(user).values(identifier=bindparam("identifier"), metadata=bindparam("metadata"))
    path = bindparam("identityPath", type_=ARRAY(Text))
    stored, given = user.c.metadata.op("#>>")(path), stmt.excluded.metadata.op("#>>")(path)
    return stmt.on_conflict_do_update(
        index_elements=[user.c.identifier],
        set_={"metadata": stmt.excluded.metadata, "updatedAt": func.now()},
        where=or_(stored.is_(None), given.is_(None), stored == given) if guarded else None,
    ).returning(*user.c)


# --- threads -----------------------------------------------------------------------------------


@cache
def thread_upsert() -> Select[Any]:
    """``update_thread``: None leaves a field as stored; metadata merges, ``remove`` keys go.

    A deleted thread is left alone (a disconnecting tab saves its session after the delete).
    """
    names = ["id", "name", "userId", "tags", "metadata"]
    thread_id = bindparam("id", type_=Text)
    rows = select(*_typed_params(thread, names)).where(~_thread_deleted(thread_id))
    stmt = insert(thread).from_select(names, rows)
    merged = thread.c.metadata.op("||")(func.coalesce(stmt.excluded.metadata, cast({}, JSONB)))
    upsert = stmt.on_conflict_do_update(
        index_elements=[thread.c.id],
        set_={
            "name": _keep_unless_null(stmt, "name"),
            # A thread's owner, once set, never changes: no call can move a thread to another user.
            "userId": func.coalesce(thread.c.userId, stmt.excluded.userId),
            "tags": _keep_unless_null(stmt, "tags"),
            "metadata": merged.op("-")(bindparam("remove", type_=ARRAY(Text))),
        },
    )
    return _guarded(upsert.returning(thread.c.id), thread_id)


@cache
def thread_delete() -> Select[Any]:
    """Delete a thread with everything in it; returns the object keys to remove from storage.

    Steps, elements and feedback go by ``ON DELETE CASCADE``; feedback written by Chainlit's own
    layer (no thread id) is removed through its step. The thread's id is remembered in
    ``"DeletedThread"`` (and ids older than ``DELETED_THREAD_RETENTION`` forgotten), so that no
    late write brings the thread back.
    """
    thread_id: BindParameter[str] = bindparam("threadId", type_=Text)
    keys = (
        select(element.c.objectKey)
        .where(element.c.threadId == thread_id, element.c.objectKey.is_not(None))
        .cte("object_keys")
    )
    thread_steps = select(step.c.id).where(step.c.threadId == thread_id)
    orphan_feedback = delete(feedback).where(feedback.c.stepId.in_(thread_steps)).cte("orphan_feedback")
    doomed = delete(thread).where(thread.c.id == thread_id).cte("doomed_thread")
    remembered = (
        insert(deleted_thread)
        .from_select(["id"], select(thread_id))
        .on_conflict_do_nothing(index_elements=[deleted_thread.c.id])
        .cte("remembered")
    )
    forgotten = (
        delete(deleted_thread)
        .where(deleted_thread.c.deletedAt < func.now() - literal(DELETED_THREAD_RETENTION))
        .cte("forgotten")
    )
    return select(keys.c.objectKey).add_cte(orphan_feedback, doomed, remembered, forgotten)


# --- steps -------------------------------------------------------------------------------------

# What a step write carries: every column but "updatedAt", which the database sets (a step's creation
# time is Chainlit's).
_STEP_FIELDS = [column.name for column in step.c if column.name != "updatedAt"]


def _thread_touch(activity_only: bool) -> Insert:
    """Create a write's thread if missing; with ``activity``, also move ``updatedAt`` forward."""
    # INSERT ... SELECT: the step's other parameters ("name", "metadata"...) must not become
    # values of the thread row, as they would in INSERT ... VALUES.
    activity = bindparam("activity", type_=UTCDateTime) if activity_only else func.now()
    thread_id = bindparam("threadId", type_=Text)
    row = select(thread_id, activity).where(~_thread_deleted(thread_id))
    stmt = insert(thread).from_select(["id", "updatedAt"], row)
    if activity_only:
        return stmt.on_conflict_do_update(
            index_elements=[thread.c.id],
            set_={"updatedAt": stmt.excluded.updatedAt},
            where=thread.c.updatedAt < stmt.excluded.updatedAt,
        )
    return stmt.on_conflict_do_nothing(index_elements=[thread.c.id])


def _merged_in_thread(stmt: Insert, set_: dict[str, Any], with_thread: bool, activity: bool) -> Select[Any]:
    """The guarded upsert of a step or element: ``set_`` merged into a stored row of the write's own
    thread only; with a thread, that thread is created if missing (``activity``: see ``_thread_touch``)."""
    table = stmt.table
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_=set_,
        where=table.c.threadId.is_not_distinct_from(stmt.excluded.threadId),
    ).returning(table.c.id)
    if not with_thread:
        return _guarded(upsert, None)
    touched = _thread_touch(activity_only=activity).cte("touched_thread")
    return _guarded(upsert, bindparam("threadId", type_=Text)).add_cte(touched)


def _guarded_insert(
    table: Table, names: list[str], with_thread: bool, values: dict[str, ColumnElement[Any]] | None = None
) -> Insert:
    """``INSERT ... SELECT`` of the write's parameters (or the given ``values``), nothing when its
    thread was deleted."""
    given = values or {}
    rows = select(*(given.get(p.key, p) for p in _typed_params(table, names)))
    if with_thread:
        rows = rows.where(~_thread_deleted(bindparam("threadId", type_=Text)))
    return insert(table).from_select(names, rows)


@cache
def step_upsert(with_thread: bool) -> Select[Any]:
    """``create_step`` and ``update_step``: one idempotent, order-independent merge.

    A step id already stored in another thread is refused, not moved: a client may choose a
    message's id, and would otherwise read another thread's step through its own.
    """
    # A write without a type (a partial update_step) inserts Chainlit's "undefined" and keeps a stored type.
    step_type = bindparam("type", type_=Text)
    stmt = _guarded_insert(step, _STEP_FIELDS, with_thread, {"type": func.coalesce(step_type, "undefined")})
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
        type=func.coalesce(step_type, step.c.type),
        updatedAt=func.now(),
    )
    # A step write is activity: it moves its thread up the sidebar.
    return _merged_in_thread(stmt, set_, with_thread, activity=True)


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

# What an element write carries: every column but the two times, which the database sets.
_ELEMENT_FIELDS = [column.name for column in element.c if column.name not in ("createdAt", "updatedAt")]


@cache
def element_upsert(with_thread: bool) -> Select[Any]:
    """``create_element``: idempotent; a repeated write fills gaps and merges JSON.

    An element id already stored in another thread is refused (Chainlit lets a client choose
    an element's id and thread): its object, type and URL stay the owner's.
    """
    stmt = _guarded_insert(element, _ELEMENT_FIELDS, with_thread)
    set_: dict[str, Any] = {
        name: _keep_unless_null(stmt, name)
        for name in _ELEMENT_FIELDS
        if name not in {"id", "metadata", "extra", "name", "props"}
    }
    set_.update(
        name=_keep_unless_empty(stmt, "name"),
        metadata=_merge_json(stmt, "metadata"),
        # An update carries its full props (CustomElement.update()): replaced, as in Chainlit's layer.
        props=stmt.excluded.props,
        extra=_merge_json(stmt, "extra"),
        updatedAt=func.now(),
    )
    return _merged_in_thread(stmt, set_, with_thread, activity=False)


@cache
def element_delete(with_thread: bool) -> ReturningDelete[Any]:
    stmt = delete(element).where(element.c.id == bindparam("elementId"))
    if with_thread:
        stmt = stmt.where(element.c.threadId == bindparam("threadId"))
    return stmt.returning(element.c.objectKey)


# --- feedback ----------------------------------------------------------------------------------


@cache
def feedback_upsert() -> Select[Any]:
    """Feedback on a step; without an id, the step's existing feedback is updated, not doubled.

    The thread is filled in from the step by a trigger, for Chainlit's built-in layer's writes too.
    A stored feedback never moves to another step, and none is written for a deleted thread (the
    step's, or the one the browser names when the step is not stored yet).
    """
    step_id: BindParameter[str] = bindparam("stepId", type_=Text)
    step_thread = select(step.c.threadId).where(step.c.id == step_id).scalar_subquery()
    thread_id = func.coalesce(step_thread, bindparam("threadId", type_=Text))
    existing_id = (
        select(feedback.c.id)
        .where(feedback.c.stepId == step_id, feedback.c.name == "user_feedback")
        .order_by(feedback.c.updatedAt.desc())
        .limit(1)
        .scalar_subquery()
    )
    row = select(
        func.coalesce(bindparam("id", type_=Text), existing_id, func.gen_random_uuid().cast(Text)),
        step_id,
        literal("user_feedback", Text),
        bindparam("value", type_=feedback.c.value.type),
        bindparam("comment", type_=Text),
    ).where(~_thread_deleted(thread_id))
    stmt = insert(feedback).from_select(["id", "stepId", "name", "value", "comment"], row)
    upsert = stmt.on_conflict_do_update(
        index_elements=[feedback.c.id],
        set_={"value": stmt.excluded.value, "comment": stmt.excluded.comment, "updatedAt": func.now()},
        where=feedback.c.stepId == stmt.excluded.stepId,
    ).returning(feedback.c.id)
    written = upsert.cte("written")
    return select(
        _thread_deleted(thread_id).label("threadDeleted"),
        select(written.c.id).scalar_subquery().label("id"),
    ).add_cte(written)


@cache
def feedback_delete() -> Delete:
    return delete(feedback).where(feedback.c.id == bindparam("feedbackId"))


def text_array(values: Sequence[str]) -> BindParameter[Any]:
    """One ``text[]`` parameter for ``column == any_(...)``: any number of values in one bind, where ``IN``
    needs a parameter each (and asyncpg stops at 32,767)."""
    return bindparam(None, list(values), type_=ARRAY(Text))
