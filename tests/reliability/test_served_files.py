"""Served element files over real HTTP: what the browser receives, and who may read a shared thread's files.

A file's type is whatever the uploading browser said. Served from the app's origin, a type that
renders as HTML would run the uploader's script for every reader (stored XSS), so the route sends
the type's essence, inline only for an exact allowlist, always with ``sandbox`` and ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit

import chainlit as cl
import chainlit.data
import httpx
import pandas as pd
import plotly.graph_objects as go
import pytest
from chainlit.auth import create_jwt
from chainlit.config import config
from chainlit.types import ThreadDict
from chainlit.user import User
from playwright.async_api import Page, async_playwright, expect

from chainlit_openrag_datalayer import OpenRAGDataLayer
from chainlit_openrag_datalayer.config import S3Settings
from chainlit_openrag_datalayer.served import ROUTE_PATH
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.reliability.conftest import LayerFactory
from tests.reliability.inputs import fresh_id
from tests.reliability.test_access import new_thread, new_user
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY

PAYLOAD = "<script>console.log('script ran')</script><p>uploaded page</p>"
SVG_PAYLOAD = '<svg xmlns="http://www.w3.org/2000/svg"><script>console.log("script ran")</script></svg>'
# stored type -> (Content-Type sent, disposition)
SERVED_AS = {
    "audio/mpeg, text/html": ("application/octet-stream", "attachment"),
    "text/html": ("text/html", "attachment"),
    "TEXT/HTML; charset=utf-8": ("text/html", "attachment"),
    "image/svg+xml": ("image/svg+xml", "attachment"),
    "application/xhtml+xml": ("application/xhtml+xml", "attachment"),
    "audio/x-made-up": ("audio/x-made-up", "attachment"),
    "video/x-made-up": ("video/x-made-up", "attachment"),
    "application/json": ("application/json", "attachment"),
    "Image/PNG": ("image/png", "inline"),
    'image/png; name="x.html"': ("image/png", "inline"),
    "audio/mpeg": ("audio/mpeg", "inline"),
    "video/mp4;codecs=avc1": ("video/mp4", "inline"),
    "application/pdf": ("application/pdf", "inline"),
    "text/plain": ("text/plain; charset=utf-8", "inline"),
    "": ("application/octet-stream", "attachment"),
    "html": ("application/octet-stream", "attachment"),
    "text/": ("application/octet-stream", "attachment"),
    "/html": ("application/octet-stream", "attachment"),
    "text/html/x": ("application/octet-stream", "attachment"),
    "text /html": ("application/octet-stream", "attachment"),
    "image/png\r\nSet-Cookie: stolen=1": ("application/octet-stream", "attachment"),
    "\u0430udio/mpeg": ("application/octet-stream", "attachment"),  # a Cyrillic "a"
}


@pytest.fixture
def served_layer(layer: OpenRAGDataLayer, monkeypatch: pytest.MonkeyPatch) -> OpenRAGDataLayer:
    """``layer`` as Chainlit's data layer (no login unless a test asks for it)."""
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    return layer


