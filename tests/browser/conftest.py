"""Debian's Chromium driven by Playwright against `chainlit run app_example.py`, in two set-ups.

`deployment` is parametrized: PostgreSQL + moto S3 with presigned URLs (signed for a public
endpoint that differs from the upload one), and the zero-setup default (embedded PostgreSQL, local
folder, URLs served by the app). Each set-up is started once per module and shared by its tests.
A failure leaves screenshots of every open page and the app's log in test-artifacts/browser/.

Playwright's sync API keeps an event loop running in this thread while the browser is open, so
nothing here may call asyncio.run(): the schema upgrade runs the CLI, as an operator would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.app_server import (
    AppServer,
    ChainlitApp,
    Deployment,
    LocalObjects,
    app_folder,
    stop_leftover_postgres,
)
from tests.browser.chat import (
    ALICE,
    Account,
    StartedThread,
    attach,
    current_thread_id,
    last_answer,
    log_in_with_api,
    log_in_with_form,
    send,
    wait_for_partial_answer,
)
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conformance.objects import StoredObjects
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, PostgresServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
FEATURE_APP = Path(__file__).with_name("feature_app")
EXAMPLE_README = ARTIFACTS.parents[1] / "chainlit.md"  # app_example.py's Readme page
QUESTION = "How are feedback ratings stored?"

expect.set_options(timeout=30_000)  # two cores shared with other test runs: be patient, never sleep
_open_browsers: list[Browser] = []
_running_apps: list[AppServer] = []


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/browser/, emptied once per run: screenshots and logs of every browser module."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def chromium(artifacts: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        _open_browsers.append(browser)
        try:
            yield browser
        finally:
            _open_browsers.remove(browser)
            browser.close()


@pytest.fixture(scope="module", params=["postgres-s3", "embedded"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = app_folder(f"openrag-browser-{request.param}-")
    cleanups: list[Callable[[], object]] = [lambda: shutil.rmtree(root, ignore_errors=True)]
    try:
        objects: StoredObjects | LocalObjects
        if request.param == "postgres-s3":
            settings, objects = postgres_and_s3(request, tmp_path_factory.mktemp("cli"), cleanups)
        else:
            settings, objects = {}, LocalObjects(root / ".chainlit" / "element-files")
        shutil.copy(EXAMPLE_README, root / "chainlit.md")  # as when run from the repository
        app = ChainlitApp(root, settings, warm_up_login=(ALICE.username, ALICE.password))
        cleanups.append(lambda: stop_leftover_postgres(root / ".chainlit" / "pgdata"))  # if it was killed
        start_app(app, cleanups)
        yield Deployment(request.param, app, objects)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture(scope="module", params=["presigned", "served"])
def feature_deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """tests/browser/feature_app/ on PostgreSQL + S3, element URLs presigned by S3 or served by the app."""
    root = Path(tempfile.mkdtemp(prefix=f"openrag-features-{request.param}-"))
    cleanups: list[Callable[[], object]] = [lambda: shutil.rmtree(root, ignore_errors=True)]
    try:
        settings, objects = postgres_and_s3(request, tmp_path_factory.mktemp("cli"), cleanups)
        if request.param == "served":
            settings["STORAGE_URL_MODE"] = "served"
        shutil.copytree(FEATURE_APP / "public", root / "public")  # custom elements live in the app's root
        app = ChainlitApp(root, settings, (ALICE.username, ALICE.password), target=FEATURE_APP / "app.py")
        start_app(app, cleanups)
        yield Deployment(request.param, app, objects)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def screenshot(page: Page, deployment: Deployment, name: str) -> None:
    """A picture of what the page shows, for people to look at: test-artifacts/browser/NAME-SETUP.png.

    Chainlit scrolls the chat inside its own panel, so the picture is the window, not the whole chat.
    """
    page.screenshot(path=ARTIFACTS / f"{name}-{deployment.name}.png")


def start_app(app: AppServer, cleanups: list[Callable[[], object]]) -> None:
    """Start ``app``, stop it at clean-up, and keep its log for failure reports meanwhile."""
    _running_apps.append(app)
    cleanups.append(lambda: _running_apps.remove(app))
    cleanups.append(app.stop)
    app.start()


def postgres_and_s3(
    request: pytest.FixtureRequest, cli_dir: Path, cleanups: list[Callable[[], object]]
) -> tuple[dict[str, str], StoredObjects]:
    """A fresh database upgraded by the CLI and a fresh bucket; browsers reach S3 as `localhost`."""
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    s3_endpoint: str = request.getfixturevalue("s3_server")
    database = f"browser_{uuid4().hex}"
    database_url = postgres.create_database(database)
    cleanups.append(lambda: postgres.drop_database(database))
    subprocess.run(
        [sys.executable, "-m", "chainlit_openrag_datalayer", "upgrade"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        cwd=cli_dir,  # importing chainlit writes .chainlit/ and .files/ in the working directory
        check=True,
        capture_output=True,
        timeout=120,
    )
    objects = StoredObjects(endpoint_url=s3_endpoint, bucket=f"browser-{uuid4().hex}")
    objects.create_bucket()
    settings = {
        "DATABASE_URL": database_url,
        "BUCKET_NAME": objects.bucket,
        "APP_AWS_ACCESS_KEY": S3_ACCESS_KEY,
        "APP_AWS_SECRET_KEY": S3_SECRET_KEY,
        "APP_AWS_REGION": S3_REGION,
        "DEV_AWS_ENDPOINT": s3_endpoint,
        "APP_AWS_PUBLIC_ENDPOINT": s3_endpoint.replace("127.0.0.1", "localhost"),
        "STORAGE_EXPIRY_TIME": "900",
        "CHAINLIT_AUTH_SECRET": f"browser-tests-{uuid4().hex}",
    }
    return settings, objects


def new_context(browser: Browser, deployment: Deployment) -> BrowserContext:
    context = browser.new_context(
        base_url=f"{deployment.app.base_url}/", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(30_000)
    return context


@pytest.fixture(scope="module")
def alice_thread(
    request: pytest.FixtureRequest,
    chromium: Browser,
    deployment: Deployment,
    tmp_path_factory: pytest.TempPathFactory,
) -> StartedThread:
    """Log in with the form, attach a file from the composer, ask, and wait for the streamed answer."""
    context = new_context(chromium, deployment)
    request.addfinalizer(context.close)  # after the failure report, so its screenshot shows this page
    page = context.new_page()
    log_in_with_form(page, ALICE)
    upload = tmp_path_factory.mktemp("uploads") / "release notes \u2013 été.txt"  # names are not just ASCII
    upload.write_bytes(f"Release notes {uuid4()}\nstreamed answers, stored files\n".encode())
    attach(page, upload)
    send(page, QUESTION)
    partial_answer = wait_for_partial_answer(page)
    thread_id = current_thread_id(page)
    answer = last_answer(page).inner_text()
    screenshot(page, deployment, "example-answer")
    return StartedThread(thread_id, QUESTION, upload, partial_answer, answer)


@pytest.fixture
def open_page(chromium: Browser, deployment: Deployment) -> Iterator[Callable[[Account | None], Page]]:
    """A page in a fresh browser context, logged in as ``account`` (through the login API) unless None."""
    contexts: list[BrowserContext] = []

    def open_page(account: Account | None) -> Page:
        context = new_context(chromium, deployment)
        contexts.append(context)
        if account is not None:
            log_in_with_api(context, account)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def alice(open_page: Callable[[Account | None], Page]) -> Page:
    return open_page(ALICE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        _save_artifacts(re.sub(r"[^\w.-]+", "_", f"{item.name}-{report.when}"))
    return report


def _save_artifacts(name: str) -> None:
    """Screenshots of every open page and the log of every running app, named after the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = [page for browser in _open_browsers for context in browser.contexts for page in context.pages]
    for number, page in enumerate(pages):
        try:
            page.screenshot(path=ARTIFACTS / f"{name}-page{number}.png", full_page=True, timeout=10_000)
        except Exception as error:  # a crashed page must not hide the test's own failure
            (ARTIFACTS / f"{name}-page{number}.txt").write_text(f"{page.url}: no screenshot: {error}\n")
    for number, app in enumerate(_running_apps):
        if app.log_path.exists():
            shutil.copyfile(app.log_path, ARTIFACTS / f"{name}-app{number}.log")
