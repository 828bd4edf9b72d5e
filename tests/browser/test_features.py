"""Every Chainlit element type and feature, live and after resume, in both URL modes.

`feature_deployment` runs tests/browser/feature_app/ on PostgreSQL + S3 twice: element URLs presigned by
S3 (the browser reaches S3 on another origin), then served by the app. Each test looks at what the page
shows and at the HTTP status of every element fetch, first in the live chat, then in the same thread
reopened from its URL (Chainlit resumes it from the data layer). Tests run in file order and share
Alice's threads; screenshots of each screen go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, Response, expect

from tests.browser.app_server import Deployment
from tests.browser.chat import (
    ALICE,
    ASSISTANT_MESSAGE,
    USER_MESSAGE,
    Account,
    api_call,
    attach,
    current_thread_id,
    log_in_with_api,
    open_thread_menu,
    send,
    thread_json,
    wait_until_image_loaded,
)
from tests.browser.conftest import new_context, screenshot

pytestmark = pytest.mark.browser

BOB = Account("bob", "bob-password")  # admitted to a thread only when its owner shared it
CAROL = Account("carol", "carol-password")  # an auditor: on_shared_thread_view admits her anywhere
OK = (200, 206)  # media elements are fetched in ranges
# What the answer to "elements" shows once everything has loaded (feature_app.every_element).
EVERY_ELEMENT = {
    "image width": 100,
    "pyplot loaded": True,
    "file link": "notes.txt",
    "pdf page": "2",
    "audio seconds": 0.5,
    "video width": 64,
    "plotly title": "Rainy days",
    "dataframe cell": "Lyon",
    "inline text": "An inline note.",
    "side text": "A note in the side panel.",
    "custom element count": "tally: 2",
    "tool steps": ["plan", "lookup"],
    "task list": ["Collect the elements", "Render them"],
}


@dataclass
class Fetches:
    """Every response and failed request of a page, to check the element fetches' statuses."""

    statuses: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def record(self, page: Page) -> None:
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def of(self, urls: set[str]) -> dict[str, int | str]:
        """What the page got for the objects behind ``urls`` (signed again at each read, so compared by
        object): a status, or why the browser gave up."""
        wanted = {stored_object(url) for url in urls}
        answers: dict[str, int | str] = {**self.statuses, **self.failures}
        return {url: answer for url, answer in answers.items() if stored_object(url) in wanted}

    def _response(self, response: Response) -> None:
        self.statuses[response.url] = response.status

    def _failed(self, request: Request) -> None:
        # Aborted by the page itself (a media element dropping a range, a page closing): not an answer.
        if request.failure != "net::ERR_ABORTED":
            self.failures[request.url] = request.failure or "failed"


@dataclass
class Tour:
    """Alice's thread with every element, and what its first (live) view showed."""

    id: str
    live: dict[str, object]
    live_fetches: dict[str, int | str]


@pytest.fixture(scope="module")
def alice_context(chromium: Browser, feature_deployment: Deployment) -> Iterator[BrowserContext]:
    context = new_context(chromium, feature_deployment)
    log_in_with_api(context, ALICE)
    yield context
    context.close()


@pytest.fixture
def alice(alice_context: BrowserContext) -> Iterator[Page]:
    page = alice_context.new_page()
    yield page
    page.close()


@pytest.fixture
def viewer(chromium: Browser, feature_deployment: Deployment) -> Iterator[Callable[[Account], Page]]:
    """A page logged in as another user, in a context of its own."""
    contexts: list[BrowserContext] = []

    def open_as(account: Account) -> Page:
        context = new_context(chromium, feature_deployment)
        contexts.append(context)
        log_in_with_api(context, account)
        return context.new_page()

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def tour(alice_context: BrowserContext, feature_deployment: Deployment) -> Tour:
    """Alice clicks the "Show every element" starter and waits for the whole answer."""
    page = alice_context.new_page()
    fetches = Fetches()
    fetches.record(page)
    page.goto("/")
    starter = page.locator("#starter-show-every-element")
    expect(starter).to_be_enabled()
    starter.click()
    thread_id = current_thread_id(page)
    expect(page.locator("#tally")).to_have_text("tally: 1 (a draft)")
    send(page, "update the tally")
    expect(page.locator(ASSISTANT_MESSAGE).last).to_contain_text("Tally updated.")
    expect(page.locator("#tally")).to_have_text("tally: 2 (no draft)")
    live = elements_shown(page)
    screenshot(page, feature_deployment, "features-every-element-live")
    live_fetches = fetches.of({url for url in fetches.statuses if "/project/file/" in url})
    page.close()
    return Tour(thread_id, live, live_fetches)


