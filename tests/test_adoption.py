"""`upgrade` adopts the databases OpenRAG deployments have: Prisma-shaped, OpenRAG init-script, empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from uuid import uuid4

import asyncpg
import pytest
from chainlit.types import Pagination, ThreadFilter

from chainlit_openrag_datalayer import OpenRAGDataLayer, Settings
from chainlit_openrag_datalayer.errors import SchemaConflictError
from chainlit_openrag_datalayer.migrations import upgrade_async
from tests.cli_support import InProcessCli
from tests.conformance.objects import fetch as fetch_url
from tests.legacy_data import Conversation, write_openrag_init_conversation, write_prisma_conversation
from tests.openrag_init_schema import create_openrag_init_schema
from tests.prisma_schema import create_prisma_schema

TABLES = ["User", "Thread", "Step", "Element", "Feedback", "chainlit_openrag_datalayer_version"]
OpenLayer = Callable[[], OpenRAGDataLayer]


pytestmark = pytest.mark.usefixtures("chainlit_context")


@pytest.fixture
async def open_layer(database_url: str, s3_environ: dict[str, str]) -> AsyncIterator[OpenLayer]:
    """Opens OpenRAGDataLayer on the test database and bucket; closes every layer it opened."""
    layers: list[OpenRAGDataLayer] = []

    def opener() -> OpenRAGDataLayer:
        layers.append(OpenRAGDataLayer(Settings.from_env({"DATABASE_URL": database_url, **s3_environ})))
        return layers[-1]

    yield opener
    for layer in layers:
        await layer.close()


@pytest.fixture
async def prisma_talk(database_url: str, s3_server: str, bucket_name: str) -> Conversation:
    """A Prisma-shaped database holding one conversation written by Chainlit's built-in layer."""
    await create_prisma_schema(database_url)
    return await write_prisma_conversation(database_url, s3_server, bucket_name)


