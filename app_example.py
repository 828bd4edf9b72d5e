"""An OpenRAG-style chat whose history is kept by chainlit-openrag-datalayer.

Run it with ``scripts/dev example`` (or ``chainlit run app_example.py``) and log in as
``alice`` / ``alice-password`` or ``bob`` / ``bob-password``.

Without ``DATABASE_URL`` and ``BUCKET_NAME`` it runs on an embedded PostgreSQL and a local folder,
both under ``.chainlit/``. No network and no model are needed: the answer is composed locally from
a small built-in corpus, then streamed with its sources (the retrieved passages, opened beside the
answer) and a relevance chart (Chainlit's Plotly element: ``pip install plotly``, which
``scripts/dev example`` does). ``chainlit.md`` next to it is the app's Readme page.
Persistence comes from the ``@cl.data_layer`` function alone; the rest is an ordinary Chainlit app.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import NamedTuple

import chainlit as cl
import plotly.graph_objects as go
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
            markdown_description="Answers from every matching passage, with sources and a relevance chart.",
            default=True,
        ),
        cl.ChatProfile(
            name=BRIEF, markdown_description="Answers from the best passage only, with its source."
        ),
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
        matches = retrieve(message.content)
        step.output = "\n".join(f"- {match.title} (score {match.score:.2f})" for match in matches)

    cited = cited_matches(matches)
    # The sources go out with the message when it is sent, once streaming is done: each cited passage
    # opens beside the answer (its name in the answer is a link), and the chart shows how they ranked.
    reply = cl.Message(
        content="",
        elements=[
            *(cl.Text(name=match.title, content=CORPUS[match.title], display="side") for match in cited),
            cl.Plotly(name="relevance", figure=relevance_chart(matches), display="inline"),
        ],
    )
    for token in re.findall(r"\S+\s*", compose(message.content, cited, uploads, len(history))):
        await reply.stream_token(token)
        await asyncio.sleep(TOKEN_DELAY_SECONDS)
    await reply.send()  # type: ignore[no-untyped-call]
    history.append({"role": "assistant", "content": reply.content})
    cl.user_session.set("history", history)  # type: ignore[no-untyped-call]


class Match(NamedTuple):  # not a dataclass: Chainlit imports this file outside sys.modules
    """How well a passage matches the question, as shares of the question's keywords."""

    title: str
    in_text: float  # keywords found in the passage's text
    in_title: float  # keywords found in its title, counted double

    @property
    def score(self) -> float:
        return self.in_text + self.in_title


def retrieve(question: str, limit: int = 3) -> list[Match]:
    """Rank the corpus by shared keywords (a title word counts double); best passage first."""
    keywords = _keywords(question)
    scale = 3 * len(keywords) or 1  # a keyword found in both text and title scores 1
    matches = [
        Match(
            title,
            in_text=len(keywords & _keywords(text)) / scale,
            in_title=2 * len(keywords & _keywords(title)) / scale,
        )
        for title, text in CORPUS.items()
    ]
    matches.sort(key=lambda match: match.score, reverse=True)
    return matches[:limit]


def _keywords(text: str) -> set[str]:
    words = re.findall(r"[a-z_]{4,}", text.lower())
    return {word.removesuffix("s") for word in words if word not in STOP_WORDS}


def cited_matches(matches: list[Match]) -> list[Match]:
    """The passages the answer uses: the best one (Brief), or every one scoring half as well (Detailed)."""
    brief = cl.user_session.get("chat_profile") == BRIEF  # type: ignore[no-untyped-call]
    best = matches[0].score
    relevant = [match for match in matches if match.score > 0 and match.score >= best / 2]
    return matches[:1] if brief or not relevant else relevant


def compose(question: str, cited: list[Match], uploads: list[cl.Element], turn: int) -> str:
    """The local stand-in for a model: one sentence from each cited passage, naming its source."""
    lines = [f"Here is what the knowledge base says about \u201c{question.strip()[:80]}\u201d:"]
    for match in cited:
        first_sentence = CORPUS[match.title].split(". ")[0].rstrip(".") + "."
        lines.append(f"- {first_sentence}")
    lines.append("\nSources: " + ", ".join(match.title for match in cited) + ".")
    if uploads:
        names = ", ".join(f"`{element.name}`" for element in uploads)
        lines.append(f"\nYou attached {names}; they are stored with this thread.")
    lines.append(f"\n(Message {turn // 2 + 1} of this conversation.)")
    return "\n".join(lines)


def relevance_chart(matches: list[Match]) -> go.Figure:
    """Horizontal bars, best passage on top, each split into what matched in the text and in the title."""
    titles = [match.title for match in reversed(matches)]
    figure = go.Figure(
        [
            go.Bar(
                name="keywords in the passage",
                y=titles,
                x=[match.in_text for match in reversed(matches)],
                orientation="h",
                marker_color="#2563eb",
            ),
            go.Bar(
                name="keywords in its title (count double)",
                y=titles,
                x=[match.in_title for match in reversed(matches)],
                orientation="h",
                marker_color="#f59e0b",
            ),
        ]
    )
    figure.update_layout(
        barmode="stack",
        template="plotly_white",
        height=280,
        margin={"l": 10, "r": 20, "t": 50, "b": 10},
        title={"text": "How well each passage matches your question", "font": {"size": 15}},
        xaxis={"title": {"text": "relevance score (share of the question's keywords)"}, "range": [0, 1]},
        yaxis={"title": {"text": "passage"}, "automargin": True},
        legend={"orientation": "h", "y": -0.35, "x": 0, "traceorder": "normal"},
    )
    return figure
