"""Pure functions between Chainlit's dicts (and Element objects) and table rows; no I/O (normalisation:
``normalise.py``)."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import uuid4

from chainlit.element import ElementDict
from chainlit.step import StepDict
from chainlit.types import FeedbackDict, ThreadDict
from chainlit.user import PersistedUser
from sqlalchemy import Boolean, Integer, Table, Text
from sqlalchemy.types import TypeEngine

from .normalise import (
    clean_text,
    iso_utc,
    json_key,
    json_object,
    optional_bool,
    optional_int32,
    optional_text,
    parse_timestamp,
    redact,
    redact_url,
    text_list,
)
from .schema import Row
from .schema import element as element_table
from .schema import step as step_table

if TYPE_CHECKING:
    from chainlit.element import Element

THREAD_NAME_MAX = 255
Coercer = Callable[[object], Any]

# Keys with a rule of their own below ("start" and "end" are stored as "startTime" and "endTime"); keys
# not persisted: "streaming" is live UI state, "feedback" has its own table.
_STEP_SPECIAL = {"input", "output", "metadata", "isError", "showInput", "createdAt", "start", "end"}
_STEP_IGNORED = {"streaming", "feedback"}
# StepDict keys stored as given in the column of the same name: every step column without a rule of its own
# (the rest of a step dict goes to "extra").
_STEP_COLUMNS = {
    column.name: column.name
    for column in step_table.c
    if column.name not in {*_STEP_SPECIAL, "startTime", "endTime", "updatedAt", "extra"}
}
# Returned as stored, None included: Chainlit's own live steps send these keys with None too.
_NULLABLE_STEP_KEYS = [
    key for key in _STEP_COLUMNS if key not in {"id", "threadId", "parentId", "name", "type"}
]

# "path" is a local file of the process; "objectKey" is chosen by the layer; "type" lives in metadata.
_ELEMENT_SPECIAL = {"type", "path", "objectKey"}
# ElementDict keys -> the element columns storing them as given: every column without a rule of its own
# ("forId" is the element's step).
_ELEMENT_COLUMNS = {
    "forId" if column.name == "stepId" else column.name: column.name
    for column in element_table.c
    if column.name not in {"objectKey", "metadata", "extra", "createdAt", "updatedAt"}
}


# --- users -----------------------------------------------------------------------------------


def user_from_row(row: Row) -> PersistedUser:
    return PersistedUser(
        id=row["id"],
        identifier=row["identifier"],
        createdAt=iso_utc(row["createdAt"]),
        metadata=row["metadata"] or {},
    )


# --- steps -----------------------------------------------------------------------------------


def show_input_to_text(value: object) -> str | None:
    """Chainlit's ``showInput`` is ``bool | str``; stored as text the way Chainlit's own layer does."""
    if value is None:
        return None
    return str(value) if isinstance(value, bool) else clean_text(str(value))


def show_input_from_text(value: str | None) -> bool | str | None:
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    return value


def step_params(step: Mapping[str, Any], redact_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Bind parameters for the step upsert: every column, None meaning "keep what is stored"."""
    params, extra = _columns_and_extra(_STEP_COERCERS, _STEP_COLUMNS, step, _STEP_SPECIAL | _STEP_IGNORED)
    # A missing or unparseable creation time becomes "now"; merges keep the earliest one seen.
    created = parse_timestamp(step.get("createdAt")) or datetime.now(timezone.utc)
    params.update(
        id=params["id"] or str(uuid4()),  # a step without id is kept, under a new one
        threadId=params["threadId"] or None,  # "" names no thread
        tags=text_list(params["tags"]),
        input=optional_text(step.get("input")),
        output=optional_text(step.get("output")),
        metadata=redact(json_object(step.get("metadata")), redact_keys),
        extra=redact(extra, redact_keys),
        generation=redact(params["generation"], redact_keys),
        modes=redact(params["modes"], redact_keys),
        isError=optional_bool(step.get("isError")),
        showInput=show_input_to_text(step.get("showInput")),
        createdAt=created,
        startTime=parse_timestamp(step.get("start")),
        endTime=parse_timestamp(step.get("end")),
        activity=created,
    )
    return params


