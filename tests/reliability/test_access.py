"""Access control: threads, files and object keys stay with their owner, whatever the request says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import chainlit.data
import httpx
import pytest
from chainlit.auth import create_jwt
from chainlit.config import config
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import PersistedUser, User
from hypothesis import given
from hypothesis import strategies as st

from chainlit_openrag_datalayer import OpenRAGDataLayer
from chainlit_openrag_datalayer.errors import StorageError
from chainlit_openrag_datalayer.file_grants import GrantSigner
from chainlit_openrag_datalayer.served import ServedFiles
from chainlit_openrag_datalayer.storage import object_key
from chainlit_openrag_datalayer.storage.local import LocalStorage
from tests.conformance.factories import text_element
from tests.reliability.figures import FIGURES
from tests.reliability.inputs import EXAMPLES, IDS, ODD_IDS, TEXT, fresh_id
from tests.reliability.test_bad_input import raw_step

PLAIN = st.text(st.characters(exclude_characters="\x00"))


async def new_user(layer: OpenRAGDataLayer) -> PersistedUser:
    user = await layer.create_user(User(identifier=f"user-{fresh_id()}"))
    assert user is not None
    return user


async def new_thread(layer: OpenRAGDataLayer, user_id: str, name: str) -> str:
    """A thread with a user message and an answer carrying feedback."""
    thread_id, answer = fresh_id(), fresh_id()
    await layer.update_thread(thread_id, name=name, user_id=user_id)
    await layer.create_step(raw_step(thread_id, fresh_id(), type="user_message", output=f"{name} question"))
    await layer.create_step(raw_step(thread_id, answer, type="assistant_message", output=f"{name} answer"))
    await layer.upsert_feedback(Feedback(forId=answer, value=1 if len(name) % 2 else 0, comment=None))
    return thread_id


@pytest.fixture
async def two_owners(layer: OpenRAGDataLayer) -> dict[str, list[str]]:
    """Users "mine" and "theirs", each with 6 threads of the same names; user ids -> thread ids."""
    owners: dict[str, list[str]] = {}
    for _ in range(2):
        user = await new_user(layer)
        owners[user.id] = [await new_thread(layer, user.id, f"topic {n} 50%_off") for n in range(6)]
    return owners


@EXAMPLES
@given(data=st.data())
async def test_list_threads_never_shows_another_users_thread(
    layer: OpenRAGDataLayer, two_owners: dict[str, list[str]], data: st.DataObject
) -> None:
    """Whatever the page size, search, feedback filter or cursor (another user's thread included)."""
    FIGURES.tried("list_threads filters")
    mine, theirs = two_owners
    all_ids = [*two_owners[mine], *two_owners[theirs]]
    # Cursors without NUL or lone surrogates: those ids are test_bad_input's concern (and a known bug).
    cursor = data.draw(st.one_of(st.none(), st.sampled_from(all_ids), ODD_IDS, st.uuids().map(str), PLAIN))
    search = data.draw(st.one_of(st.none(), st.sampled_from(["topic", "50%_", "answer", "%", "_"]), TEXT))
    filters = ThreadFilter(userId=mine, search=search, feedback=data.draw(st.sampled_from([None, 0, 1])))
    page = await layer.list_threads(Pagination(first=data.draw(st.integers(-5, 30)), cursor=cursor), filters)
    assert {thread["id"] for thread in page.data} <= set(two_owners[mine])
    assert page.pageInfo.endCursor in (None, *two_owners[mine])


async def test_a_cursor_naming_another_users_thread_yields_nothing(
    layer: OpenRAGDataLayer, two_owners: dict[str, list[str]]
) -> None:
    mine, theirs = two_owners
    page = await layer.list_threads(
        Pagination(first=20, cursor=two_owners[theirs][0]), ThreadFilter(userId=mine)
    )
    assert page.data == []


# --- served element URLs -------------------------------------------------------------------------------


@pytest.fixture
async def served(
    layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """Chainlit's app with login required (a password callback) and this layer as its data layer."""
    from chainlit.server import app

    monkeypatch.setattr(config.code, "password_auth_callback", lambda username, password: None)
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        yield client


def login(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_jwt(User(identifier=user.identifier))}"}


async def owned_file(layer: OpenRAGDataLayer) -> tuple[User, str]:
    """A user and the served URL of a file in one of their threads."""
    owner = await new_user(layer)
    thread_id = await new_thread(layer, owner.id, "with a file")
    await layer.create_element(text_element(thread_id, None, content="private", name="private.txt"))
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["elements"]
    url = thread["elements"][0]["url"]
    assert url is not None
    return owner, url


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(query=urlencode({**query, **changes})).geturl()


async def test_served_url_serves_its_owner(layer: OpenRAGDataLayer, served: httpx.AsyncClient) -> None:
    owner, url = await owned_file(layer)
    response = await served.get(url, headers=login(owner))
    assert (response.status_code, response.text) == (200, "private")


async def test_served_url_refuses_another_user_and_anonymous(
    layer: OpenRAGDataLayer, served: httpx.AsyncClient
) -> None:
    _, url = await owned_file(layer)
    intruder = await new_user(layer)
    assert (await served.get(url, headers=login(intruder))).status_code == 403
    assert (await served.get(url)).status_code == 401


@pytest.mark.parametrize("field", ["k", "n", "m", "u", "t", "e", "s"])
async def test_served_url_refuses_a_tampered_field(
    layer: OpenRAGDataLayer, served: httpx.AsyncClient, field: str
) -> None:
    """Each field of the grant, changed (the user field to the intruder's own name), is refused."""
    _, url = await owned_file(layer)
    intruder = await new_user(layer)
    forged = {
        "k": "threads/other/files/x", "n": "other.txt", "m": "text/html", "u": intruder.identifier,
        "t": "a-thread-shared-with-the-intruder", "e": "99999999999", "s": "A" * 43,
    }  # fmt: skip
    response = await served.get(with_query(url, **{field: forged[field]}), headers=login(intruder))
    assert response.status_code == 403


async def test_served_url_refuses_expired_and_foreign_signatures(
    layer: OpenRAGDataLayer, served: httpx.AsyncClient
) -> None:
    owner, url = await owned_file(layer)
    grant = dict(parse_qsl(urlsplit(url).query))
    expired = layer.served_files.url(grant["k"], grant["n"], grant["m"], grant["u"], grant["t"], now=0)
    another_app = ServedFiles(GrantSigner("another app's secret", 3600), layer.storage, layer.get_thread)
    foreign = another_app.url(grant["k"], grant["n"], grant["m"], grant["u"], grant["t"])
    assert (await served.get(expired, headers=login(owner))).status_code == 403
    assert (await served.get(foreign, headers=login(owner))).status_code == 403


# --- object keys -------------------------------------------------------------------------------------


@EXAMPLES
@given(thread_id=IDS, element_id=IDS)
def test_object_keys_stay_under_their_thread_prefix(tmp_path: Path, thread_id: str, element_id: str) -> None:
    """Any ids give `threads/{thread}/files/{element}`, each id one segment that is neither `.` nor `..`."""
    FIGURES.tried("object keys")
    key = object_key(thread_id, element_id)
    segments = key.split("/")
    assert len(segments) == 4 and segments[0::2] == ["threads", "files"]
    assert all(segment not in ("", ".", "..") for segment in segments)
    root = LocalStorage(tmp_path)
    assert root.path(key).relative_to(root.root).as_posix() == key


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "threads/../../outside", "a/../..", "", "."])
def test_local_storage_refuses_keys_that_escape_its_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError):
        LocalStorage(tmp_path / "files").path(key)