# --- elements ------------------------------------------------------------------------------------------


def test_every_element_shows_live(tour: Tour) -> None:
    assert tour.live == EVERY_ELEMENT
    assert len(tour.live_fetches) >= 9
    assert set(tour.live_fetches.values()) <= set(OK), tour.live_fetches


def test_every_element_shows_after_resume(alice: Page, tour: Tour, feature_deployment: Deployment) -> None:
    """Reopened from its URL, the thread shows the same, and every element URL the page fetched answered."""
    fetches = Fetches()
    fetches.record(alice)
    alice.goto(f"/thread/{tour.id}")
    assert elements_shown(alice) == EVERY_ELEMENT
    screenshot(alice, feature_deployment, "features-every-element-resumed")
    stored = {element["name"]: element["url"] for element in thread_json(alice.context, tour.id)["elements"]}
    fetched = fetches.of(set(stored.values()))
    assert set(fetched.values()) <= set(OK), fetched
    fetched_objects = {stored_object(url) for url in fetched}
    assert {name for name, url in stored.items() if stored_object(url) in fetched_objects} == {
        "pixels.png", "line", "booklet.pdf", "tone.wav", "clip.webm", "bars", "table", "inline-note",
        "side-note", "tasklist",
    }  # fmt: skip


def test_prop_removed_by_update_stays_removed_after_resume(alice: Page, tour: Tour) -> None:
    """CustomElement.update() sends the element's whole props: one it no longer has stays gone."""
    alice.goto(f"/thread/{tour.id}")
    expect(alice.locator("#tally")).to_have_text("tally: 2 (no draft)")


def test_page_text_opens_on_its_own_page(alice: Page, tour: Tour) -> None:
    alice.goto(f"/thread/{tour.id}")
    alice.locator(ASSISTANT_MESSAGE).get_by_role("link", name="page-note").click()
    expect(alice.locator("#element-view")).to_contain_text("A note on its own page.")


def test_file_link_downloads_the_stored_bytes(alice: Page, tour: Tour) -> None:
    alice.goto(f"/thread/{tour.id}")
    link = alice.locator("a.inline-file", has_text="notes.txt")
    download = alice.context.request.get(link.evaluate("a => a.href"))
    assert (download.status, download.body()) == (200, b"plain notes\n")


# --- Ask*Message -------------------------------------------------------------------------------------


def test_ask_messages_live_and_after_resume(
    alice: Page, tmp_path: Path, feature_deployment: Deployment
) -> None:
    """AskUserMessage, AskFileMessage and AskActionMessage are answered, then read back."""
    alice.goto("/")
    starter = alice.locator("#starter-ask-me-things")
    expect(starter).to_be_enabled()
    starter.click()
    expect(alice.locator(ASSISTANT_MESSAGE).last).to_contain_text("What is your name?")
    send(alice, "Alice")
    expect(alice.locator(ASSISTANT_MESSAGE).last).to_contain_text("Send a text file.")
    answer = tmp_path / "answer.txt"
    answer.write_text("my answer\n")
    with alice.expect_response(api_call("POST", "/project/file")) as upload:
        alice.locator("#ask-button-input").set_input_files(answer)
    assert upload.value.ok
    expect(alice.locator(ASSISTANT_MESSAGE).last).to_contain_text("Keep going?")
    alice.get_by_role("button", name="Yes").click()
    summary = "Name Alice, file answer.txt, choice yes."
    expect(alice.locator(ASSISTANT_MESSAGE).last).to_contain_text(summary)
    thread_id = current_thread_id(alice)

    alice.goto(f"/thread/{thread_id}")
    # Chainlit rewrites an answered AskActionMessage as the selection.
    for text in ("What is your name?", "Send a text file.", "Selected: Yes", summary):
        expect(alice.locator(ASSISTANT_MESSAGE, has_text=text)).to_have_count(1)
    expect(alice.locator(USER_MESSAGE, has_text="Alice")).to_have_count(1)
    link = alice.locator(ASSISTANT_MESSAGE, has_text=summary).locator("a.inline-file", has_text="answer.txt")
    assert alice.context.request.get(link.evaluate("a => a.href")).body() == b"my answer\n"
    screenshot(alice, feature_deployment, "features-ask-messages-resumed")


