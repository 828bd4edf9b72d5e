"""An OpenRAG-style chat whose history is kept by chainlit-openrag-datalayer.

Run it with ``scripts/dev example`` (or ``chainlit run app_example.py``) and log in as
``alice`` / ``alice-password`` or ``bob`` / ``bob-password``.

Without ``DATABASE_URL`` and ``BUCKET_NAME`` it runs on an embedded PostgreSQL and a local folder,
both under ``.chainlit/``. No network and no model are needed: the answer is composed locally from
a small built-in corpus, then streamed with its sources (a text passage and a relevance chart).
Persistence comes from the ``@cl.data_layer`` function alone; the rest is an ordinary Chainlit app.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import secrets
import struct
import zlib
from pathlib import Path

import chainlit as cl
from chainlit.config import APP_ROOT
from chainlit.types import ThreadDict

from chainlit_openrag_datalayer import OpenRAGDataLayer

# Chainlit leaves cl.user_session.get/set and Message.send unannotated, hence the
# `type: ignore[no-untyped-call]` on those calls (mypy runs in strict mode).

USERS = {"alice": "alice-password", "bob": "bob-password"}  # development accounts, see the README
DETAILED, BRIEF = "Detailed", "Brief"
TOKEN_DELAY_SECONDS = 0.02
STOP_WORDS = frozenset(
    ["about", "does", "from", "have", "into", "that", "their", "this", "what", "where", "which", "with"]
)
CORPUS = {
    "Embedded database": (
        "Without DATABASE_URL, chat history is stored in an embedded PostgreSQL server whose data "
        "directory lives in .chainlit/pgdata. It is migrated automatically on first use and stopped "
        "when the app exits."
    ),
    "Element storage": (
        "Files attached to messages are element objects. With BUCKET_NAME they go to S3 or any "
        "S3-compatible store; otherwise they are written to .chainlit/element-files and served by "
        "the app itself through short-lived signed URLs."
    ),
    "Feedback": (
        "Every answer can be rated with a thumbs up or down. Ratings are stored with the message, "
        "so they survive a reload, and the history sidebar can filter threads by feedback."
    ),
    "Chat profiles": (
        "A chat profile selects how the assistant answers. Chainlit tags each thread with the "
        "profile it was started with, and the tag is stored with the thread."
    ),
    "Resuming threads": (
        "Opening a thread from the history sidebar resumes it: the messages, steps and elements "
        "are read back from PostgreSQL and the conversation continues where it stopped."
    ),
}


def use_development_auth_secret() -> None:
    """Keep one CHAINLIT_AUTH_SECRET per checkout when none is set.

    Login cookies and served file URLs are signed with it, so it must survive restarts. Chainlit
    checks for it right after importing this module, hence the module-level call below.
    """
    if os.environ.get("CHAINLIT_AUTH_SECRET"):
        return
    path = Path(APP_ROOT) / ".chainlit" / ".auth_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    os.environ["CHAINLIT_AUTH_SECRET"] = path.read_text().strip()


use_development_auth_secret()


@cl.data_layer
def data_layer() -> OpenRAGDataLayer:
    return OpenRAGDataLayer.from_env()


@cl.password_auth_callback
async def password_auth_callback(username: str, password: str) -> cl.User | None:
    expected = USERS.get(username)
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        return None
    return cl.User(identifier=username, metadata={"role": "user", "provider": "credentials"})


@cl.set_chat_profiles
async def chat_profiles(user: cl.User | None) -> list[cl.ChatProfile]:
    return [
        cl.ChatProfile(
            name=DETAILED,
            markdown_description="Answers with every matching passage, its sources and a relevance chart.",
            default=True,
        ),
        cl.ChatProfile(name=BRIEF, markdown_description="One-sentence answers, with their sources."),
    ]


@cl.on_chat_start
async def start() -> None:
    cl.user_session.set("history", [])  # type: ignore[no-untyped-call]


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    """Rebuild the conversation that ``answer`` keeps in the session from the stored steps."""
    roles = {"user_message": "user", "assistant_message": "assistant"}
    history = [
        {"role": roles[step["type"]], "content": step.get("output") or ""}
        for step in thread["steps"]
        if step["type"] in roles
    ]
    cl.user_session.set("history", history)  # type: ignore[no-untyped-call]


@cl.on_message
async def answer(message: cl.Message) -> None:
    history: list[dict[str, str]] = cl.user_session.get("history") or []  # type: ignore[no-untyped-call]
    history.append({"role": "user", "content": message.content})
    uploads = [element for element in message.elements if element.path]

    async with cl.Step(name="retrieve", type="retrieval") as step:
        step.input = message.content
        passages = retrieve(message.content)
        step.output = "\n".join(f"- {title} (score {score:.2f})" for title, score in passages)

    best_title = passages[0][0]
    # The sources go out with the message when it is sent, once streaming is done.
    reply = cl.Message(
        content="",
        elements=[
            cl.Text(name=f"Source: {best_title}", content=CORPUS[best_title], display="inline"),
            cl.Image(
                name="relevance.png", content=relevance_chart(passages), mime="image/png", display="inline"
            ),
        ],
    )
    for token in re.findall(r"\S+\s*", compose(message.content, passages, uploads, len(history))):
        await reply.stream_token(token)
        await asyncio.sleep(TOKEN_DELAY_SECONDS)
    await reply.send()  # type: ignore[no-untyped-call]
    history.append({"role": "assistant", "content": reply.content})
    cl.user_session.set("history", history)  # type: ignore[no-untyped-call]


def retrieve(question: str, limit: int = 3) -> list[tuple[str, float]]:
    """Rank the corpus by shared keywords (a title word counts double); best passage first."""
    keywords = _keywords(question)
    scores = []
    for title, text in CORPUS.items():
        hits = len(keywords & _keywords(text)) + 2 * len(keywords & _keywords(title))
        scores.append((title, hits / (3 * len(keywords) or 1)))
    scores.sort(key=lambda item: item[1], reverse=True)
    return scores[:limit]


def _keywords(text: str) -> set[str]:
    words = re.findall(r"[a-z_]{4,}", text.lower())
    return {word.removesuffix("s") for word in words if word not in STOP_WORDS}


def compose(question: str, passages: list[tuple[str, float]], uploads: list[cl.Element], turn: int) -> str:
    """The local stand-in for a model: quote the best passages, mention the attached files."""
    brief = cl.user_session.get("chat_profile") == BRIEF  # type: ignore[no-untyped-call]
    relevant = [p for p in passages if p[1] > 0 and p[1] >= passages[0][1] / 2]
    chosen = passages[:1] if brief or not relevant else relevant
    lines = [f"Here is what the knowledge base says about \u201c{question.strip()[:80]}\u201d:"]
    for title, _ in chosen:
        text = CORPUS[title]
        lines.append(f"- **{title}**: {text.split('. ')[0] + '.' if brief else text}")
    if uploads:
        names = ", ".join(f"`{element.name}`" for element in uploads)
        lines.append(f"\nYou attached {names}; they are stored with this thread.")
    lines.append(f"\n(Message {turn // 2 + 1} of this conversation.)")
    return "\n".join(lines)


def relevance_chart(passages: list[tuple[str, float]], width: int = 120, height: int = 48) -> bytes:
    """A small PNG bar chart of the retrieval scores, encoded by hand (no imaging library)."""
    bar = width // len(passages)
    rows = []
    for y in range(height):
        row = bytearray([0])  # PNG filter type "none" for this scanline
        for x in range(width):
            score = passages[min(x // bar, len(passages) - 1)][1]
            filled = height - y <= max(score, 0.05) * height and x % bar < bar - 4
            row += bytes((37, 99, 235) if filled else (241, 245, 249))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