def step_from_row(row: Row) -> StepDict:
    """A StepDict with every key Chainlit defines and every unknown one stored; get_thread's hot loop.

    Expects the rows of ``read_queries`` (times already ISO text).
    """
    data = dict(row)
    step: dict[str, Any] = dict(data["extra"]) if data["extra"] else {}
    for key in _NULLABLE_STEP_KEYS:
        step[key] = data[key]
    step["streaming"] = False  # a stored step is done streaming
    step["id"] = data["id"]
    step["threadId"] = data["threadId"] or ""
    step["parentId"] = data["parentId"]
    step["name"] = data["name"] or ""
    step["type"] = data["type"]
    step["input"] = data["input"] or ""
    step["output"] = data["output"] or ""
    step["metadata"] = data["metadata"] or {}
    step["isError"] = bool(data["isError"])
    step["showInput"] = show_input_from_text(data["showInput"])
    step["createdAt"] = data["createdAt"]  # ISO text already: the read queries format times
    step["start"] = data["startTime"]
    step["end"] = data["endTime"]
    step["feedback"] = feedback_from_row(data)
    return cast(StepDict, step)


def feedback_from_row(row: Row) -> FeedbackDict | None:
    if row.get("feedbackId") is None:
        return None
    return FeedbackDict(
        forId=row["id"],
        id=row["feedbackId"],
        value=1 if row["feedbackValue"] >= 0.5 else 0,
        comment=row["feedbackComment"],
    )


def parents_first(steps: Sequence[StepDict]) -> list[StepDict]:
    """Keep the given (creation) order, but move each parent before its children.

    Iterative: a client chooses ``parentId``, so a chain may be any depth (a recursive walk raised
    ``RecursionError`` past ~1,000 levels); a cycle is cut where it closes.
    """
    if _parents_already_first(steps):  # the usual case: parents are created first
        return list(steps)
    by_id = {step["id"]: step for step in steps}
    ordered: list[StepDict] = []
    placed: set[str] = set()
    for step in steps:
        chain: list[StepDict] = []  # the step and its ancestors not placed yet, child first
        in_chain: set[str] = set()
        current: StepDict | None = step
        while current is not None and current["id"] not in placed and current["id"] not in in_chain:
            chain.append(current)
            in_chain.add(current["id"])
            current = by_id.get(current.get("parentId") or "")
        for ancestor in reversed(chain):
            placed.add(ancestor["id"])
            ordered.append(ancestor)
    return ordered


def _parents_already_first(steps: Sequence[StepDict]) -> bool:
    ids = {step["id"] for step in steps}
    seen: set[str] = set()
    for step in steps:
        parent = step.get("parentId")
        if parent and parent in ids and parent not in seen:
            return False
        seen.add(step["id"])
    return True


# --- elements --------------------------------------------------------------------------------