# --- profiles, settings, composer uploads, favorites ------------------------------------------------


@pytest.fixture(scope="module")
def echo_thread(alice_context: BrowserContext, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Alice picks the Quiet profile, sets the tone to lively, stars and sends a message with a file."""
    page = alice_context.new_page()
    page.goto("/")
    page.locator("#chat-profiles").click()
    page.get_by_role("option", name="Quiet").click()
    expect(page.locator("#chat-profiles")).to_contain_text("Quiet")
    choose_tone(page, "lively")
    expect(page.locator(ASSISTANT_MESSAGE).last).to_contain_text("Settings now: tone=lively")
    upload = tmp_path_factory.mktemp("echo") / "upload.txt"
    upload.write_text("uploaded from the composer\n")
    attach(page, upload)
    send(page, "hello")
    expect(page.locator(ASSISTANT_MESSAGE).last).to_contain_text("Echo: hello (upload.txt; profile Quiet")
    expect(page.locator(ASSISTANT_MESSAGE).last).to_contain_text("'tone': 'lively'")
    hello = page.locator(USER_MESSAGE, has_text="hello")
    hello.get_by_text("hello", exact=True).hover()  # the star shows while the message is hovered
    hello.locator("button.favorite-message").click()
    expect(hello.locator("button.favorite-message")).to_have_class(re.compile("text-yellow-500"))
    thread_id = current_thread_id(page)
    page.close()
    return thread_id


def choose_tone(page: Page, tone: str) -> None:
    page.locator("#chat-settings-open-modal").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("#tone").click()
    page.get_by_role("option", name=tone).click()
    dialog.get_by_role("button", name="Confirm").click()


def test_profile_and_settings_are_restored_on_resume(alice: Page, echo_thread: str) -> None:
    """The resumed session answers with the thread's profile and settings, and the dialog shows them."""
    alice.goto(f"/thread/{echo_thread}")
    expect(alice.locator(USER_MESSAGE, has_text="hello")).to_have_count(1)
    send(alice, "again")
    reply = alice.locator(ASSISTANT_MESSAGE).last
    expect(reply).to_contain_text("Echo: again (no file; profile Quiet")
    expect(reply).to_contain_text("'tone': 'lively'")
    alice.locator("#chat-settings-open-modal").click()
    expect(alice.get_by_role("dialog").locator("#tone")).to_contain_text("lively")


def test_composer_upload_is_kept_with_the_thread(alice: Page, echo_thread: str) -> None:
    alice.goto(f"/thread/{echo_thread}")
    link = alice.locator(USER_MESSAGE, has_text="hello").locator("a.inline-file", has_text="upload.txt")
    assert alice.context.request.get(link.evaluate("a => a.href")).body() == b"uploaded from the composer\n"


def test_favorite_survives_a_reload(alice: Page, echo_thread: str) -> None:
    alice.goto(f"/thread/{echo_thread}")
    star = alice.locator(USER_MESSAGE, has_text="hello").locator("button.favorite-message")
    expect(star).to_have_class(re.compile("text-yellow-500"))
    alice.locator(".favorite-popover-wrapper button").click()
    expect(alice.get_by_role("dialog").or_(alice.locator("[role=menu]"))).to_contain_text("hello")


# --- sharing -------------------------------------------------------------------------------------------


def test_viewer_of_a_shared_thread_sees_its_files(
    alice: Page, viewer: Callable[[Account], Page], tour: Tour, feature_deployment: Deployment
) -> None:
    """Alice shares from the sidebar; Bob, admitted because it is shared, sees every element."""
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"])  # the dialog copies the link
    alice.goto(f"/thread/{tour.id}")
    dialog = open_thread_menu(alice, tour.id, "Share")
    with alice.expect_response(api_call("PUT", "/project/thread/share")) as shared:
        dialog.get_by_role("button", name="Share").click()
    assert shared.value.ok

    bob = viewer(BOB)
    fetches = Fetches()
    fetches.record(bob)
    bob.goto(f"/share/{tour.id}")
    assert elements_shown(bob, task_list=False) == {
        k: v for k, v in EVERY_ELEMENT.items() if k != "task list"
    }
    screenshot(bob, feature_deployment, "features-shared-thread-viewer")
    fetched = fetches.of({element["url"] for element in thread_json(alice.context, tour.id)["elements"]})
    assert set(fetched.values()) <= set(OK), fetched


def test_viewer_the_callback_admits_sees_an_unshared_threads_files(
    viewer: Callable[[Account], Page], alice_context: BrowserContext, echo_thread: str
) -> None:
    """Carol the auditor opens Alice's unshared thread and its upload; Bob gets neither."""
    upload_url = next(
        element["url"]
        for element in thread_json(alice_context, echo_thread)["elements"]
        if element["name"] == "upload.txt"
    )
    carol = viewer(CAROL)
    carol.goto(f"/share/{echo_thread}")
    link = carol.locator(USER_MESSAGE, has_text="hello").locator("a.inline-file", has_text="upload.txt")
    expect(link).to_be_visible()
    assert carol.context.request.get(link.evaluate("a => a.href")).status == 200

    bob = viewer(BOB)
    assert bob.context.request.get(f"/project/share/{echo_thread}").status == 404
    bob.goto(f"/share/{echo_thread}")
    expect(bob.locator(USER_MESSAGE, has_text="hello")).to_have_count(0)
    if urlsplit(upload_url).path.startswith("/openrag-datalayer/"):  # served: the URL alone is not enough
        assert bob.context.request.get(upload_url).status == 403


# --- what the page shows ------------------------------------------------------------------------------


def elements_shown(page: Page, task_list: bool = True) -> dict[str, object]:
    """Wait for each element of the "elements" answer to load, and say what it shows.

    Chainlit shows no task list on a shared thread's page: ``task_list=False`` there.
    """
    answer = page.locator(ASSISTANT_MESSAGE, has_text="Every element")
    expect(answer.locator("#tally")).to_be_visible()
    pdf_page = answer.locator(".inline-pdf .react-pdf__Page")
    expect(pdf_page.locator("canvas")).to_be_visible()
    plotly_title = answer.locator(".js-plotly-plot .gtitle")
    expect(plotly_title).to_be_visible()
    expect(answer.get_by_role("cell", name="Lyon")).to_be_visible()
    if not page.locator("#side-view-content").is_visible():  # opens by itself in a chat, not when shared
        answer.get_by_role("link", name="side-note").click()
    expect(page.locator("#side-view-content")).to_contain_text("A note in the side panel.")
    side_text = page.locator("#side-view-content").inner_text().strip()
    page.locator("#side-view-title").get_by_role("button").first.click()  # the task list takes its place
    tasks = page.locator("aside.tasklist .task")
    if task_list:
        expect(tasks).to_have_count(2)
    steps = page.locator('[data-step-type="tool"]')
    steps.first.get_by_role("button").first.click()
    expect(steps.get_by_text("lookup")).to_be_visible()
    return {
        "image width": wait_until_image_loaded(answer.locator('img.inline-image[alt="pixels.png"]')),
        "pyplot loaded": wait_until_image_loaded(answer.locator('img.inline-image[alt="line"]')) > 0,
        "file link": answer.locator("a.inline-file").inner_text().split()[-1],  # after its icon's label
        "pdf page": pdf_page.get_attribute("data-page-number"),
        "audio seconds": round(media_property(answer.locator("audio"), "duration"), 1),
        "video width": media_property(answer.locator("video"), "videoWidth"),
        "plotly title": plotly_title.text_content(),
        "dataframe cell": answer.get_by_role("cell", name="Lyon").inner_text(),
        "inline text": answer.get_by_text("An inline note.").inner_text(),
        "side text": side_text,
        "custom element count": answer.locator("#tally").inner_text().split(" (")[0],
        "tool steps": [name for name in ("plan", "lookup") if steps.get_by_text(name).count()],
    } | (
        {"task list": [text.strip() for text in tasks.locator(".min-w-0").all_inner_texts()]}
        if task_list
        else {}
    )


def media_property(media: Locator, name: str) -> float:
    """A property of an <audio> or <video> once its metadata has loaded (Chromium decoded the file)."""
    handle = media.element_handle()
    media.page.wait_for_function("media => media.readyState >= 1 && !media.error", arg=handle)
    return float(handle.evaluate(f"media => media.{name}"))


def stored_object(url: str) -> str:
    """Which object a URL reads: a served URL's key, or a presigned URL's path."""
    parts = urlsplit(url)
    return parse_qs(parts.query).get("k", [parts.path])[0]
