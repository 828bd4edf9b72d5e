"""OpenRAGDataLayer: Chainlit's persistence contract on PostgreSQL and an object store."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from chainlit.data.base import BaseDataLayer
from chainlit.element import ElementDict
from chainlit.step import StepDict
from chainlit.types import Feedback, PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from chainlit.user import PersistedUser, User
from sqlalchemy import Executable

from . import convert, identity, normalise, read_queries, served, session, startup, write_queries
from .config import Settings
from .database import Database
from .errors import DataLayerError, WriteRefusedError, log_safe
from .file_grants import GrantSigner
from .lifecycle import ShutdownWatch
from .retry import RetryPolicy, retrying
from .schema import Row
from .storage import ElementStorage, LocalStorage, PresigningStorage, describe, object_key, storage_for
from .writes import WriteSequencer

if TYPE_CHECKING:
    from chainlit.element import Element

logger = logging.getLogger(__name__)

Work = Callable[[], Awaitable[Any]]
PAGE_SIZE_MAX = 1000
RECENT_STEPS = 10_000
# Calls a request waits on are bounded by Settings.statement_timeout, retries included; Chainlit awaits
# update_thread and delete_thread in the chat's path: past this, they finish in the background.
AWAITED_WRITE_SECONDS = 2.0
# close() waits this long for pending writes: well inside Docker's 10 s between SIGTERM and SIGKILL.
CLOSE_GRACE_SECONDS = 5.0
# A websocket session persisting its metadata on disconnect holds a stale copy of these keys.
SHARING_KEYS = ("is_shared", "shared_at")


class OpenRAGDataLayer(BaseDataLayer):
    """Chainlit data layer on PostgreSQL (SQLAlchemy Core + asyncpg) and S3 (aioboto3).

    The connection pool and the storage client open on first use, so the ``@cl.data_layer`` factory stays
    synchronous and cheap. Without ``DATABASE_URL`` it runs an embedded PostgreSQL, and without
    ``BUCKET_NAME`` it keeps files in a local folder served by the app itself.
    """

    def __init__(self, settings: Settings, storage: ElementStorage | None = None) -> None:
        self.settings = settings
        self.storage = storage if storage is not None else storage_for(settings)
        self._presigner: PresigningStorage | None = None
        if not settings.served_urls and isinstance(self.storage, PresigningStorage):
            self._presigner = self.storage
        # Even with presigned URLs, the app serves the element types its front end fetches by script.
        self.served_files = served.ServedFiles(
            GrantSigner(settings.url_secret, settings.url_expiry_seconds), self.storage, self.get_thread
        )
        self._writes = WriteSequencer(
            RetryPolicy(settings.write_retry_seconds),
            settings.max_pending_writes,
            settings.max_pending_write_bytes,
        )
        self._awaited = RetryPolicy(settings.statement_timeout)
        self._step_threads: dict[str, str] = {}  # recent step -> thread, to order delete_step
        self._detached: set[asyncio.Task[None]] = set()
        self._warned_no_owner = False
        self.database = Database(settings)
        self._shutdown_watch = ShutdownWatch(self.close)  # mounted apps never call close()
        if settings.identity_path:
            identity.install_login_guard()
        self._log_configuration()
        served.serve(self.served_files)  # last: a layer that failed to construct serves nothing

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, connect_args: Mapping[str, Any] | None = None
    ) -> OpenRAGDataLayer:
        """Build from ``DATABASE_URL``, ``BUCKET_NAME``, ``APP_AWS_*``... (see the README), once the
        database is ready: blocking, it raises (and logs one line saying what to fix) while a setting is
        wrong, the database does not answer, its schema is not at this package's head or the
        ``[embedded]`` extra is missing. Chainlit calls the ``@cl.data_layer`` factory again on its next
        request, so logins are refused until then, and work again without a restart.

        ``connect_args``: the application's own ``asyncpg.connect`` arguments (``ssl``, ``server_settings``).
        """
        try:
            settings = Settings.from_env(
                os.environ if environ is None else environ, connect_args=connect_args
            )
            startup.check_ready(settings)
        except DataLayerError as error:
            logger.error("Chat history cannot be stored, so logins are refused: %s", error)
            raise
        return cls(settings)

    # --- plumbing ------------------------------------------------------------------------------

    def _log_configuration(self) -> None:
        """One line at construction (Chainlit calls the ``@cl.data_layer`` factory on first use): what is in
        use, and, as a WARNING, which production setting is missing."""
        missing = [] if self.settings.database_url else ["DATABASE_URL"]
        if isinstance(self.storage, LocalStorage) and self.settings.s3 is None:
            missing.append("BUCKET_NAME")
        database = (
            f"embedded PostgreSQL in {self.settings.embedded_dir}"
            if self.settings.database_url is None
            else self.settings.database_url.display
        )
        logger.log(
            logging.WARNING if missing else logging.INFO,
            "chainlit-openrag-datalayer: database %s, storage %s, element URLs %s%s",
            database,
            describe(self.storage),
            "presigned by S3 (script-fetched types served by this app)"
            if self._presigner
            else "served by this app",
            f"; {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
            "these are development defaults, set them for production"
            if missing
            else "",
        )

    async def _execute(
        self, statement: Executable, params: Mapping[str, Any], *, background: bool = False
    ) -> Sequence[Row]:
        self._shutdown_watch.start()
        return await self.database.execute(statement, params, background=background)

    async def _write(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        """A statement of the background write queue: never takes the connections kept for requests."""
        return await self._execute(statement, params, background=True)

    async def _fetch(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        """A call Chainlit awaits (a request is waiting): retried across a lost connection, within
        ``DATABASE_STATEMENT_TIMEOUT`` in all."""
        return await retrying(self._awaited, "query", "a request", lambda: self._execute(statement, params))

    async def _background_write(
        self, thread_id: str | None, action: str, subject: str, work: Work, size: int = 0
    ) -> None:
        """A write Chainlit does not wait for: in thread order, retried through outages.

        A lost write was logged (ids and error class); what reaches Chainlit, which logs it as text, is
        never PostgreSQL's message, whose DETAIL quotes the row.
        """
        try:
            await self._writes.run(thread_id, action, subject, work, size)
        except asyncpg.PostgresError as error:
            raise DataLayerError(f"{action} for {subject} was lost ({log_safe(error)})") from None

    # --- users ---------------------------------------------------------------------------------

    async def get_user(self, identifier: str) -> PersistedUser | None:
        rows = await self._fetch(read_queries.user_by_identifier(), {"identifier": identifier})
        return convert.user_from_row(rows[0]) if rows else None

    async def create_user(self, user: User) -> PersistedUser | None:
        """None when the identity guard refuses the login (see ``identity``); Chainlit then answers 401."""
        path = self.settings.identity_path
        params = {
            "identifier": normalise.clean_text(user.identifier),
            "metadata": normalise.redact(normalise.json_object(user.metadata), self.settings.redact_keys),
            "identityPath": list(path),
        }
        rows = await self._fetch(write_queries.user_upsert(guarded=bool(path)), params)
        if not rows:
            identity.refuse_login(params["identifier"], path)
            return None
        return convert.user_from_row(rows[0])

    # --- feedback ------------------------------------------------------------------------------

    async def upsert_feedback(self, feedback: Feedback) -> str:
        """Raises ``WriteRefusedError`` for a feedback of another step, or on a deleted thread."""
        params = {
            "id": normalise.optional_text(feedback.id),
            "stepId": normalise.optional_text(feedback.forId),
            # sent by Chainlit 2.x's UI; absent in 2.2
            "threadId": normalise.optional_text(getattr(feedback, "threadId", None)),
            "value": float(feedback.value),
            "comment": normalise.optional_text(feedback.comment),
        }
        rows = await self._fetch(write_queries.feedback_upsert(), params)
        if rows[0]["id"] is None:
            subject = f"feedback {feedback.id} on step {feedback.forId}"
            _report_refusal("upsert_feedback", subject, thread_deleted=rows[0]["threadDeleted"])
            reason = "its thread was deleted" if rows[0]["threadDeleted"] else "it belongs to another message"
            raise WriteRefusedError(f"This feedback was not saved: {reason}.")
        return str(rows[0]["id"])

    async def delete_feedback(self, feedback_id: str) -> bool:
        await self._fetch(write_queries.feedback_delete(), {"feedbackId": feedback_id})
        return True

    # --- elements ------------------------------------------------------------------------------

    @session.queued_until_user_message
    async def create_element(self, element: Element) -> None:
        subject = f"element {element.id} of thread {element.thread_id}"
        if session.outside_session_thread(element.thread_id):
            _report_refusal("create_element", subject, thread_deleted=False)
            return
        await self._background_write(
            element.thread_id,
            "create_element",
            subject,
            lambda: self._create_element(element, subject),
            size=convert.held_bytes(element),
        )

    async def _create_element(self, element: Element, subject: str) -> None:
        source = convert.element_source(element)
        key = None
        data = element.to_dict()
        if source is not None:
            key = object_key(element.thread_id, element.id)
            data["mime"] = mime = convert.element_mime(element)
            await self.storage.put(key, source, mime, element.name or element.id)
        params = convert.element_params(data, key, self.settings.redact_keys)
        statement = write_queries.element_upsert(with_thread=params["threadId"] is not None)
        rows = await self._write(statement, params)
        if not rows[0]["applied"]:
            _report_refusal("create_element", subject, thread_deleted=rows[0]["threadDeleted"])
            if key is not None:  # under this write's own thread prefix: never another thread's object
                await self._delete_objects([key])

    async def get_element(self, thread_id: str, element_id: str) -> ElementDict | None:
        params = {"threadId": thread_id, "elementId": element_id}
        rows = await self._fetch(read_queries.element_by_id(), params)
        if not rows:
            return None
        return convert.element_from_row(rows[0], await self._element_url(rows[0], rows[0]["userIdentifier"]))

    async def _element_url(self, row: Row, owner: str | None) -> str | None:
        """Signed at read time, never stored: an S3 one, or a served URL bound to the owner and thread."""
        key = row["objectKey"]
        if not key:
            url: str | None = row["url"]
            return url
        if self._presigner is not None and convert.element_type(row) not in served.SCRIPT_FETCHED_TYPES:
            return await self._presigner.url(key)
        return self.served_files.url(
            key, row["name"] or "file", row["mime"] or "application/octet-stream", owner, row["threadId"]
        )

    @session.queued_until_user_message
    async def delete_element(self, element_id: str, thread_id: str | None = None) -> None:
        if session.outside_session_thread(thread_id):
            _report_refusal(
                "delete_element", f"element {element_id} of thread {thread_id}", thread_deleted=False
            )
            return
        await self._background_write(
            thread_id,
            "delete_element",
            f"element {element_id}",
            lambda: self._delete_element(element_id, thread_id),
        )

    async def _delete_element(self, element_id: str, thread_id: str | None) -> None:
        params = {"elementId": element_id, "threadId": thread_id}
        rows = await self._write(write_queries.element_delete(with_thread=thread_id is not None), params)
        await self._delete_objects([row["objectKey"] for row in rows if row["objectKey"]])

    async def _delete_objects(self, keys: list[str]) -> None:
        if keys:
            try:
                await self.storage.delete(keys)
            except Exception as error:
                logger.error(
                    "Could not delete %d storage objects (first: %s; %s); "
                    "`python -m chainlit_openrag_datalayer sweep` finds them",
                    len(keys), keys[0], log_safe(error),
                )  # fmt: skip

    # --- steps ---------------------------------------------------------------------------------

    @session.queued_until_user_message
    async def create_step(self, step_dict: StepDict) -> None:
        await self._upsert_step("create_step", step_dict)

    @session.queued_until_user_message
    async def update_step(self, step_dict: StepDict) -> None:
        await self._upsert_step("update_step", step_dict)

    async def _upsert_step(self, action: str, step_dict: StepDict) -> None:
        params = convert.step_params(step_dict, self.settings.redact_keys)
        thread_id = params["threadId"]
        if thread_id is not None:
            self._remember_step(params["id"], thread_id)
        statement = write_queries.step_upsert(with_thread=thread_id is not None)
        subject = f"step {params['id']} of thread {thread_id}"

        async def upsert() -> None:
            rows = await self._write(statement, params)
            if not rows[0]["applied"]:
                _report_refusal(action, subject, thread_deleted=rows[0]["threadDeleted"])

        await self._background_write(thread_id, action, subject, upsert, normalise.approximate_size(params))

    def _remember_step(self, step_id: str, thread_id: str) -> None:
        """Recent steps' threads, so that ``delete_step(id)`` queues behind its thread's writes."""
        self._step_threads[step_id] = thread_id
        if len(self._step_threads) > RECENT_STEPS:
            del self._step_threads[next(iter(self._step_threads))]

    @session.queued_until_user_message
    async def delete_step(self, step_id: str) -> None:
        thread_id = self._step_threads.pop(step_id, None)
        await self._background_write(
            thread_id, "delete_step", f"step {step_id}", lambda: self._delete_step(step_id)
        )

    async def _delete_step(self, step_id: str) -> None:
        rows = await self._write(write_queries.step_delete(), {"stepId": step_id})
        await self._delete_objects([row["objectKey"] for row in rows])

    async def get_favorite_steps(self, user_id: str) -> list[StepDict]:
        rows = await self._fetch(read_queries.favorite_steps(), {"userId": user_id})
        return [convert.step_from_row(row) for row in rows]

    # --- threads -------------------------------------------------------------------------------

    async def get_thread_author(self, thread_id: str) -> str:
        rows = await self._fetch(read_queries.thread_author(), {"threadId": thread_id})
        return str(rows[0]["identifier"]) if rows else ""

    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        return await retrying(
            self._awaited, "get_thread", f"thread {thread_id}", lambda: self._read_thread(thread_id)
        )

    async def _read_thread(self, thread_id: str) -> ThreadDict | None:
        """Two queries whatever the thread's size, run side by side on two pooled connections:
        the thread with its elements, and its steps."""
        params = {"threadId": thread_id}
        threads, steps = await asyncio.gather(
            self._execute(read_queries.thread_with_elements(), params),
            self._execute(read_queries.steps_of_thread(), params),
        )
        if not threads:
            return None
        thread, owner = threads[0], threads[0]["userIdentifier"]
        urls = await asyncio.gather(*(self._element_url(row, owner) for row in thread["elements"]))
        return convert.thread_from_row(
            thread,
            convert.parents_first([convert.step_from_row(row) for row in steps]),
            [convert.element_from_row(row, url) for row, url in zip(thread["elements"], urls, strict=True)],
        )

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Upsert: None leaves a field unchanged; metadata merges and a None value removes its key."""
        if user_id is None and not self._warned_no_owner:
            self._warn_if_no_owner_can_exist()
        to_set, to_remove = convert.metadata_patch(metadata, self.settings.redact_keys)
        if to_set is not None and session.in_websocket_session():
            to_set = {k: v for k, v in to_set.items() if k not in SHARING_KEYS}
            to_remove = [k for k in to_remove if k not in SHARING_KEYS]
        params = {
            "id": thread_id,
            "name": convert.thread_name(name, metadata),
            "userId": normalise.optional_text(user_id),
            "tags": normalise.text_list(tags),
            "metadata": {} if to_set is None else to_set,  # nothing to merge (NULL would break the insert)
            "remove": to_remove,
        }

        async def upsert() -> None:
            rows = await self._execute(write_queries.thread_upsert(), params)
            if not rows[0]["applied"]:
                _report_refusal("update_thread", f"thread {thread_id}", thread_deleted=True)

        size = normalise.approximate_size(params)
        write = self._background_write(thread_id, "update_thread", f"thread {thread_id}", upsert, size)
        await self._wait_or_detach(asyncio.ensure_future(write), f"update_thread for thread {thread_id}")

    def _warn_if_no_owner_can_exist(self) -> None:
        """Once: without authentication Chainlit has no user to own a thread, so none can be listed."""
        from chainlit.auth import require_login

        if not require_login():  # type: ignore[no-untyped-call]  # Chainlit leaves it unannotated
            self._warned_no_owner = True
            logger.warning(
                "Threads are stored without an owner: this Chainlit app has no authentication "
                "(@cl.password_auth_callback, @cl.header_auth_callback or OAuth), so no user can list or "
                "resume them in the sidebar. Add an auth callback and set CHAINLIT_AUTH_SECRET."
            )

    async def _wait_or_detach(self, task: asyncio.Task[None], what: str) -> None:
        """Chainlit awaits this write in the chat's path: during an outage, finish it in the background."""
        done, _ = await asyncio.wait({task}, timeout=AWAITED_WRITE_SECONDS)
        if done:
            return task.result()
        logger.warning("%s is slow (database unavailable?); it continues in the background", what)
        self._detached.add(task)
        task.add_done_callback(_forget(self._detached))

    async def list_threads(
        self, pagination: Pagination, filters: ThreadFilter
    ) -> PaginatedResponse[ThreadDict]:
        """The user's threads by last activity; ``createdAt`` carries that activity time."""
        if not filters.userId:
            logger.warning("list_threads called without filters.userId: returning no threads")
            return PaginatedResponse(
                pageInfo=PageInfo(hasNextPage=False, startCursor=None, endCursor=None), data=[]
            )
        first = min(max(pagination.first, 1), PAGE_SIZE_MAX)
        statement = read_queries.thread_page(
            with_cursor=bool(pagination.cursor),
            with_search=bool(filters.search),
            with_feedback=filters.feedback is not None,
        )
        params: dict[str, Any] = {"userId": filters.userId, "limit": first + 1}
        if pagination.cursor:
            params["cursor"] = pagination.cursor
        if filters.search:
            params["pattern"] = read_queries.escape_like(normalise.clean_text(filters.search))
        if filters.feedback is not None:
            params["feedback"] = float(filters.feedback)
        rows = await self._fetch(statement, params)
        threads = [convert.thread_from_row(row, [], [], created_at=row["updatedAt"]) for row in rows[:first]]
        page_info = PageInfo(
            hasNextPage=len(rows) > first,
            startCursor=threads[0]["id"] if threads else None,
            endCursor=threads[-1]["id"] if threads else None,
        )
        return PaginatedResponse(pageInfo=page_info, data=threads)

    async def delete_thread(self, thread_id: str) -> None:
        """Queued behind the thread's pending writes, so none of them brings it back."""
        delete = self._writes.run(
            thread_id, "delete_thread", f"thread {thread_id}", lambda: self._delete_thread(thread_id)
        )
        await self._wait_or_detach(asyncio.ensure_future(delete), f"delete_thread for thread {thread_id}")

    async def _delete_thread(self, thread_id: str) -> None:
        rows = await self._execute(write_queries.thread_delete(), {"threadId": thread_id})
        await self._delete_objects([row["objectKey"] for row in rows])

    # --- lifecycle -----------------------------------------------------------------------------

    async def build_debug_url(self) -> str:
        return ""

    async def close(self) -> None:
        """Finish pending writes (for ``CLOSE_GRACE_SECONDS`` at most), then close the pool (stopping the
        embedded server) and the storage client; safe to call twice.

        Chainlit calls it when ``chainlit run`` stops. Mounted apps need not: the layer closes itself when
        uvicorn (or the event loop) stops (``lifecycle.ShutdownWatch``).
        """
        self._shutdown_watch.stop()
        served.withdraw(self.served_files)
        await self._writes.drain(CLOSE_GRACE_SECONDS)
        await self.database.close()
        await self.storage.close()


def _report_refusal(action: str, subject: str, *, thread_deleted: bool) -> None:
    """One line, ids only: a late write to a deleted thread is expected, a reused id is not."""
    if thread_deleted:
        logger.info("%s for %s not applied: the thread was deleted", action, subject)
    else:
        logger.warning(
            "%s for %s refused: the id belongs to another thread (or step) than the write names; "
            "nothing was changed",
            action, subject,
        )  # fmt: skip


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    """Drop a finished detached task; its failure was already logged by the sequencer."""

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done