@pytest.fixture
def require_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Login on, as with any authentication callback."""
    monkeypatch.setattr(config.code, "password_auth_callback", lambda username, password: None)


def as_user(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_jwt(User(identifier=user.identifier))}"}


async def file_url(layer: OpenRAGDataLayer, thread_id: str, mime: str, content: str) -> str:
    """Store a file the way an upload arrives (the browser's type, unchecked) and return its served URL."""
    element = cl.File(content=content.encode(), name=f"upload-{fresh_id()}", mime=mime, thread_id=thread_id)
    await layer.create_element(element)
    stored = await layer.get_element(thread_id, element.id)
    assert stored is not None and stored["url"] is not None
    return stored["url"]


async def anonymous_thread(layer: OpenRAGDataLayer) -> str:
    thread_id = fresh_id()
    await layer.update_thread(thread_id, name="uploads")
    return thread_id


async def test_served_type_is_the_essence_inline_only_for_the_allowlist(
    served_layer: OpenRAGDataLayer, chainlit_http: str
) -> None:
    """Parameters dropped, lower case, unparsable -> octet-stream; sandbox and nosniff on every file."""
    thread_id = await anonymous_thread(served_layer)
    received = {}
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        for stored in SERVED_AS:
            response = await http.get(await file_url(served_layer, thread_id, stored, PAYLOAD))
            assert response.status_code == 200, (stored, response.text)
            assert response.text == PAYLOAD
            headers = response.headers
            assert (headers["content-security-policy"], headers["x-content-type-options"]) == (
                "sandbox",
                "nosniff",
            )
            received[stored] = (headers["content-type"], headers["content-disposition"].split(";")[0])
    assert received == SERVED_AS


@pytest.mark.browser
async def test_chromium_runs_no_script_from_a_hostile_upload(
    served_layer: OpenRAGDataLayer, chainlit_http: str
) -> None:
    """Opened from the app's origin, each upload is downloaded or shown as text; its script never runs."""
    thread_id = await anonymous_thread(served_layer)
    downloads = [
        await file_url(served_layer, thread_id, mime, payload)
        for mime, payload in [
            ("audio/mpeg, text/html", PAYLOAD),
            ("text/html", PAYLOAD),
            ("image/svg+xml", SVG_PAYLOAD),
        ]
    ]
    shown_as_text = await file_url(served_layer, thread_id, "text/plain", PAYLOAD)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            console = []
            page.on("console", lambda message: console.append(message.text))
            await page.goto(chainlit_http + ROUTE_PATH)  # a page of the app's origin (a 403 text)
            # The control: the same payload in a frame of this page does run, so detection works.
            async with page.expect_console_message(lambda message: "script ran" in message.text):
                await open_in_frame(page, PAYLOAD, attribute="srcdoc")
            for url in downloads:
                async with page.expect_download():
                    await open_in_frame(page, url)
            await open_in_frame(page, shown_as_text)
            await expect(page.frame_locator("iframe >> nth=-1").locator("body")).to_have_text(PAYLOAD)
            assert console.count("script ran") == 1  # the control's
        finally:
            await browser.close()


async def open_in_frame(page: Page, value: str, attribute: str = "src") -> None:
    """Add an iframe showing ``value`` (a URL, or with ``srcdoc`` a document) to the page."""
    await page.evaluate(
        "([attribute, value]) => document.body.append("
        "Object.assign(document.createElement('iframe'), {[attribute]: value}))",
        [attribute, value],
    )


@pytest.mark.parametrize(
    "signature",
    ["\u00e9" * 43, "%C3%A9", "%FF%FE", "\x00", "", "A" * 43, "A" * 4000, "\ud800"],
    ids=["non-ascii", "encoded-non-ascii", "invalid-utf8", "nul", "empty", "wrong", "long", "surrogate"],
)
async def test_malformed_signature_is_refused_with_403(
    served_layer: OpenRAGDataLayer, chainlit_http: str, signature: str
) -> None:
    url = await file_url(served_layer, await anonymous_thread(served_layer), "text/plain", "private")
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    raw = f"s={signature}" if "%" in signature else urlencode({"s": signature}, errors="surrogatepass")
    forged = "&".join([urlencode({k: v for k, v in query.items() if k != "s"}), raw])
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        response = await http.get(parts._replace(query=forged).geturl())
    assert response.status_code == 403, response.text


ARABIC_INDIC_TIMESTAMP = "".join(chr(0x0660 + int(digit)) for digit in "99999999999")


@pytest.mark.parametrize("expiry", [ARABIC_INDIC_TIMESTAMP, "-1", "", "1e99"])
async def test_malformed_expiry_is_refused_with_403(
    served_layer: OpenRAGDataLayer, chainlit_http: str, expiry: str
) -> None:
    """Even signed: an expiry in Arabic-Indic digits (which ``int()`` accepts) is not a timestamp."""
    url = await file_url(served_layer, await anonymous_thread(served_layer), "text/plain", "private")
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    grant = {**query, "e": expiry}
    grant["s"] = served_layer.served_files.signer._signature(grant)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        response = await http.get(ROUTE_PATH, params=grant)
    assert response.status_code == 403, response.text


# --- shared threads --------------------------------------------------------------------------------

SharedThreadView = Callable[[ThreadDict, User | None], Awaitable[bool]]
# Chainlit 2.2.1 has no thread sharing (no /project/share, no on_shared_thread_view).
with_sharing = pytest.mark.skipif(
    not hasattr(config.code, "on_shared_thread_view"), reason="this Chainlit has no thread sharing"
)


def on_shared_thread_view(monkeypatch: pytest.MonkeyPatch, view: SharedThreadView) -> list[str]:
    """Install ``view`` as the app's ``@cl.on_shared_thread_view``; returns who it was asked about."""
    asked: list[str] = []

    async def callback(thread: ThreadDict, viewer: User | None) -> bool:
        asked.append(viewer.identifier if viewer else "")
        return await view(thread, viewer)

    monkeypatch.setattr(config.code, "on_shared_thread_view", callback)
    return asked


async def admits_nobody(thread: ThreadDict, viewer: User | None) -> bool:
    return False


async def thread_with_files(layer: OpenRAGDataLayer) -> tuple[User, str, dict[str, bytes]]:
    """An owner, their thread, and its files' served URLs (as the owner reads them) with their bytes."""
    owner = await new_user(layer)
    thread_id = await new_thread(layer, owner.id, "with files")
    files = {"notes.txt": ("text/plain", b"shared notes"), "chart.png": ("image/png", b"\x89PNG chart")}
    for name, (mime, content) in files.items():
        await layer.create_element(cl.File(content=content, name=name, mime=mime, thread_id=thread_id))
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["elements"] is not None
    urls = {element["url"]: files[element["name"]][1] for element in thread["elements"] if element["url"]}
    assert len(urls) == 2
    return owner, thread_id, urls


async def share(layer: OpenRAGDataLayer, thread_id: str, shared: bool) -> None:
    """What Chainlit's share endpoint (PUT /project/thread/share) writes."""
    shared_at = "2026-12-01T10:00:00Z" if shared else None
    await layer.update_thread(thread_id, metadata={"is_shared": shared, "shared_at": shared_at})


async def statuses(http: httpx.AsyncClient, urls: Iterable[str], viewer: User | None) -> set[int]:
    """The statuses ``viewer`` (None: anonymous) gets for ``urls``."""
    headers = as_user(viewer) if viewer else {}
    return {(await http.get(url, headers=headers)).status_code for url in urls}


@with_sharing
@pytest.mark.usefixtures("require_login")
async def test_shared_thread_files_open_for_a_viewer_chainlit_admits(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewer reads the thread from Chainlit's share endpoint, then every file it links to."""

    async def shared_only(thread: ThreadDict, viewer: User | None) -> bool:
        return bool((thread.get("metadata") or {}).get("is_shared"))

    on_shared_thread_view(monkeypatch, shared_only)
    _, thread_id, files = await thread_with_files(served_layer)
    await share(served_layer, thread_id, True)
    viewer = await new_user(served_layer)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        thread = await http.get(f"/project/share/{thread_id}", headers=as_user(viewer))
        assert thread.status_code == 200
        for element in thread.json()["elements"]:
            response = await http.get(element["url"], headers=as_user(viewer))
            assert response.status_code == 200, response.text
            assert response.content in files.values()


@with_sharing
@pytest.mark.usefixtures("require_login")
async def test_viewer_admitted_by_the_callback_alone_reads_an_unshared_threads_files(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``on_shared_thread_view`` may admit a viewer (an auditor) to a thread its owner never shared."""
    _, thread_id, files = await thread_with_files(served_layer)
    auditor, other = await new_user(served_layer), await new_user(served_layer)

    async def auditors(thread: ThreadDict, viewer: User | None) -> bool:
        return viewer is not None and viewer.identifier == auditor.identifier

    asked = on_shared_thread_view(monkeypatch, auditors)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        assert (await http.get(f"/project/share/{thread_id}", headers=as_user(auditor))).status_code == 200
        assert (await http.get(f"/project/share/{thread_id}", headers=as_user(other))).status_code == 404
        assert await statuses(http, files, auditor) == {200}
        assert await statuses(http, files, other) == {403}
    assert set(asked) == {auditor.identifier, other.identifier}


@with_sharing
@pytest.mark.usefixtures("require_login")
async def test_unshared_thread_files_stay_with_their_owner(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL passed on by the owner, or kept from while the thread was shared, opens for nobody else."""
    on_shared_thread_view(monkeypatch, admits_nobody)
    owner, thread_id, files = await thread_with_files(served_layer)
    viewer = await new_user(served_layer)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        assert await statuses(http, files, viewer) == {403}
        await share(served_layer, thread_id, True)
        assert await statuses(http, files, viewer) == {200}  # Chainlit admits anyone to a shared thread
        await share(served_layer, thread_id, False)
        assert await statuses(http, files, viewer) == {403}
        assert await statuses(http, files, owner) == {200}
        assert await statuses(http, files, None) == {401}


@with_sharing
@pytest.mark.usefixtures("require_login")
async def test_a_failing_share_callback_refuses_the_files(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in Chainlit's share endpoint, an exception in the callback counts as "no"."""

    async def broken(thread: ThreadDict, viewer: User | None) -> bool:
        raise RuntimeError("directory service down")

    on_shared_thread_view(monkeypatch, broken)
    _, _, files = await thread_with_files(served_layer)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        assert await statuses(http, files, await new_user(served_layer)) == {403}


@with_sharing
@pytest.mark.usefixtures("require_login")
async def test_deleted_thread_files_open_for_no_viewer(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def everyone(thread: ThreadDict, viewer: User | None) -> bool:
        return True

    on_shared_thread_view(monkeypatch, everyone)
    _, thread_id, files = await thread_with_files(served_layer)
    viewer = await new_user(served_layer)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        assert await statuses(http, files, viewer) == {200}
        await served_layer.delete_thread(thread_id)
        assert await statuses(http, files, viewer) == {403}


@pytest.mark.usefixtures("require_login")
async def test_without_chainlit_sharing_files_stay_with_their_owner(
    served_layer: OpenRAGDataLayer, chainlit_http: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a Chainlit release without sharing, even ``is_shared`` in the metadata admits nobody else."""
    monkeypatch.delattr(config.code, "on_shared_thread_view", raising=False)
    owner, thread_id, files = await thread_with_files(served_layer)
    await share(served_layer, thread_id, True)
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        assert await statuses(http, files, await new_user(served_layer)) == {403}
        assert await statuses(http, files, owner) == {200}


# --- presigned mode ----------------------------------------------------------------------------------


async def test_presigned_mode_serves_script_fetched_elements_from_the_app(
    make_layer: LayerFactory,
    s3_server: str,
    bucket_name: str,
    chainlit_http: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Text, Plotly, Dataframe, TaskList and Pdf come from the app's origin (no bucket CORS needed);
    tags the browser loads itself (image, audio, video, file links) keep their presigned S3 URL."""
    s3 = S3Settings(bucket_name, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, endpoint_url=s3_server)
    layer = await make_layer(s3=s3)
    monkeypatch.setattr(chainlit.data, "_data_layer", layer)
    thread_id = await anonymous_thread(layer)
    elements = [
        cl.Text(name="text", content="a note"),
        cl.Pdf(name="pdf", content=b"%PDF-1.4 not really"),
        cl.Plotly(name="plotly", figure=go.Figure(go.Bar(x=["a"], y=[1]))),
        cl.Dataframe(name="dataframe", data=pd.DataFrame({"a": [1]})),
        cl.TaskList(name="tasklist"),
        cl.Image(name="image", content=b"\x89PNG image"),
        cl.Audio(name="audio", content=b"RIFF audio"),
        cl.Video(name="video", content=b"video bytes"),
        cl.File(name="file", content=b"file bytes"),
    ]
    for element in elements:
        element.thread_id = thread_id
        if isinstance(element, cl.TaskList):
            await element.preprocess_content()  # type: ignore[no-untyped-call]  # as TaskList.send does
        await layer.create_element(element)
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["elements"] is not None
    origins = {}
    async with httpx.AsyncClient(base_url=chainlit_http) as http:
        for stored in thread["elements"]:
            assert stored["url"] is not None
            response = await http.get(stored["url"])
            assert response.status_code == 200, (stored["name"], response.text)
            origins[stored["name"]] = "s3" if stored["url"].startswith(s3_server) else "app"
    assert origins == {
        "text": "app", "pdf": "app", "plotly": "app", "dataframe": "app", "tasklist": "app",
        "image": "s3", "audio": "s3", "video": "s3", "file": "s3",
    }  # fmt: skip


async def test_presigned_hostile_upload_is_a_download_from_the_bucket(
    make_layer: LayerFactory, s3_server: str, bucket_name: str
) -> None:
    """S3 answers with the stored type and disposition: the essence, and attachment unless allowlisted."""
    s3 = S3Settings(bucket_name, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY, endpoint_url=s3_server)
    layer = await make_layer(s3=s3)
    thread_id = await anonymous_thread(layer)
    received = {}
    async with httpx.AsyncClient() as http:
        for stored in ("audio/mpeg, text/html", "text/html", "Image/PNG; x=1"):
            url = await file_url(layer, thread_id, stored, PAYLOAD)
            assert url.startswith(s3_server)
            headers = (await http.get(url)).headers
            received[stored] = (headers["content-type"], headers["content-disposition"].split(";")[0])
    assert received == {
        "audio/mpeg, text/html": ("application/octet-stream", "attachment"),
        "text/html": ("text/html", "attachment"),
        "Image/PNG; x=1": ("image/png", "inline"),
    }
