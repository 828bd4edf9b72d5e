"""A Chainlit app that uses every element type and feature the data layer has to keep.

Driven by ``tests/browser/test_features.py``, once with presigned S3 URLs and once with served URLs.
Users ``alice``, ``bob`` and ``carol`` log in with ``<name>-password``. Carol is an auditor:
``on_shared_thread_view`` admits her to any thread; anyone else sees another user's thread only when
its owner shared it (Chainlit itself admits every viewer to a shared thread).

Messages it understands: ``elements`` (one answer carrying every element type, a task list and
nested tool steps), ``update the tally`` (the custom element's props replaced, one removed), ``ask``
(AskUserMessage, AskFileMessage, AskActionMessage in turn); anything else is echoed with the names
of the attached files, the chat profile and the chat settings.
"""

from __future__ import annotations

import hmac
import io
import math
import struct
import wave
from pathlib import Path

import chainlit as cl
import matplotlib
import pandas as pd
import plotly.graph_objects as go
from chainlit.config import config
from chainlit.input_widget import Select, Switch
from chainlit.types import ThreadDict

from chainlit_openrag_datalayer import OpenRAGDataLayer

matplotlib.use("Agg")  # no display; Pyplot elements are rendered to PNG

from matplotlib.figure import Figure  # after choosing the backend

USERS = {name: f"{name}-password" for name in ("alice", "bob", "carol")}
AUDITORS = {"carol"}
PROFILES = ("Tour", "Quiet")
CLIP = Path(__file__).with_name("clip.webm")  # 1 s of VP8, recorded by Chromium's MediaRecorder

# What a config.toml would say; set here so that the app is one file the suite can start anywhere.
config.features.allow_thread_sharing = True
config.features.favorites = True


@cl.data_layer
def data_layer() -> OpenRAGDataLayer:
    return OpenRAGDataLayer.from_env()


@cl.password_auth_callback
async def password_auth_callback(username: str, password: str) -> cl.User | None:
    expected = USERS.get(username)
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        return None
    return cl.User(identifier=username)


@cl.on_shared_thread_view
async def on_shared_thread_view(thread: ThreadDict, viewer: cl.User | None) -> bool:
    return viewer is not None and viewer.identifier in AUDITORS


@cl.set_chat_profiles
async def chat_profiles(user: cl.User | None) -> list[cl.ChatProfile]:
    return [
        cl.ChatProfile(name=name, markdown_description=f"The {name.lower()} profile.") for name in PROFILES
    ]


@cl.set_starters
async def starters(user: cl.User | None) -> list[cl.Starter]:
    return [
        cl.Starter(label="Show every element", message="elements"),
        cl.Starter(label="Ask me things", message="ask"),
    ]


def chat_settings(values: dict[str, object]) -> cl.ChatSettings:
    """The settings dialog, showing ``values`` (the thread's settings when it is resumed)."""
    tone = str(values.get("tone", "plain"))
    sources = bool(values.get("sources", True))
    return cl.ChatSettings(
        [
            Select(id="tone", label="Tone", values=["plain", "lively"], initial_value=tone),
            Switch(id="sources", label="Show sources", initial=sources),
        ]
    )


@cl.on_chat_start
async def start() -> None:
    await chat_settings({}).send()  # type: ignore[no-untyped-call]


@cl.on_settings_update
async def settings_updated(settings: dict[str, object]) -> None:
    await cl.Message(content=f"Settings now: tone={settings['tone']}, sources={settings['sources']}").send()  # type: ignore[no-untyped-call]


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    """Chainlit restores the session's settings from the thread; the dialog is the app's to send."""
    values = cl.user_session.get("chat_settings") or {}  # type: ignore[no-untyped-call]
    await chat_settings(values).send()  # type: ignore[no-untyped-call]


@cl.on_message
async def answer(message: cl.Message) -> None:
    if message.content == "elements":
        await every_element()
    elif message.content == "ask":
        await ask_in_turn()
    elif message.content == "update the tally":
        await update_tally()
    else:
        names = ", ".join(element.name for element in message.elements) or "no file"
        settings = cl.user_session.get("chat_settings")  # type: ignore[no-untyped-call]
        profile = cl.user_session.get("chat_profile")  # type: ignore[no-untyped-call]
        await cl.Message(
            content=f"Echo: {message.content} ({names}; profile {profile}; settings {settings})"
        ).send()  # type: ignore[no-untyped-call]


