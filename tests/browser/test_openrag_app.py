"""An OpenRAG-shaped chat, deployed as OpenRAG deploys it, in Chromium: served, presigned and embedded.

uvicorn serves a FastAPI app that mounts ``openrag_app/app_front.py`` at /chainlit (``/`` redirects
there); the password is an API token checked by a stand-in API in this process, which records the token of
every call. Each set-up runs the tests in file order: log in, ask, reload and resume, a follow-up (with the
real token, not a placeholder), the stored file after resume, two people with one display name, a
restart, and a shutdown that leaves no process behind.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.app_server import Deployment, LocalObjects, MountedApp, app_folder, postgres_processes
from tests.browser.chat import (
    ASSISTANT_MESSAGE,
    USER_MESSAGE,
    Account,
    log_in_with_api,
    log_in_with_form,
    send,
    sidebar_thread,
    thread_json,
    thread_list,
)
from tests.browser.conftest import new_context, postgres_and_s3, start_app
from tests.browser.openrag_api import ApiUser, StandInApi, serving
from tests.conformance.objects import StoredObjects

pytestmark = pytest.mark.browser

APP_FRONT = Path(__file__).with_name("openrag_app") / "app_front.py"
CHAT = "/v1/chat/completions"
ALICE = ApiUser(101, "Alice Martin", f"or-alice-{uuid4().hex}", "alice@example.org")
BOB = ApiUser(102, "Bob Durand", f"or-bob-{uuid4().hex}", "bob@example.org")
DANA = ApiUser(201, "Dana", f"or-dana-{uuid4().hex}", "dana@example.org")
OTHER_DANA = ApiUser(202, "Dana", f"or-dana2-{uuid4().hex}", "dana.k@example.org")
QUESTION = "Who approves travel expenses?"


def account(user: ApiUser) -> Account:
    """The login form's fields: OpenRAG ignores the name; the password is the API token."""
    return Account(user.email, user.token)


@dataclass(frozen=True)
class AliceThread:
    """Alice's first conversation: its id, and the file stored with the answer."""

    id: str
    notes_url: str


@pytest.fixture(scope="module")
def api() -> Iterator[StandInApi]:
    with serving(StandInApi([ALICE, BOB, DANA, OTHER_DANA])) as api:
        yield api


