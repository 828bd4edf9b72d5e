"""One conversation written into a database this package did not create.

The Prisma shape is filled through Chainlit's own `ChainlitDataLayer`; the OpenRAG init-script shape through
plain SQL, as OpenRAG's hand-written schema was filled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from uuid import uuid4

import asyncpg
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.data.storage_clients.s3 import S3StorageClient
from chainlit.types import Feedback
from chainlit.user import User

from tests.conformance.factories import message_dict, text_element, timestamp
from tests.services import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, s3_client


@dataclass
class Conversation:
    """What was written: a user, one thread, a question, its answer, a file on the answer, feedback on it."""

    identifier: str = field(default_factory=lambda: f"user-{uuid4()}")
    user_id: str = ""
    thread_id: str = field(default_factory=lambda: str(uuid4()))
    question_id: str = field(default_factory=lambda: str(uuid4()))
    answer_id: str = field(default_factory=lambda: str(uuid4()))
    element_id: str = ""
    object_key: str = ""
    feedback_id: str = ""
    question: str = "What is OpenRAG?"
    answer: str = "A retrieval-augmented generation platform."
    file_content: bytes = b"notes kept next to the answer"
    user_metadata: dict[str, object] = field(default_factory=lambda: {"role": "admin"})
    thread_metadata: dict[str, object] = field(default_factory=lambda: {"chat_profile": "rag"})
    tags: list[str] = field(default_factory=lambda: ["rag", "support"])
    name: str = "About OpenRAG"


def builtin_layer(database_url: str, s3_endpoint: str, bucket: str) -> ChainlitDataLayer:
    """Chainlit's ChainlitDataLayer with its S3 client on the moto server; close it with `close_builtin`."""
    storage = S3StorageClient(
        bucket=bucket,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        endpoint_url=s3_endpoint,
    )
    return ChainlitDataLayer(database_url=database_url, storage_client=storage)


async def close_builtin(layer: ChainlitDataLayer) -> None:
    """`ChainlitDataLayer.close()` awaits boto3's sync close() and raises TypeError: close the parts apart."""
    await layer.cleanup()  # type: ignore[no-untyped-call]
    if layer.storage_client is not None:
        layer.storage_client.client.close()  # type: ignore[attr-defined]


async def write_with_builtin_layer(layer: ChainlitDataLayer) -> Conversation:
    """The conversation, written the way a Chainlit app with the built-in layer writes it."""
    talk = Conversation()
    user = await layer.create_user(User(identifier=talk.identifier, metadata=talk.user_metadata))
    assert user is not None
    talk.user_id = user.id
    await layer.update_thread(
        talk.thread_id, name=talk.name, user_id=user.id, metadata=talk.thread_metadata, tags=talk.tags
    )
    await layer.create_step(message_dict(talk.thread_id, talk.question, step_id=talk.question_id))
    answered = timestamp(seconds=1)
    await layer.create_step(
        message_dict(
            talk.thread_id, talk.answer, type="assistant_message", step_id=talk.answer_id, created_at=answered
        )
    )
    element = text_element(talk.thread_id, talk.answer_id, content=talk.file_content.decode())
    await layer.create_element(element)
    talk.element_id = element.id
    talk.object_key = f"threads/{talk.thread_id}/files/{element.id}"
    talk.feedback_id = await layer.upsert_feedback(Feedback(forId=talk.answer_id, value=1, comment="helpful"))
    return talk


async def write_prisma_conversation(database_url: str, s3_endpoint: str, bucket: str) -> Conversation:
    """Create the bucket, then write the conversation through Chainlit's built-in layer."""
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    client.close()
    layer = builtin_layer(database_url, s3_endpoint, bucket)
    try:
        return await write_with_builtin_layer(layer)
    finally:
        await close_builtin(layer)


async def write_openrag_init_conversation(database_url: str, s3_endpoint: str, bucket: str) -> Conversation:
    """The conversation in the init-script shape: uuid ids, text metadata, jsonb step input and output."""
    talk = Conversation(element_id=str(uuid4()), feedback_id=str(uuid4()))
    talk.object_key = f"threads/{talk.thread_id}/files/{talk.element_id}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=talk.object_key, Body=talk.file_content, ContentType="text/plain")
    client.close()
    connection = await asyncpg.connect(database_url)
    try:
        talk.user_id = str(
            await connection.fetchval(
                'INSERT INTO "User" (identifier, metadata) VALUES ($1, $2) RETURNING id',
                talk.identifier,
                json.dumps(talk.user_metadata),
            )
        )
        await _insert_openrag_thread(connection, talk)
    finally:
        await connection.close()
    return talk


async def _insert_openrag_thread(connection: asyncpg.Connection, talk: Conversation) -> None:
    await connection.execute(
        'INSERT INTO "Thread" (id, name, "userId", tags, metadata) VALUES ($1, $2, $3, $4, $5)',
        talk.thread_id, talk.name, talk.user_id, talk.tags, json.dumps(talk.thread_metadata),
    )  # fmt: skip
    step = (
        'INSERT INTO "Step" (id, "threadId", input, output, name, type, "startTime", "endTime", "createdAt")'
        " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, now() + $7 * interval '1 second',"
        " now() + $7 * interval '1 second', now() + $7 * interval '1 second')"
    )
    await connection.execute(
        step, talk.question_id, talk.thread_id, "{}", json.dumps(talk.question), "User", "user_message", 0
    )
    await connection.execute(
        step,
        talk.answer_id,
        talk.thread_id,
        "{}",
        json.dumps(talk.answer),
        "Assistant",
        "assistant_message",
        1,
    )
    await connection.execute(
        'INSERT INTO "Element" (id, "threadId", "stepId", metadata, mime, name, "objectKey", display)'
        " VALUES ($1, $2, $3, $4, 'text/plain', 'notes.txt', $5, 'inline')",
        talk.element_id, talk.thread_id, talk.answer_id, json.dumps({"type": "text"}), talk.object_key,
    )  # fmt: skip
    await connection.execute(
        'INSERT INTO "Feedback" (id, "stepId", value, comment) VALUES ($1, $2, 1, $3)',
        talk.feedback_id, talk.answer_id, "helpful",
    )  # fmt: skip
