"""Pure conversions (no services): Chainlit's dicts to bind parameters and stored rows back to dicts.

A stored row is made here from the bind parameters the way PostgreSQL returns them (the read queries give
times as ISO text), so each round trip runs without a database; the conformance suite runs the same
shapes through PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
from chainlit.step import StepDict

from chainlit_openrag_datalayer.convert import (
    element_from_row,
    element_params,
    feedback_from_row,
    metadata_patch,
    parents_first,
    step_from_row,
    step_params,
    thread_from_row,
    user_from_row,
)
from chainlit_openrag_datalayer.normalise import iso_utc
from chainlit_openrag_datalayer.schema import element as element_table
from chainlit_openrag_datalayer.schema import step as step_table
from tests.conformance.factories import full_step_dict, message_dict, new_id, text_element

KEY = "threads/t/files/e"
NO_FEEDBACK = {"feedbackId": None, "feedbackValue": None, "feedbackComment": None}


def stored_step(params: dict[str, Any], **feedback: Any) -> dict[str, Any]:
    """The row the read queries return for a step upserted with ``params``: every column, times as text."""
    row = {column.name: params[column.name] for column in step_table.c if column.name != "updatedAt"}
    for name in ("createdAt", "startTime", "endTime"):
        row[name] = row[name] and iso_utc(row[name])
    return {**row, **NO_FEEDBACK, **feedback}


def stored_element(params: dict[str, Any]) -> dict[str, Any]:
    return {column.name: params.get(column.name) for column in element_table.c}


def chain(depth: int) -> list[StepDict]:
    """Steps 0..depth-1, each the parent of the next, listed children first (as a client can write them)."""
    steps = [{"id": f"s{i}", "parentId": f"s{i - 1}" if i else None} for i in range(depth)]
    return cast(list[StepDict], steps[::-1])


def test_a_chain_of_any_depth_comes_out_parents_first() -> None:
    """100,000 levels (a recursive walk failed past ~1,000): each step after its parent, each once."""
    ordered = parents_first(chain(100_000))

    assert [step["id"] for step in ordered] == [f"s{i}" for i in range(100_000)]


def test_a_cycle_is_cut_and_every_step_kept_once() -> None:
    """a -> b -> c -> a: all three come out once, whatever the client wrote."""
    steps = cast(
        list[StepDict],
        [{"id": "a", "parentId": "c"}, {"id": "b", "parentId": "a"}, {"id": "c", "parentId": "b"}],
    )

    assert sorted(step["id"] for step in parents_first(steps)) == ["a", "b", "c"]


def test_creation_order_is_kept_where_parents_allow() -> None:
    """Siblings keep their order; a child listed before its parent moves after it."""
    steps = cast(
        list[StepDict],
        [
            {"id": "child", "parentId": "root"},
            {"id": "other"},
            {"id": "root"},
            {"id": "late", "parentId": "root"},
        ],
    )

    assert [step["id"] for step in parents_first(steps)] == ["root", "child", "other", "late"]


# --- steps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("show_input", [True, False, "json", "python"])
def test_a_full_step_comes_back_as_sent(show_input: bool | str) -> None:
    """Every StepDict key Chainlit sends, generation and nested metadata included; no feedback yet."""
    sent = full_step_dict(new_id(), show_input=show_input)
    assert step_from_row(stored_step(step_params(sent))) == {**sent, "feedback": None}


@pytest.mark.usefixtures("chainlit_context")  # cl.Message needs one
def test_a_message_comes_back_as_sent() -> None:
    """The keys a message does not send come back empty (None, as Chainlit's own live steps send them)."""
    sent: dict[str, Any] = dict(message_dict(new_id(), "hello", type="user_message"))
    back: dict[str, Any] = dict(step_from_row(stored_step(step_params(sent))))
    assert {key: back[key] for key in sent} == sent
    assert {back[key] for key in back.keys() - sent.keys()} <= {None, ""}


@pytest.mark.usefixtures("chainlit_context")  # cl.Message needs one
def test_unknown_step_keys_are_kept_and_live_state_is_not() -> None:
    """A key a newer Chainlit sends comes back; "streaming" is live UI state, stored steps are done."""
    sent = {**message_dict(new_id(), "hi"), "futureKey": {"x": [1]}, "streaming": True}
    params = step_params(sent)
    assert params["extra"] == {"futureKey": {"x": [1]}}
    back = step_from_row(stored_step(params))
    assert back["futureKey"] == {"x": [1]} and back["streaming"] is False  # type: ignore[typeddict-item]


def test_a_bare_step_gets_an_id_a_creation_time_and_no_thread() -> None:
    before = datetime.now(timezone.utc)
    params = step_params({"threadId": "", "createdAt": "yesterday", "start": "garbage", "type": "tool"})
    assert params["id"] and params["threadId"] is None
    assert before <= params["createdAt"] <= datetime.now(timezone.utc)
    assert params["activity"] == params["createdAt"] and params["startTime"] is None


def test_step_values_are_made_the_column_types() -> None:
    """Clients send anything: text columns get text, booleans are read as documented, times become UTC."""
    params = step_params(
        {
            "id": 7, "name": "a\x00b", "isError": "yes", "showInput": True, "language": ["py"],
            "defaultOpen": "off", "tags": "one", "input": {"q": 1},
            "createdAt": "2024-05-01T12:00:00+02:00", "end": "2024-05-01T10:00:01Z",
        }
    )  # fmt: skip
    assert (params["id"], params["name"], params["language"]) == ("7", "a\ufffdb", '["py"]')
    assert (params["isError"], params["showInput"], params["defaultOpen"]) == (True, "True", False)
    assert (params["tags"], params["input"]) == (["one"], '{"q": 1}')
    assert params["createdAt"] == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert params["endTime"] == datetime(2024, 5, 1, 10, 0, 1, tzinfo=timezone.utc)


def test_step_secrets_are_left_out_of_every_json_column() -> None:
    sent = {
        "id": "s", "type": "llm", "metadata": {"api_key": "k", "kept": 1},
        "generation": {"token": "t", "n": 2}, "modes": {"password": "p", "mode": "fast"},
        "unknown": {"authorization": "Bearer x", "ok": True},
    }  # fmt: skip
    params = step_params(sent)
    assert (params["metadata"], params["generation"]) == ({"kept": 1}, {"n": 2})
    assert (params["modes"], params["extra"]) == ({"mode": "fast"}, {"unknown": {"ok": True}})


@pytest.mark.parametrize(("value", "shown"), [(1.0, 1), (0.5, 1), (0.49, 0), (0.0, 0)])
def test_feedback_reads_as_thumbs_up_from_one_half(value: float, shown: int) -> None:
    row = {"id": "s", "feedbackId": "f", "feedbackValue": value, "feedbackComment": "c"}
    assert feedback_from_row(row) == {"forId": "s", "id": "f", "value": shown, "comment": "c"}


def test_a_step_without_feedback_has_none() -> None:
    assert feedback_from_row({"id": "s", **NO_FEEDBACK}) is None


# --- elements --------------------------------------------------------------------------------


def test_an_element_comes_back_as_sent_with_its_key_and_url() -> None:
    sent = text_element(new_id(), new_id()).to_dict()
    params = element_params(sent, KEY)
    back = element_from_row(stored_element(params), "https://files/e")
    assert back == {**sent, "objectKey": KEY, "url": "https://files/e", "props": {}}


def test_element_type_path_and_unknown_keys() -> None:
    """The type lives in metadata (default "file"), a local path is not stored, an unknown key is kept."""
    params = element_params({"id": "e", "threadId": "", "path": "/tmp/x", "new": 1, "name": None}, None)
    assert (params["metadata"], params["extra"], params["threadId"], params["name"]) == (
        {"type": "file"}, {"new": 1}, None, "",
    )  # fmt: skip
    back = element_from_row(stored_element(params), None)
    assert back["type"] == "file" and "path" not in back and back["new"] == 1  # type: ignore[typeddict-item]


def test_element_urls_and_props_lose_their_secrets() -> None:
    sent = {"id": "e", "url": "https://h/doc?token=t&page=2", "props": {"secret": "x", "title": "T"}}
    params = element_params(sent, None)
    assert (params["url"], params["props"]) == ("https://h/doc?page=2", {"title": "T"})


# --- users and threads -----------------------------------------------------------------------

UTC_NOON = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def test_a_user_row_reads_as_a_persisted_user() -> None:
    user = user_from_row({"id": "u", "identifier": "alice", "createdAt": UTC_NOON, "metadata": None})
    assert (user.id, user.identifier, user.createdAt, user.metadata) == (
        "u", "alice", "2024-05-01T12:00:00.000000Z", {},
    )  # fmt: skip


def test_a_thread_row_reads_as_a_thread_dict() -> None:
    row = {"id": "t", "createdAt": UTC_NOON, "name": None, "userId": None, "userIdentifier": None}
    thread = thread_from_row({**row, "tags": None, "metadata": None}, [], [])
    empty: dict[str, Any] = {"tags": [], "metadata": {}, "steps": [], "elements": []}
    assert thread == {**row, "createdAt": "2024-05-01T12:00:00.000000Z", **empty}


def test_list_threads_shows_the_last_activity_as_created_at() -> None:
    row = {"id": "t", "createdAt": UTC_NOON, "name": "n", "userId": "u", "userIdentifier": "a", "tags": ["x"],
           "metadata": {"k": 1}}  # fmt: skip
    later = UTC_NOON + timedelta(days=1, hours=2)
    assert thread_from_row(row, [], [], created_at=later)["createdAt"] == "2024-05-02T14:00:00.000000Z"


def test_metadata_patch_sets_values_and_removes_none_and_secrets() -> None:
    """None removes a key; a secret is left out of the set and removed too, so no older copy survives."""
    assert metadata_patch(None) == (None, [])
    sent: dict[Any, Any] = {"kept": 1, "gone": None, "api_key": "k", 2: "two"}
    to_set, to_remove = metadata_patch(sent)
    assert to_set == {"kept": 1, "2": "two"} and to_remove == ["gone", "api_key"]
