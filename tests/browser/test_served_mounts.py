"""Served element URLs open however the Chainlit app is served: the URL and the route always agree.

One database and one stored file, shared by every shape; each shape starts `app_example.py` its own way
and the test reads the thread through Chainlit's API over HTTP, then opens the file URL it was given.
`doctor --app-url` must say the same: ok at the address the chat opens at, FAIL with what to pass elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from chainlit_openrag_datalayer import doctor, file_grants, served
from tests.browser.app_server import AppServer, ChainlitApp, MountedApp, PrefixProxy
from tests.browser.chat import ALICE, BOB
from tests.cli_support import InProcessCli
from tests.services import PostgresServer

SECRET = f"served-mounts-{uuid4().hex}"
ROUTE = "/openrag-datalayer/files"
OG_ROOT_PATH = re.compile(r'<meta property="og:root_path" content="([^"]*)"')


@dataclass(frozen=True)
class StoredFile:
    """A thread of Alice's holding one file, written through the layer before any app starts."""

    settings: dict[str, str]
    thread_id: str
    content: bytes


@dataclass(frozen=True)
class Shape:
    """How the app is served, and the address browsers use for it (``public_base``)."""

    name: str
    start: Callable[[Path, dict[str, str], ExitStack], str]


@pytest.fixture(scope="module")
def stored_file(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> StoredFile:
    database = f"mounts_{uuid4().hex}"
    database_url = postgres_server.create_database(database)
    files = tmp_path_factory.mktemp("element-files")
    settings = {"DATABASE_URL": database_url, "LOCAL_STORAGE_DIR": str(files), "CHAINLIT_AUTH_SECRET": SECRET}
    content = f"stored file {uuid4()}\n".encode()
    thread_id = asyncio.run(_store_a_file(settings, content))
    return StoredFile(settings, thread_id, content)


async def _store_a_file(settings: dict[str, str], content: bytes) -> str:
    import chainlit as cl
    from chainlit.context import init_http_context
    from chainlit.user import User

    from chainlit_openrag_datalayer import OpenRAGDataLayer
    from chainlit_openrag_datalayer.migrations import upgrade_async

    await upgrade_async(settings["DATABASE_URL"])
    init_http_context()
    layer = OpenRAGDataLayer.from_env(settings)
    try:
        user = await layer.create_user(User(identifier=ALICE.username))
        assert user is not None
        thread_id = str(uuid4())
        await layer.update_thread(thread_id, name="Mounted", user_id=user.id)
        await layer.create_element(cl.File(name="notes.txt", content=content, thread_id=thread_id))
    finally:
        await layer.close()
    return thread_id


def _run(app: AppServer, stack: ExitStack) -> None:
    stack.callback(app.stop)
    app.start()


def _chainlit_run(root_path: str) -> Callable[[Path, dict[str, str], ExitStack], str]:
    def start(root: Path, settings: dict[str, str], stack: ExitStack) -> str:
        app = ChainlitApp(root, settings, (ALICE.username, ALICE.password), root_path=root_path)
        _run(app, stack)
        return app.base_url

    return start


def _mounted(
    mount_path: str, parent_root_path: str = "", uvicorn_args: tuple[str, ...] = (), proxy: bool = False
) -> Callable[[Path, dict[str, str], ExitStack], str]:
    def start(root: Path, settings: dict[str, str], stack: ExitStack) -> str:
        public_prefix = "" if proxy else parent_root_path  # behind the proxy, the app is reached without it
        app = MountedApp(
            root,
            settings,
            (ALICE.username, ALICE.password),
            mount_path=mount_path,
            parent_root_path=parent_root_path,
            uvicorn_args=uvicorn_args,
            public_prefix=public_prefix,
        )
        _run(app, stack)
        if not proxy:
            return app.base_url
        front = stack.enter_context(PrefixProxy(parent_root_path, app.origin))
        return front.origin + parent_root_path + mount_path

    return start


SHAPES = [
    Shape("chainlit run", _chainlit_run("")),
    Shape("chainlit run --root-path /apps/chat", _chainlit_run("/apps/chat")),
    Shape("mount_chainlit at /chainlit", _mounted("/chainlit")),
    Shape("FastAPI root_path /api, mount_chainlit at /apps/chat", _mounted("/apps/chat", "/api")),
    Shape(
        "proxy stripping /api, uvicorn --root-path /api, mount_chainlit at /chainlit",
        _mounted("/chainlit", "/api", ("--root-path", "/api"), proxy=True),
    ),
]


@pytest.fixture(scope="module", params=SHAPES, ids=[shape.name for shape in SHAPES])
def public_base(request: pytest.FixtureRequest, stored_file: StoredFile) -> Iterator[str]:
    """The shape's app, started; yields the address browsers use for it."""
    shape: Shape = request.param
    root = Path(tempfile.mkdtemp(prefix="openrag-mounts-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        yield shape.start(root, stored_file.settings, stack)


@contextmanager
def _logged_in(public_base: str, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{public_base}/login", data={"username": username, "password": password})
        assert response.status_code == 200, f"login as {username}: {response.status_code} {response.text}"
        yield client


def test_served_file_url_opens_where_chainlit_serves_its_own_api(
    public_base: str, stored_file: StoredFile
) -> None:
    """The URL starts with the root path Chainlit gives its front end, and answers there with the file."""
    origin = httpx.URL(public_base).copy_with(path="/", query=None)
    with _logged_in(public_base, ALICE.username, ALICE.password) as alice:
        page = alice.get(f"{public_base}/")
        match = OG_ROOT_PATH.search(page.text)
        assert match is not None, f"no og:root_path in {public_base}/: {page.status_code}"
        thread = alice.get(f"{public_base}/project/thread/{stored_file.thread_id}")
        assert thread.status_code == 200, thread.text[:200]
        url = thread.json()["elements"][0]["url"]
        assert url.startswith(f"{match.group(1).rstrip('/')}{ROUTE}?")
        opened = alice.get(str(origin.join(url)))
        assert opened.status_code == 200, f"GET {url}: {opened.status_code} {opened.text[:200]}"
        assert opened.content == stored_file.content

    with _logged_in(public_base, BOB.username, BOB.password) as bob:
        assert bob.get(str(origin.join(url))).status_code == 403
    assert httpx.get(str(origin.join(url))).status_code == 401


def test_doctor_probes_the_route_and_the_refusal_of_served_py() -> None:
    """doctor never imports Chainlit, so it keeps its own copy of the route and of its answer to a URL
    without a grant; they must be served.py's."""
    assert doctor.SERVED_ROUTE == served.ROUTE_PATH
    with pytest.raises(file_grants.InvalidGrant) as refused:
        file_grants.GrantSigner(SECRET, 60).verify({})
    assert str(refused.value) == doctor.SERVED_ROUTE_ANSWER


def test_doctor_app_url_is_ok_where_served_urls_open(
    public_base: str, stored_file: StoredFile, cli: InProcessCli
) -> None:
    """At the address browsers use for the chat, whatever the shape, and with login required."""
    result = cli.run(stored_file.settings, "doctor", "--app-url", public_base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   app file route: served element URLs open under {public_base}" in result.stdout


@pytest.fixture(scope="module")
def fresh_mounted_app(stored_file: StoredFile) -> Iterator[MountedApp]:
    """The app mounted at /chainlit as OpenRAG serves it, just started: no login, no page, no socket yet,
    so Chainlit has not built the data layer."""
    root = Path(tempfile.mkdtemp(prefix="openrag-mounts-fresh-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        app = MountedApp(root, stored_file.settings, warm_up_login=None, mount_path="/chainlit")
        _run(app, stack)
        yield app


def test_doctor_app_url_is_ok_on_a_freshly_started_mounted_app(
    fresh_mounted_app: MountedApp, stored_file: StoredFile, cli: InProcessCli
) -> None:
    result = cli.run(stored_file.settings, "doctor", "--app-url", fresh_mounted_app.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"served element URLs open under {fresh_mounted_app.base_url}" in result.stdout


def test_doctor_app_url_of_the_parent_app_fails_and_asks_for_the_mount_path(
    fresh_mounted_app: MountedApp, stored_file: StoredFile, cli: InProcessCli
) -> None:
    """The FastAPI app's root is not where the chat's files open: FAIL, naming the URL and what to pass."""
    origin = fresh_mounted_app.origin
    result = cli.run(stored_file.settings, "doctor", "--app-url", origin)
    assert result.returncode == 1, result.stdout + result.stderr
    failure = next(line for line in result.stdout.splitlines() if line.startswith("FAIL"))
    assert failure.startswith(f"FAIL app file route: GET {origin}{ROUTE} answered 404")
    assert "mount path included" in failure and 'path="/chainlit"' in failure
