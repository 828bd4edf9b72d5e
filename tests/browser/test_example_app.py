"""The example app in a real browser: chat, history, feedback, ownership, deletion and restarts.

Each test runs once per set-up of `deployment` (PostgreSQL + S3, embedded default), in file order:
the later tests rename, rate and continue Alice's first thread, and the last one restarts the app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect

from tests.browser.app_server import Deployment
from tests.browser.chat import (
    ALICE,
    ASSISTANT_MESSAGE,
    BOB,
    RETRIEVAL_STEP,
    USER_MESSAGE,
    Account,
    StartedThread,
    api_call,
    attach,
    current_thread_id,
    last_answer,
    open_thread_menu,
    relevance_chart,
    send,
    sidebar_thread,
    thread_json,
    thread_list,
)
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def test_login_form_refuses_a_wrong_password(open_page: Callable[[Account | None], Page]) -> None:
    """A wrong password keeps the visitor on the login page, without a session."""
    page = open_page(None)
    page.goto("/login")
    page.locator("#email").fill(ALICE.username)
    page.locator("#password").fill("not-alice-password")
    with page.expect_response("**/login") as login:
        page.locator("button[type=submit]").click()
    assert login.value.status == 401
    expect(page.locator("#password")).to_be_visible()
    assert page.url.endswith("/login")
    assert page.context.request.get("/user").status == 401


def test_readme_says_what_the_app_shows_and_how_history_works(alice: Page, deployment: Deployment) -> None:
    """The Readme button opens the example's own chainlit.md, not Chainlit's default page."""
    alice.goto("/")
    alice.locator("#readme-button").click()
    readme = alice.get_by_role("dialog")
    expect(readme.get_by_role("heading", name="How history works")).to_be_visible()
    expect(readme).to_contain_text("OpenRAG-style chat")
    expect(readme).not_to_contain_text("Welcome to Chainlit")
    screenshot(alice, deployment, "example-readme")


def test_answer_is_streamed_and_names_the_uploaded_file(alice_thread: StartedThread) -> None:
    """The answer arrives token by token, ends with its last line, and mentions the attachment."""
    partial = alice_thread.partial_answer.strip()
    assert partial
    assert alice_thread.answer.startswith(partial)
    assert len(partial) < len(alice_thread.answer)
    assert alice_thread.upload.name in alice_thread.answer
    assert "(Message 1 of this conversation.)" in alice_thread.answer


def test_thread_is_listed_in_the_sidebar_after_a_reload(
    alice: Page, alice_thread: StartedThread, deployment: Deployment
) -> None:
    """The history sidebar lists the thread under its first message, tagged with the chat profile."""
    alice.goto("/")
    expect(sidebar_thread(alice, alice_thread.id)).to_have_text(alice_thread.question)
    screenshot(alice, deployment, "example-history")
    listed = {thread["id"]: thread for thread in thread_list(alice.context)}
    assert listed[alice_thread.id]["tags"] == ["Detailed"]


def test_opened_thread_shows_its_history_chart_sources_and_file(
    alice: Page, alice_thread: StartedThread, deployment: Deployment
) -> None:
    """Opening the thread from the sidebar restores every message, the step, the chart, the sources and
    the upload."""
    alice.goto("/")
    sidebar_thread(alice, alice_thread.id).locator("a").click()
    expect(alice.locator(USER_MESSAGE).first).to_contain_text(alice_thread.question)
    expect(alice.locator(RETRIEVAL_STEP).first).to_contain_text("retrieve")
    answer = last_answer(alice)
    chart = relevance_chart(answer)
    assert chart.locator(".legendtext").all_text_contents() == [
        "keywords in the passage",
        "keywords in its title (count double)",
    ]
    expect(chart.locator(".xtitle")).to_have_text("relevance score (share of the question's keywords)")
    expect(chart.locator(".ytick").first).to_be_visible()
    # The source is the retrieved passage, which says more than the answer's sentence taken from it.
    expect(alice.locator("#side-view-title")).to_contain_text("Feedback")
    source = alice.locator("#side-view-content")
    expect(source).to_contain_text("Ratings are stored with the message")
    expect(answer).not_to_contain_text("Ratings are stored with the message")
    answer.get_by_role("link", name="Feedback").first.click()
    expect(source).to_contain_text("Every answer can be rated with a thumbs up or down.")
    screenshot(alice, deployment, "opened-thread")
    link = alice.locator(USER_MESSAGE).first.locator("a.inline-file", has_text=alice_thread.upload.name)
    href = link.evaluate("a => a.href")
    download = alice.context.request.get(href)
    assert download.ok, f"GET {href}: {download.status}"
    assert download.body() == alice_thread.upload.read_bytes()


def test_resumed_thread_continues_the_conversation(alice: Page, alice_thread: StartedThread) -> None:
    """on_chat_resume restores the session: the next answer knows it is the second one."""
    alice.goto(f"/thread/{alice_thread.id}")
    expect(alice.locator(ASSISTANT_MESSAGE)).to_have_count(1)
    send(alice, "And where do uploaded files go?")
    expect(last_answer(alice)).to_contain_text("(Message 2 of this conversation.)")
    expect(alice.locator(ASSISTANT_MESSAGE)).to_have_count(2)


def test_thumbs_up_survives_a_reload(alice: Page, alice_thread: StartedThread) -> None:
    """A positive rating with a comment is stored and shown again after a reload."""
    alice.goto(f"/thread/{alice_thread.id}")
    answer = alice.locator(ASSISTANT_MESSAGE).first
    answer.locator("button.positive-feedback-off").click()
    alice.get_by_role("dialog").locator("textarea").fill("Clear and sourced")
    with alice.expect_response(api_call("PUT", "/feedback")) as put:
        alice.locator("#submit-feedback").click()
    assert put.value.ok
    alice.reload()
    expect(alice.locator(ASSISTANT_MESSAGE).first.locator("button.positive-feedback-on")).to_be_visible()
    rated = [step for step in thread_json(alice.context, alice_thread.id)["steps"] if step.get("feedback")]
    assert [(step["feedback"]["value"], step["feedback"]["comment"]) for step in rated] == [
        (1, "Clear and sourced")
    ]


def test_renamed_thread_keeps_its_new_name(alice: Page, alice_thread: StartedThread) -> None:
    """Rename from the sidebar menu; the new name is stored and shown after a reload."""
    new_name = f"Feedback notes {uuid4().hex[:6]}"
    alice.goto("/")
    dialog = open_thread_menu(alice, alice_thread.id, "Rename")
    dialog.locator("#name").fill(new_name)
    with alice.expect_response(api_call("PUT", "/project/thread")) as put:
        dialog.get_by_role("button", name="Confirm").click()
    assert put.value.ok
    alice.reload()
    expect(sidebar_thread(alice, alice_thread.id)).to_have_text(new_name)
    assert thread_json(alice.context, alice_thread.id)["name"] == new_name


def test_second_user_sees_none_of_the_first_users_threads(
    open_page: Callable[[Account | None], Page], alice_thread: StartedThread
) -> None:
    """Bob's sidebar and thread list hold nothing of Alice's."""
    bob = open_page(BOB)
    with bob.expect_response(api_call("POST", "/project/threads")):
        bob.goto("/")
    expect(bob.locator("#chat-input")).to_be_visible()
    expect(sidebar_thread(bob, alice_thread.id)).to_have_count(0)
    assert thread_list(bob.context) == []


def test_second_user_is_refused_the_thread_and_its_files(
    open_page: Callable[[Account | None], Page], deployment: Deployment, alice_thread: StartedThread
) -> None:
    """Bob gets neither the thread, nor its elements, nor (for served URLs) the files behind them."""
    alice, bob = open_page(ALICE), open_page(BOB)
    elements = thread_json(alice.context, alice_thread.id)["elements"]
    assert elements
    paths = [f"/project/thread/{alice_thread.id}"]
    paths += [f"/project/thread/{alice_thread.id}/element/{element['id']}" for element in elements]
    for path in paths:
        response = bob.context.request.get(path)
        assert response.status in (401, 403, 404), f"Bob GET {path}: {response.status} {response.text()[:99]}"
    bob.goto(f"/thread/{alice_thread.id}")
    expect(bob.locator("#chat-input")).to_be_visible()
    expect(bob.get_by_role("alert").first).to_be_visible()  # the socket refuses Bob: an error banner
    expect(bob.locator(USER_MESSAGE)).to_have_count(0)
    expect(bob.get_by_text(alice_thread.question)).to_have_count(0)

    url = next(element["url"] for element in elements if element["name"] == alice_thread.upload.name)
    if deployment.presigned_urls:
        # A presigned URL is a bearer token: whoever holds it reads the object until it expires, Bob
        # included. What protects Alice is that only she is handed one, short-lived, for the public host.
        query = parse_qs(urlsplit(url).query)
        assert urlsplit(url).hostname == "localhost"
        assert query["X-Amz-Expires"] == [deployment.app.settings["STORAGE_EXPIRY_TIME"]]
        assert "X-Amz-Signature" in query
        assert bob.context.request.get(url).status == 200
    else:
        assert bob.context.request.get(url).status == 403
        assert alice.context.request.get(url).status == 200
        assert open_page(None).context.request.get(url).status == 401


def test_deleted_thread_leaves_no_stored_files(alice: Page, deployment: Deployment, tmp_path: Path) -> None:
    """Deleting from the sidebar removes the thread and every object its elements stored."""
    upload = tmp_path / "to-be-deleted.txt"
    upload.write_text("delete me\n")
    alice.goto("/")
    expect(alice.locator("#chat-input")).to_be_visible()
    attach(alice, upload)
    send(alice, "Please forget this conversation")
    thread_id = current_thread_id(alice)
    last_answer(alice)
    elements = thread_json(alice.context, thread_id)["elements"]
    kinds = sorted(element["type"] for element in elements)
    assert (
        kinds[0] == "file" and kinds[1] == "plotly" and set(kinds[2:]) == {"text"}
    )  # upload, chart, sources
    keys = {element["objectKey"] for element in elements}
    assert len(keys) == len(elements) and keys <= set(deployment.objects.keys())

    alice.goto("/")
    dialog = open_thread_menu(alice, thread_id, "Delete")
    with alice.expect_response(api_call("DELETE", "/project/thread")) as gone:
        dialog.get_by_role("button", name="Confirm").click()
    assert gone.value.ok
    expect(sidebar_thread(alice, thread_id)).to_have_count(0)
    assert alice.context.request.get(f"/project/thread/{thread_id}").status in (403, 404)
    assert keys.isdisjoint(deployment.objects.keys())


def test_files_and_database_are_where_the_settings_say(
    deployment: Deployment, alice_thread: StartedThread
) -> None:
    """The default keeps everything under .chainlit/; configured services replace it, never sit beside it."""
    chainlit_dir = deployment.root / ".chainlit"
    prefix = f"threads/{alice_thread.id}/"
    if deployment.name == "embedded":
        assert (chainlit_dir / "pgdata" / "PG_VERSION").is_file()
        assert (chainlit_dir / ".auth_secret").is_file()
        assert deployment.objects.keys(prefix)
    else:
        assert not (chainlit_dir / "pgdata").exists()
        assert not (chainlit_dir / "element-files").exists()
        assert not (chainlit_dir / ".auth_secret").exists()
        assert deployment.objects.keys(prefix)


def test_history_survives_a_restart(
    open_page: Callable[[Account | None], Page], deployment: Deployment, alice_thread: StartedThread
) -> None:
    """After Ctrl+C and a new start, the same login and element URLs still work and the thread is there."""
    alice = open_page(ALICE)
    chart_url = next(
        element["url"]
        for element in thread_json(alice.context, alice_thread.id)["elements"]
        if element["name"] == "relevance"
    )
    assert deployment.app.stop() == 0
    assert not (deployment.root / ".chainlit" / "pgdata" / "postmaster.pid").exists()
    deployment.app.start()

    alice.goto("/")  # the cookie from before the restart is still valid: the secret did not change
    expect(sidebar_thread(alice, alice_thread.id)).to_be_visible()
    sidebar_thread(alice, alice_thread.id).locator("a").click()
    expect(alice.locator(USER_MESSAGE).first).to_contain_text(alice_thread.question)
    expect(relevance_chart(alice.locator(ASSISTANT_MESSAGE).first).locator(".legendtext")).to_have_count(2)
    assert alice.context.request.get(chart_url).ok