def element_params(
    element: Mapping[str, Any], object_key: str | None, redact_keys: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Bind parameters for the element upsert, from ``Element.to_dict()``."""
    params, extra = _columns_and_extra(_ELEMENT_COERCERS, _ELEMENT_COLUMNS, element, _ELEMENT_SPECIAL)
    params.update(
        threadId=params["threadId"] or None,  # "" (Chainlit's element endpoints' default) names no thread
        name=params["name"] or "",
        objectKey=object_key,
        url=redact_url(params["url"], redact_keys),
        # Chainlit's own layer reads props with json.loads: never leave it NULL.
        props=redact(json_object(params["props"]), redact_keys),
        playerConfig=redact(params["playerConfig"], redact_keys),
        metadata={"type": optional_text(element.get("type")) or "file"},
        extra=redact(extra, redact_keys),
    )
    return params


def _columns_and_extra(
    coercers: Mapping[str, Coercer], columns: Mapping[str, str], given: Mapping[str, Any], special: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values of ``given`` that have a column (every column present, None when not given), each made
    that column's type, and the others but ``special`` ones, for ``extra``."""
    params: dict[str, Any] = {column: None for column in columns.values()}
    extra: dict[str, Any] = {}
    for key, value in given.items():
        if key in columns:
            column = columns[key]
            params[column] = coercers[column](value)
        elif key not in special:
            extra[json_key(key)] = value
    return params, extra


def _coercers(table: Table) -> dict[str, Coercer]:
    """Per column, how a client's value is stored: text, boolean and integer columns as ``normalise`` makes
    them, any other column as given. Built once per table, not per write."""
    return {column.name: _coercer(column.type) for column in table.c}


def _coercer(column_type: TypeEngine[Any]) -> Coercer:
    if isinstance(column_type, Text):
        return optional_text
    if isinstance(column_type, Boolean):
        return optional_bool
    if isinstance(column_type, Integer):
        return optional_int32
    return _as_given


def _as_given(value: object) -> Any:
    return value


_STEP_COERCERS = _coercers(step_table)
_ELEMENT_COERCERS = _coercers(element_table)


def element_mime(element: Element) -> str:
    """The type the element gives, else the one its name suggests, else ``application/octet-stream``."""
    name_type = mimetypes.guess_type(element.name or "")[0]
    return element.mime or name_type or "application/octet-stream"


def element_source(element: Element) -> bytes | Path | None:
    """What to upload: the file at ``path`` (streamed), else ``content``; None for URL-only elements."""
    if element.path:
        return Path(element.path)
    content = element.content
    if isinstance(content, str):
        return clean_text(content).encode("utf-8")
    return bytes(content) if content else None


def held_bytes(element: Element) -> int:
    """Memory a pending element write holds: its content (text twice: as text and as UTF-8 to upload);
    a file on disk is streamed, so only its row."""
    content = None if element.path else element.content
    if isinstance(content, str):
        return 2 * len(content)
    return len(content) if isinstance(content, bytes | bytearray) else 0


def element_from_row(row: Row, url: str | None) -> ElementDict:
    element: dict[str, Any] = dict(row["extra"] or {})
    for key, column in _ELEMENT_COLUMNS.items():
        element[key] = row[column]
    element.update(
        type=element_type(row),
        objectKey=row["objectKey"],
        url=url,
    )
    return cast(ElementDict, element)


# --- threads ---------------------------------------------------------------------------------


def thread_from_row(
    row: Row,
    steps: list[StepDict],
    elements: list[ElementDict],
    created_at: datetime | None = None,
) -> ThreadDict:
    return ThreadDict(
        id=row["id"],
        createdAt=iso_utc(created_at or row["createdAt"]),
        name=row["name"],
        userId=row["userId"],
        userIdentifier=row["userIdentifier"],
        tags=list(row["tags"] or []),
        metadata=row["metadata"] or {},
        steps=steps,
        elements=elements,
    )


def thread_name(name: object, metadata: Mapping[str, Any] | None) -> str | None:
    """The name given, else ``metadata["name"]`` (an app's ``cl.user_session["name"]``), as Chainlit's
    built-in and SQLAlchemy layers take it; cut to ``THREAD_NAME_MAX`` characters."""
    if name is None and metadata:
        name = metadata.get("name")
    text = optional_text(name)
    return None if text is None else text[:THREAD_NAME_MAX]


def metadata_patch(
    metadata: Mapping[str, Any] | None, redact_keys: frozenset[str] = frozenset()
) -> tuple[dict[str, Any] | None, list[str]]:
    """Split an ``update_thread`` metadata argument into keys to set and keys to remove.

    A None value removes its key; so does a secret (left out of ``to_set``), so that no older copy
    of it (an earlier version's placeholder, a value Chainlit's own layer stored) outlives the write.
    """
    if metadata is None:
        return None, []
    to_set = redact({k: v for k, v in metadata.items() if v is not None}, redact_keys)
    to_remove = [key for key in map(json_key, metadata) if key not in to_set]
    return to_set, to_remove


def element_type(row: Row) -> str:
    """Chainlit's element type, kept in the row's metadata (the Prisma schema has no column for it)."""
    kind: str = (row["metadata"] or {}).get("type", "file")
    return kind