@pytest.fixture(scope="module", params=["served", "presigned", "embedded"])
def openrag(
    request: pytest.FixtureRequest, api: StandInApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The app under uvicorn, mounted at /chainlit: PostgreSQL + S3 (served or presigned URLs), or the
    zero-setup default (embedded PostgreSQL, local folder)."""
    root = app_folder(f"openrag-shape-{request.param}-")
    cleanups: list[Callable[[], object]] = [lambda: shutil.rmtree(root, ignore_errors=True)]
    try:
        objects: StoredObjects | LocalObjects
        if request.param == "embedded":
            settings = {"CHAINLIT_AUTH_SECRET": f"openrag-shape-{uuid4().hex}"}
            objects = LocalObjects(root / ".chainlit" / "element-files")
        else:
            settings, objects = postgres_and_s3(request, tmp_path_factory.mktemp("cli"), cleanups)
            if request.param == "served":
                settings["STORAGE_URL_MODE"] = "served"
        settings.update(OPENRAG_API_URL=api.base_url, CHAINLIT_DATALAYER_COMPOSE="1")
        app = MountedApp(root, settings, (ALICE.email, ALICE.token), target=APP_FRONT)
        start_app(app, cleanups)
        yield Deployment(request.param, app, objects)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture
def open_page(chromium: Browser, openrag: Deployment) -> Iterator[Callable[[ApiUser | None], Page]]:
    """A page in a fresh browser context, logged in as ``user`` (through the login API) unless None."""
    contexts: list[BrowserContext] = []

    def open_page(user: ApiUser | None) -> Page:
        context = new_context(chromium, openrag)
        contexts.append(context)
        if user is not None:
            log_in_with_api(context, account(user))
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def alice_thread(
    request: pytest.FixtureRequest, chromium: Browser, openrag: Deployment, api: StandInApi
) -> AliceThread:
    """Alice logs in with her token, asks, gets a streamed answer with its sources, and leaves (Chainlit
    then stores her session, the conversation's history with it, in the thread)."""
    context = new_context(chromium, openrag)
    request.addfinalizer(context.close)
    page = context.new_page()
    log_in_with_form(page, account(ALICE))
    send(page, QUESTION)
    _expect_answer(page, 1)
    thread_id = _newest_thread(context)
    notes_url = _notes_url(context, thread_id)
    page.close()
    _wait_until(lambda: "messages" in thread_json(context, thread_id)["metadata"], "the session is stored")
    return AliceThread(thread_id, notes_url)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s until {what}")
        time.sleep(0.1)


def _newest_thread(context: BrowserContext) -> str:
    """The id of the user's latest thread (mounted, Chainlit's page keeps its URL: no /thread/<id>)."""
    return str(thread_list(context)[0]["id"])


def _notes_url(context: BrowserContext, thread_id: str) -> str:
    """The URL the thread's stored file is given now, as the front end reads the thread.

    Chainlit fires the element's write without awaiting it (upload, then row): the answer can show before
    the row is stored, so wait for it as a reload would.
    """
    urls: list[str] = []

    def stored() -> bool:
        elements = thread_json(context, thread_id)["elements"]
        urls[:] = [str(element["url"]) for element in elements if element["name"] == "answer-notes.txt"]
        return bool(urls)

    _wait_until(stored, "the answer's file is stored")
    return urls[0]


def _expect_answer(page: Page, number: int) -> None:
    """The last answer is complete: its text, its source image (loaded with the token) and its file."""
    answer = page.locator(ASSISTANT_MESSAGE).last
    expect(answer).to_contain_text(f"(Answer {number})")
    expect(answer.locator("img.inline-image").first).to_be_visible()
    expect(answer.locator("a", has_text="answer-notes.txt")).to_be_visible()


def test_root_redirects_to_the_mounted_chat(openrag: Deployment) -> None:
    """OpenRAG's / sends browsers to /chainlit/, where Chainlit's page says it lives."""
    response = httpx.get(f"{openrag.app.origin}/", follow_redirects=True)
    assert response.url.path == "/chainlit/"
    assert '<meta property="og:root_path" content="/chainlit">' in response.text


def test_answer_streams_from_the_api_with_the_users_token(alice_thread: AliceThread, api: StandInApi) -> None:
    """The login, the question and the source image the browser loaded reach the API with Alice's token."""
    assert api.tokens_of("/users/info")[-1] == ALICE.token
    assert api.tokens_of(CHAT)[-1] == ALICE.token
    assert ALICE.token in api.tokens_of("/static/org-chart.png")


def test_resumed_thread_continues_with_the_real_token(
    open_page: Callable[[ApiUser | None], Page], alice_thread: AliceThread, api: StandInApi
) -> None:
    """After a reload, the thread is in the sidebar; opened, it has a composer and the follow-up goes to
    the API with Alice's token (the session restored from the thread holds none: the app's store has it)."""
    alice = open_page(ALICE)
    alice.goto("./")
    sidebar_thread(alice, alice_thread.id).locator("a").click()
    expect(alice.locator(USER_MESSAGE).first).to_contain_text(QUESTION)
    expect(alice.locator(ASSISTANT_MESSAGE)).to_have_count(1)
    send(alice, "And for conferences abroad?")
    _expect_answer(alice, 2)  # the API was sent the whole history, restored with the session
    assert api.tokens_of(CHAT)[-1] == ALICE.token


def test_no_token_is_stored_with_the_thread(
    open_page: Callable[[ApiUser | None], Page], alice_thread: AliceThread
) -> None:
    """The sources' ?token= and the session's openrag_api_key stay out of what the layer stored."""
    thread = thread_json(open_page(ALICE).context, alice_thread.id)
    assert ALICE.token not in str(thread)
    sources = [element for element in thread["elements"] if element["name"] == "org-chart.png"]
    assert sources and all("/static/org-chart.png" in element["url"] for element in sources)


def test_a_source_linked_as_the_guide_shows_opens_after_resume(
    open_page: Callable[[ApiUser | None], Page], alice_thread: AliceThread, api: StandInApi
) -> None:
    """The stored source URL lost its ?token= (it answers 401 now); the guide's link, through the chat's
    own route, still opens for Alice, with her token, and not without her login."""
    alice = open_page(ALICE)
    urls = {e["name"]: e["url"] for e in thread_json(alice.context, alice_thread.id)["elements"]}
    assert alice.context.request.get(urls["org-chart.png"]).status == 401
    link = urls["org-chart.png (link)"]
    assert link == "/chainlit/sources/org-chart.png"
    calls = len(api.tokens_of("/static/org-chart.png"))
    assert alice.context.request.get(link).status == 200
    assert api.tokens_of("/static/org-chart.png")[calls:] == [ALICE.token]
    assert open_page(None).context.request.get(link, max_redirects=0).status == 401


def test_stored_file_opens_after_resume_for_its_owner_only(
    open_page: Callable[[ApiUser | None], Page], openrag: Deployment, alice_thread: AliceThread
) -> None:
    """The file stored with the answer opens for Alice under /chainlit; Bob gets neither the thread, nor
    the element, nor (served URLs) the file."""
    alice, bob = open_page(ALICE), open_page(BOB)
    alice.goto(f"./thread/{alice_thread.id}")
    expect(alice.locator(ASSISTANT_MESSAGE).first).to_be_visible()
    url = _notes_url(alice.context, alice_thread.id)
    opened = alice.context.request.get(url)
    assert opened.status == 200, f"GET {url}: {opened.status} {opened.text()[:200]}"
    assert opened.body() == f"Notes on: {QUESTION}\n".encode()
    if not openrag.presigned_urls:
        assert url.startswith("/chainlit/openrag-datalayer/files?")
        assert bob.context.request.get(url).status == 403
    assert bob.context.request.get(f"./project/thread/{alice_thread.id}").status in (401, 403, 404)
    assert thread_list(bob.context) == []


def test_people_with_one_display_name_keep_their_history_and_token(
    open_page: Callable[[ApiUser | None], Page], api: StandInApi
) -> None:
    """Two people called Dana: the second one's login does not hand the first one's chat their token,
    and neither sees the other's history (the guide's identifier, openrag:<id>)."""
    dana = open_page(None)
    log_in_with_form(dana, account(DANA))
    other_dana = open_page(OTHER_DANA)  # logs in after Dana, as in the defect OpenRAG had
    send(dana, "What is my leave balance?")
    _expect_answer(dana, 1)
    thread_id = _newest_thread(dana.context)
    assert api.tokens_of(CHAT)[-1] == DANA.token
    assert thread_id not in {thread["id"] for thread in thread_list(other_dana.context)}
    for page, user in ((dana, DANA), (other_dana, OTHER_DANA)):
        me = page.context.request.get("./user").json()
        assert (me["identifier"], me["display_name"], me["metadata"]["extra"]["id"]) == (
            f"openrag:{user.id}",
            "Dana",
            user.id,
        )


def test_history_and_chat_survive_a_restart(
    open_page: Callable[[ApiUser | None], Page],
    openrag: Deployment,
    alice_thread: AliceThread,
    api: StandInApi,
) -> None:
    """After a restart (the app's token store is empty), Alice logs in again: her thread is there, and the
    next follow-up goes out with her token; the stored file still opens."""
    openrag.app.restart()
    alice = open_page(None)
    log_in_with_form(alice, account(ALICE))
    sidebar_thread(alice, alice_thread.id).locator("a").click()
    expect(alice.locator(ASSISTANT_MESSAGE)).to_have_count(2)
    send(alice, "Thanks, and for trains?")
    _expect_answer(alice, 3)
    assert api.tokens_of(CHAT)[-1] == ALICE.token
    url = _notes_url(alice.context, alice_thread.id)
    assert alice.context.request.get(url).status == 200


def test_shutdown_leaves_no_process(openrag: Deployment) -> None:
    """SIGTERM, as Docker stops a container: uvicorn exits within 10 s, the embedded server with it."""
    assert openrag.app.stop(timeout=10, sig=signal.SIGTERM) == -signal.SIGTERM, openrag.app.log_tail()
    assert postgres_processes(openrag.root / ".chainlit" / "pgdata") == []
    with pytest.raises(httpx.TransportError):
        httpx.get(openrag.app.origin)