async def every_element() -> None:
    """Nested tool steps, a task list, then one answer with every element type."""
    async with cl.Step(name="plan", type="tool") as outer:
        outer.input = "what to show"
        async with cl.Step(name="lookup", type="tool") as inner:
            inner.input = "inner input"
            inner.output = "inner output"
        outer.output = "outer output"

    tasks = cl.TaskList(status="Done")
    await tasks.add_task(cl.Task(title="Collect the elements", status=cl.TaskStatus.DONE))
    await tasks.add_task(cl.Task(title="Render them", status=cl.TaskStatus.DONE))
    await tasks.send()  # type: ignore[no-untyped-call]

    tally = cl.CustomElement(name="Tally", props={"title": "tally", "count": 1, "draft": "a draft"})
    elements: list[cl.Element] = [
        cl.Image(name="pixels.png", content=png_chart(), display="inline"),
        cl.File(name="notes.txt", content=b"plain notes\n", display="inline"),
        cl.Pdf(name="booklet.pdf", content=two_page_pdf(), display="inline", page=2),
        cl.Audio(name="tone.wav", content=tone_wav(), display="inline"),
        cl.Video(name="clip.webm", path=str(CLIP), display="inline", mime="video/webm"),
        cl.Plotly(name="bars", figure=plotly_figure(), display="inline"),
        cl.Pyplot(name="line", figure=pyplot_figure(), display="inline"),
        cl.Dataframe(
            name="table",
            data=pd.DataFrame({"city": ["Lyon", "Oslo"], "rain_mm": [830, 760]}),
            display="inline",
        ),
        cl.Text(name="inline-note", content="An inline note.", display="inline"),
        cl.Text(name="side-note", content="A note in the side panel.", display="side"),
        cl.Text(name="page-note", content="A note on its own page.", display="page"),
        tally,
    ]
    await cl.Message(content="Every element: side-note, page-note.", elements=elements).send()  # type: ignore[no-untyped-call]
    cl.user_session.set("tally", tally)  # type: ignore[no-untyped-call]


async def update_tally() -> None:
    """Replace the tally's props, "draft" removed, once its first version is stored."""
    tally: cl.CustomElement = cl.user_session.get("tally")  # type: ignore[no-untyped-call]
    tally.props = {"title": "tally", "count": 2}
    await tally.update()  # type: ignore[no-untyped-call]
    await cl.Message(content="Tally updated.").send()  # type: ignore[no-untyped-call]


async def ask_in_turn() -> None:
    name = await cl.AskUserMessage(content="What is your name?").send()
    files = await cl.AskFileMessage(content="Send a text file.", accept=["text/plain"]).send()
    choice = await cl.AskActionMessage(
        content="Keep going?",
        actions=[
            cl.Action(name="yes", payload={"value": "yes"}, label="Yes"),
            cl.Action(name="no", payload={"value": "no"}, label="No"),
        ],
    ).send()
    received = files[0] if files else None
    elements = [cl.File(name=received.name, path=received.path)] if received else []
    summary = (
        f"Name {name['output'] if name else None}, file {received.name if received else None}, "
        f"choice {choice['payload']['value'] if choice else None}."
    )
    await cl.Message(content=summary, elements=elements).send()  # type: ignore[no-untyped-call]


def plotly_figure() -> go.Figure:
    figure = go.Figure(go.Bar(x=["north", "south"], y=[3, 5], name="rainy days"))
    figure.update_layout(title="Rainy days", xaxis_title="region", yaxis_title="days")
    return figure


def pyplot_figure() -> Figure:
    figure = Figure(figsize=(3, 2))
    axes = figure.subplots()
    axes.plot([1, 2, 3], [2, 1, 3], label="level")
    axes.set_xlabel("hour")
    axes.set_ylabel("metres")
    axes.legend()
    return figure


def png_chart() -> bytes:
    figure = Figure(figsize=(1, 1))
    figure.subplots().bar([1, 2], [1, 2])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def tone_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A 440 Hz tone as 16-bit mono WAV."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def two_page_pdf() -> bytes:
    """A PDF whose pages say "Page 1" and "Page 2", written object by object."""
    pages = [f"BT /F1 24 Tf 40 100 Td (Page {n}) Tj ET".encode() for n in (1, 2)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 2 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for number, stream in enumerate(pages):
        content_ref = 5 + 2 * number
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents {content_ref} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
