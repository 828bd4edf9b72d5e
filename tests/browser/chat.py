"""What a user does in Chainlit's UI, with selectors from the Chainlit 2 front end in one place.

Paths are relative (``./login``), so that they work under a mounted app's root path too: browser contexts
get the app's ``base_url`` with a trailing slash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Locator, Page, Response, expect

USER_MESSAGE = '[data-step-type="user_message"]'
ASSISTANT_MESSAGE = '[data-step-type="assistant_message"]'
RETRIEVAL_STEP = '[data-step-type="retrieval"]'
THREAD_URL = re.compile(r"/thread/([0-9a-f-]{36})$")
# The example app ends every answer with this line, after the last streamed token.
ANSWER_END = re.compile(r"\(Message (\d+) of this conversation\.\)")


@dataclass(frozen=True)
class Account:
    """A login of app_example.py (its module docstring and the README state them)."""

    username: str
    password: str


ALICE = Account("alice", "alice-password")
BOB = Account("bob", "bob-password")


@dataclass(frozen=True)
class StartedThread:
    """A conversation started through the UI: login form, upload, question, streamed answer."""

    id: str
    question: str
    upload: Path
    partial_answer: str
    answer: str


def log_in_with_form(page: Page, account: Account) -> None:
    page.goto("./login")
    page.locator("#email").fill(account.username)
    page.locator("#password").fill(account.password)
    page.locator("button[type=submit]").click()
    expect(page.locator("#chat-input")).to_be_visible()


def log_in_with_api(context: BrowserContext, account: Account) -> None:
    """Sets the auth cookie in ``context``, as the login form does, without the form."""
    response = context.request.post(
        "./login", form={"username": account.username, "password": account.password}
    )
    assert response.ok, f"login as {account.username}: {response.status} {response.text()}"


def attach(page: Page, path: Path) -> None:
    """Give the composer's file input a file and wait until the server has it.

    The upload button opens the File System Access picker, which Playwright cannot drive, so
    the file goes to the input behind the button, as the drop zone does with a picked file.
    """
    expect(page.locator("#upload-button")).to_be_enabled()  # disabled while a reply is running
    with page.expect_response(api_call("POST", "/project/file")) as upload:
        page.locator("#upload-button-input").set_input_files(path)
    assert upload.value.ok, f"upload answered {upload.value.status}"
    expect(page.locator("#attachments")).to_contain_text(path.name)


def send(page: Page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    submit = page.locator("#chat-submit")
    expect(submit).to_be_enabled()
    submit.click()


def wait_for_partial_answer(page: Page) -> str:
    """The last answer while it is still streaming: some text, not yet the final line."""
    handle = page.wait_for_function(
        """([selector, end]) => {
            const answers = document.querySelectorAll(selector);
            const text = answers.length ? answers[answers.length - 1].innerText : "";
            return text.length > 0 && !new RegExp(end).test(text) ? text : null;
        }""",
        arg=[ASSISTANT_MESSAGE, ANSWER_END.pattern],
        polling="raf",
    )
    return str(handle.json_value())


def last_answer(page: Page) -> Locator:
    """The last assistant message, once it is complete (its final line and its chart are shown)."""
    answer = page.locator(ASSISTANT_MESSAGE).last
    expect(answer).to_contain_text(ANSWER_END)
    expect(relevance_chart(answer).locator(".legendtext")).to_have_count(2)
    return answer


def relevance_chart(answer: Locator) -> Locator:
    """The example's Plotly chart in an answer."""
    return answer.locator(".js-plotly-plot")


def current_thread_id(page: Page) -> str:
    page.wait_for_url(THREAD_URL)
    match = THREAD_URL.search(page.url)
    assert match is not None
    return match.group(1)


def sidebar_thread(page: Page, thread_id: str) -> Locator:
    return page.locator(f"#thread-history li#thread-{thread_id}")


def open_thread_menu(page: Page, thread_id: str, action: str) -> Locator:
    """Choose ``action`` (Rename, Delete) in the thread's sidebar menu; returns the dialog it opens."""
    item = sidebar_thread(page, thread_id)
    item.hover()
    item.locator("#thread-options").click()
    page.get_by_role("menuitem", name=action).click()
    dialog = page.get_by_role("dialog").or_(page.get_by_role("alertdialog"))  # rename, delete
    expect(dialog).to_be_visible()
    return dialog


def wait_until_image_loaded(image: Locator) -> int:
    """Scroll a (lazy) image into view and return its natural width once the browser decoded it."""
    image.scroll_into_view_if_needed()
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return int(image.evaluate("img => img.naturalWidth"))


def thread_json(context: BrowserContext, thread_id: str) -> dict[str, Any]:
    """``GET /project/thread/{id}`` with the context's cookie, as the front end reads a thread."""
    response = context.request.get(f"./project/thread/{thread_id}")
    assert response.ok, f"GET thread {thread_id}: {response.status} {response.text()}"
    thread: dict[str, Any] = response.json()
    return thread


def thread_list(context: BrowserContext) -> list[dict[str, Any]]:
    """The first page of the sidebar's ``POST /project/threads``."""
    response = context.request.post("./project/threads", data={"pagination": {"first": 35}, "filter": {}})
    assert response.ok, f"list threads: {response.status} {response.text()}"
    threads: list[dict[str, Any]] = response.json()["data"]
    return threads


def api_call(method: str, path: str) -> Callable[[Response], bool]:
    """Matches the response to ``method path`` under the app's root path (query string ignored), for
    ``page.expect_response``."""
    return lambda response: response.request.method == method and urlsplit(response.url).path.endswith(path)