@pytest.fixture
async def openrag_talk(database_url: str, s3_server: str, bucket_name: str) -> Conversation:
    """An OpenRAG init-script database holding one conversation."""
    await create_openrag_init_schema(database_url)
    return await write_openrag_init_conversation(database_url, s3_server, bucket_name)


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def schema_of(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Columns, indexes and constraints of our tables, as comparable tuples."""
    columns = await fetch(
        database_url,
        "SELECT table_name, ordinal_position, column_name, udt_name, is_nullable, column_default,"
        " datetime_precision FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY($1) ORDER BY 1, 2",
        TABLES,
    )
    indexes = await fetch(
        database_url,
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public' AND tablename = ANY($1) ORDER BY 1",
        TABLES,
    )
    constraints = await fetch(
        database_url,
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = ANY($1) ORDER BY 1, 2",
        TABLES,
    )
    return {name: [tuple(row) for row in rows] for name, rows in
            (("columns", columns), ("indexes", indexes), ("constraints", constraints))}  # fmt: skip


# --- Prisma (chainlit-datalayer) ----------------------------------------------------------------------------


async def test_adopted_prisma_user_keeps_id_identifier_and_metadata(
    prisma_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """The user written by the built-in layer is the same user after adoption."""
    await upgrade_async(database_url)
    user = await open_layer().get_user(prisma_talk.identifier)
    assert user is not None
    assert (user.id, user.metadata) == (prisma_talk.user_id, prisma_talk.user_metadata)


async def test_adopted_prisma_thread_keeps_name_tags_metadata_and_messages(
    prisma_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """get_thread returns the thread's fields and both messages in order."""
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(prisma_talk.thread_id)
    assert thread is not None
    assert (thread["name"], thread["tags"], thread["userIdentifier"]) == (
        prisma_talk.name, prisma_talk.tags, prisma_talk.identifier,
    )  # fmt: skip
    assert thread["metadata"] == prisma_talk.thread_metadata
    messages = [(s["id"], s["type"], s["output"]) for s in thread["steps"]]
    assert messages == [
        (prisma_talk.question_id, "user_message", prisma_talk.question),
        (prisma_talk.answer_id, "assistant_message", prisma_talk.answer),
    ]


async def test_adopted_prisma_element_keeps_its_object_key_and_file(
    prisma_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """The element still points at the object the built-in layer uploaded, and its URL serves the bytes."""
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(prisma_talk.thread_id)
    assert thread is not None
    [element] = thread["elements"] or []
    assert (element["id"], element["objectKey"], element["forId"]) == (
        prisma_talk.element_id, prisma_talk.object_key, prisma_talk.answer_id,
    )  # fmt: skip
    assert element["type"] == "text"
    assert await fetch_url(element["url"], layer) == prisma_talk.file_content


async def test_adopted_prisma_feedback_is_found_through_its_thread(
    prisma_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """Feedback gets the thread of its step, so list_threads' feedback filter finds the thread."""
    await upgrade_async(database_url)
    page = await open_layer().list_threads(
        Pagination(first=10), ThreadFilter(userId=prisma_talk.user_id, feedback=1)
    )
    assert [thread["id"] for thread in page.data] == [prisma_talk.thread_id]


async def test_adopted_prisma_step_keeps_its_feedback(
    prisma_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """The rated answer carries its feedback id, value and comment."""
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(prisma_talk.thread_id)
    assert thread is not None
    feedback = thread["steps"][1].get("feedback")
    assert feedback is not None
    assert (feedback["id"], feedback["value"], feedback["comment"]) == (prisma_talk.feedback_id, 1, "helpful")


async def test_adopted_prisma_timestamps_are_read_as_utc(
    prisma_talk: Conversation, database_url: str
) -> None:
    """A TIMESTAMP(3) without time zone becomes the same wall-clock time in UTC."""
    await fetch(
        database_url,
        'UPDATE "Step" SET "createdAt" = $1 WHERE id = $2',
        datetime(2024, 1, 2, 3, 4, 5, 678000),
        prisma_talk.question_id,
    )
    await upgrade_async(database_url)
    [row] = await fetch(database_url, 'SELECT "createdAt" FROM "Step" WHERE id = $1', prisma_talk.question_id)
    assert row["createdAt"] == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


async def test_adopted_prisma_schema_is_the_schema_of_a_fresh_database(
    prisma_talk: Conversation, database_url: str, postgres_server: object
) -> None:
    """Columns, types, defaults, indexes and constraints equal those `upgrade` creates on an empty one."""
    await upgrade_async(database_url)
    fresh_url = postgres_server.create_database(f"fresh_{uuid4().hex}")  # type: ignore[attr-defined]
    await upgrade_async(fresh_url)
    assert await schema_of(database_url) == await schema_of(fresh_url)


async def test_adoption_keeps_prisma_bookkeeping_so_prisma_does_not_recreate_tables(
    prisma_talk: Conversation, database_url: str
) -> None:
    """`_prisma_migrations` stays with its rows."""
    await upgrade_async(database_url)
    rows = await fetch(database_url, 'SELECT migration_name FROM "_prisma_migrations" ORDER BY 1')
    assert [row[0] for row in rows] == ["add_tags_to_thread", "init_data_layer"]


async def test_upgrade_dry_run_prints_the_plan_and_changes_nothing(
    prisma_talk: Conversation, database_url: str
) -> None:
    """--dry-run names the shape and the row counts, and leaves the Prisma tables as they were."""
    before = await schema_of(database_url)
    plan = await upgrade_async(database_url, dry_run=True)
    assert plan[0] == "Database shape: Prisma chainlit-datalayer"
    assert 'copy "Step": 2 rows' in plan
    assert await schema_of(database_url) == before


async def test_upgrade_after_adoption_changes_nothing(prisma_talk: Conversation, database_url: str) -> None:
    """A second upgrade finds a managed database at head."""
    await upgrade_async(database_url)
    schema = await schema_of(database_url)
    plan = await upgrade_async(database_url)
    assert plan[0] == "Database shape: managed by chainlit-openrag-datalayer"
    assert await schema_of(database_url) == schema


async def test_adoption_reports_each_table_before_and_after_its_copy(
    prisma_talk: Conversation, database_url: str
) -> None:
    """`progress` hears of every table's copy with its row count, then of the revisions applied after it."""
    lines: list[str] = []
    await upgrade_async(database_url, progress=lines.append)
    assert [line for line in lines if line.startswith("copying")] == [
        'copying "User": 1 rows', 'copying "Thread": 1 rows', 'copying "Step": 2 rows',
        'copying "Element": 1 rows', 'copying "Feedback": 1 rows',
    ]  # fmt: skip
    assert any(line.startswith('copied "Step": 2 rows in ') for line in lines)
    assert lines[-1].startswith("apply revision ")


async def test_upgrade_command_shows_adoption_progress_on_stderr(
    prisma_talk: Conversation, database_url: str, cli: InProcessCli
) -> None:
    """An operator watching `upgrade` sees each table being copied, and the plan on stdout."""
    result = await cli({"DATABASE_URL": database_url}, "upgrade")
    assert result.returncode == 0, result.stderr
    assert 'copying "Step": 2 rows' in result.stderr
    assert 'copy "Step": 2 rows' in result.stdout


# --- OpenRAG init script ------------------------------------------------------------------------------------


async def test_adopted_openrag_init_user_keeps_id_and_metadata_as_json(
    openrag_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """uuid ids become their text form; metadata text becomes a JSON object."""
    await upgrade_async(database_url)
    user = await open_layer().get_user(openrag_talk.identifier)
    assert user is not None
    assert (user.id, user.metadata) == (openrag_talk.user_id, openrag_talk.user_metadata)


async def test_adopted_openrag_init_messages_read_as_text(
    openrag_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """jsonb step output holding a JSON string becomes that string; the `{}` default becomes empty."""
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(openrag_talk.thread_id)
    assert thread is not None
    assert thread["metadata"] == openrag_talk.thread_metadata
    assert [(s["input"], s["output"]) for s in thread["steps"]] == [
        ("", openrag_talk.question),
        ("", openrag_talk.answer),
    ]


async def test_adopted_openrag_init_element_and_feedback_are_kept(
    openrag_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """The element keeps its object key (its URL serves the file) and the answer keeps its feedback."""
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(openrag_talk.thread_id)
    assert thread is not None
    [element] = thread["elements"] or []
    assert element["objectKey"] == openrag_talk.object_key
    assert await fetch_url(element["url"], layer) == openrag_talk.file_content
    feedback = thread["steps"][1].get("feedback")
    assert feedback is not None and feedback["id"] == openrag_talk.feedback_id


async def test_adopted_openrag_init_thread_is_listed_by_last_activity(
    openrag_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """The added Thread."updatedAt" is the newest step, so list_threads shows the thread at that time."""
    await upgrade_async(database_url)
    page = await open_layer().list_threads(Pagination(first=10), ThreadFilter(userId=openrag_talk.user_id))
    [row] = await fetch(database_url, 'SELECT max("createdAt") FROM "Step" WHERE "threadId" = $1',
                        openrag_talk.thread_id)  # fmt: skip
    assert [t["id"] for t in page.data] == [openrag_talk.thread_id]
    assert datetime.fromisoformat(page.data[0]["createdAt"]) == row[0]


async def test_adopted_openrag_init_metadata_that_is_not_json_is_kept_under_value(
    openrag_talk: Conversation, database_url: str, open_layer: OpenLayer
) -> None:
    """Hand-written metadata text that does not parse is kept, not lost."""
    await fetch(
        database_url, 'UPDATE "Thread" SET metadata = $1 WHERE id = $2', "not json {", openrag_talk.thread_id
    )
    await upgrade_async(database_url)
    layer = open_layer()
    thread = await layer.get_thread(openrag_talk.thread_id)
    assert thread is not None
    assert thread["metadata"] == {"value": "not json {"}


@pytest.mark.parametrize("parent_foreign_key", [False, True], ids=["script", "script-with-parent-fk"])
async def test_adopted_openrag_init_schema_is_the_schema_of_a_fresh_database(
    database_url: str, postgres_server: object, parent_foreign_key: bool
) -> None:
    """Both versions of the init script end in exactly the schema of a fresh database."""
    await create_openrag_init_schema(database_url, parent_foreign_key=parent_foreign_key)
    await upgrade_async(database_url)
    fresh_url = postgres_server.create_database(f"fresh_{uuid4().hex}")  # type: ignore[attr-defined]
    await upgrade_async(fresh_url)
    assert await schema_of(database_url) == await schema_of(fresh_url)


# --- empty and unknown --------------------------------------------------------------------------------------


async def test_upgrade_of_an_empty_database_reports_the_empty_shape(database_url: str) -> None:
    """An empty database is created at head, with no adoption step."""
    plan = await upgrade_async(database_url)
    assert plan[0] == "Database shape: empty"
    assert not any(line.startswith("copy") for line in plan)


async def refused(database_url: str, change: Callable[[], Awaitable[object]]) -> str:
    """Apply `change` to a Prisma database, upgrade, and return the refusal after checking nothing changed."""
    await create_prisma_schema(database_url)
    await change()
    before = await schema_of(database_url)
    with pytest.raises(SchemaConflictError) as refusal:
        await upgrade_async(database_url)
    assert await schema_of(database_url) == before
    return str(refusal.value)


async def test_unknown_column_is_refused_with_the_difference_listed(database_url: str) -> None:
    """An extra column would be lost by adoption: the upgrade refuses and names it."""
    message = await refused(
        database_url, lambda: fetch(database_url, 'ALTER TABLE "Step" ADD COLUMN score int')
    )
    assert 'column "Step"."score" is not expected' in message
    assert "Prisma chainlit-datalayer" in message


async def test_retyped_column_is_refused_with_the_difference_listed(database_url: str) -> None:
    """A column of another type is named with both types."""
    message = await refused(
        database_url, lambda: fetch(database_url, 'ALTER TABLE "Feedback" ALTER COLUMN value TYPE integer')
    )
    assert 'column "Feedback"."value" is int4, expected float8' in message


async def test_missing_table_is_refused_with_the_difference_listed(database_url: str) -> None:
    """A database with some of the tables is not adopted."""
    message = await refused(database_url, lambda: fetch(database_url, 'DROP TABLE "Feedback"'))
    assert 'table "Feedback" is missing' in message