@pytest.mark.parametrize("element_id", ["../../etc", "..", ".", "/etc/passwd", "..%2F..%2Fetc"])
async def test_file_with_a_traversal_id_stays_in_the_storage_folder(
    layer: OpenRAGDataLayer, tmp_path: Path, element_id: str
) -> None:
    """An element whose id tries to climb out is written under the layer's folder, nowhere else."""
    thread_id = f"../../{fresh_id()}"
    element = text_element(thread_id, None, content="inside")
    element.id = element_id
    await layer.create_element(element)
    written = await asyncio.to_thread(files_under, tmp_path)
    assert [path.read_text() for path in written] == ["inside"]
    assert all(path.is_relative_to(tmp_path / "files" / "threads") for path in written)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def no_owner_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "without an owner" in r.getMessage()]


async def test_threads_written_without_authentication_are_warned_about_once(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """No auth callback: Chainlit writes threads without owner, which nobody can list; one WARNING says so
    and names the fix, however many threads follow."""
    for _ in range(3):
        await layer.update_thread(fresh_id(), name="first message")

    warnings = no_owner_warnings(caplog)
    assert len(warnings) == 1 and "CHAINLIT_AUTH_SECRET" in warnings[0]


async def test_threads_without_owner_under_authentication_are_not_warned_about(
    layer: OpenRAGDataLayer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an auth callback, a write without user id (a session saved on disconnect) is no mistake."""
    monkeypatch.setattr(config.code, "password_auth_callback", lambda username, password: None)

    await layer.update_thread(fresh_id(), metadata={"chat_profile": "docs"})

    assert no_owner_warnings(caplog) == []
