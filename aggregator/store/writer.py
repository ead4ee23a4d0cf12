"""The single writer of polls: SourceIntents applied in batches, in one thread of its own.

A poll decides in pure code what it will write (aggregator.ingest.decide builds a
SourceIntent) and hands it to a StoreWriter; the event loop then only awaits a future. The
writer's thread takes every intent waiting (up to BATCH_SOURCES) and applies them in ONE
transaction, each source in a SAVEPOINT of its own: a source whose apply fails is rolled
back alone and recorded as that source's failure, naming the member, the source and the
cause, while the rest of the batch commits. A batch whose transaction fails as a whole (a
deadlock, a serialization failure, a lost connection) is applied again one source per
transaction, so that only the sources that really cannot be stored fail.

On SQLite the batch holds the write lock from its first statement; on PostgreSQL it takes
the advisory locks of every source and every title and link of its items before reading
anything, each space in sorted order (base.lock_for_sources), so that two workers' batches
wait for each other instead of deadlocking.

This module must never run SQL on an event loop's thread, never fetch, parse or decide
(it writes what the intent says), and never lose what was stored: a failed apply leaves
the source's items as they were and only updates its health.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import AggregatorError
from aggregator.errors import StorageError
from aggregator.models import AppliedIntent
from aggregator.models import IntentKind
from aggregator.models import SourceIntent
from aggregator.store import schema
from aggregator.store.base import MAX_MATCH_LOCKS
from aggregator.store.base import is_retried
from aggregator.store.base import lock_for_sources
from aggregator.store.base import match_lock_keys
from aggregator.store.base import with_write_retries
from aggregator.store.entry_digests import remember_entry_digests_on
from aggregator.store.items import ItemsMixin
from aggregator.store.items import record_failure_on
from aggregator.store.items import success_values
from aggregator.store.sources import remember_discovered_feed_on
from aggregator.store.websub import remember_websub_hub_on

logger = logging.getLogger(__name__)

# Sources applied in one transaction at most: enough to make a round of unchanged sources
# a few commits, few enough that a batch's locks are not held for long.
BATCH_SOURCES = 50


class IntentsMixin(ItemsMixin):
    """Applying SourceIntents: the write half of a poll, on the writer's thread."""

    def apply_intents(self, intents: Sequence[SourceIntent]) -> list[AppliedIntent]:
        """Apply the intents, in as few transactions as the locks allow; one result each,
        in their order. Never raises for one source's fault: it is that source's result."""
        results: dict[int, AppliedIntent] = {}
        postgresql = self.engine.dialect.name == "postgresql"
        for group in _lock_groups(list(enumerate(intents)), postgresql=postgresql):
            try:
                applied = self._apply_batch(group)
                results.update(zip((index for index, _ in group), applied, strict=True))
            except Exception as exc:
                # The transaction failed as a whole: nothing of it was committed. Each
                # source alone shows which of them (if any) cannot be stored.
                if len(group) > 1:
                    logger.warning(
                        "storing %d polls together failed (%s); storing them one by one",
                        len(group),
                        _describe(exc),
                        exc_info=exc,
                    )
                for index, intent in group:
                    results[index] = self._apply_alone(intent)
        return [results[index] for index in range(len(intents))]

    def _apply_batch(self, group: Sequence[tuple[int, SourceIntent]]) -> list[AppliedIntent]:
        """One transaction: the batch's locks, then each source in a savepoint."""
        # In the order the polls finished, as when each was its own transaction: which of
        # two halves of a cross-post is stored first decides which story the other joins.
        # (Two writers cannot deadlock on item writes: the advisory locks come first, in
        # one global order; a rarer deadlock on a source or story row rolls the batch back
        # whole, and it is run again source by source.)
        applied: dict[int, AppliedIntent] = {}
        with self.engine.begin() as connection:
            polls = {
                intent.source_url: intent.items
                for _, intent in group
                if intent.kind is IntentKind.ITEMS
            }
            # PostgreSQL: a poll without items takes no item lock (it would wait for a
            # prune for nothing); SQLite: every write takes the write lock first.
            if polls or connection.dialect.name != "postgresql":
                lock_for_sources(connection, polls)
            plain = [(index, intent) for index, intent in group if _plain_unchanged(intent)]
            if len(plain) > 1 and _mark_unchanged(connection, [i for _, i in plain]):
                applied.update((index, AppliedIntent()) for index, _ in plain)
            for index, intent in group:
                if index not in applied:
                    applied[index] = self._apply_in_savepoint(connection, intent)
        return [applied[index] for index, _ in group]

    def _apply_in_savepoint(self, connection: Connection, intent: SourceIntent) -> AppliedIntent:
        try:
            with connection.begin_nested():
                return self._apply_one(connection, intent)
        except Exception as exc:
            if _whole_transaction_failed(exc):
                raise
            cause = f"could not store this poll: {_describe(exc)}"
            logger.error(
                "member %s, source %s: %s",
                intent.result.source.member_id,
                intent.source_url,
                cause,
                exc_info=exc,
            )
        # The failing source's writes are rolled back; what it stored before stays.
        with connection.begin_nested():
            record_failure_on(connection, intent.result, cause)
        return AppliedIntent(error=cause)

    def _apply_one(self, connection: Connection, intent: SourceIntent) -> AppliedIntent:
        """One source's intent on `connection`, in the order the poll learned things."""
        # Through the same code as the public write methods (the poll's own, through
        # them, on this connection): what they do alone is exactly what they do in a batch.
        for discovered in intent.discovered:
            remember_discovered_feed_on(connection, intent.source_url, discovered)
        if intent.kind is IntentKind.FAILURE:
            cause = intent.cause or "unknown cause"
            self.record_failure(intent.result, cause, connection=connection)
            return AppliedIntent()
        if intent.kind is IntentKind.UNCHANGED:
            self.record_unchanged(intent.result, connection=connection)
            return AppliedIntent()
        if intent.websub_hub is not None:
            remember_websub_hub_on(connection, intent.source_url, *intent.websub_hub)
        stored = self.record_items(
            intent.result,
            intent.items,
            warning=intent.warning,
            only_newer=intent.only_newer,
            connection=connection,
        )
        remember_entry_digests_on(connection, intent.source_url, intent.entry_digests)
        return AppliedIntent(stored=stored)

    def _apply_alone(self, intent: SourceIntent) -> AppliedIntent:
        """One intent in a transaction of its own; a deadlock is run again (as
        record_items does). What cannot be stored is recorded as the source's failure."""
        try:
            return with_write_retries(lambda: self._apply_batch([(0, intent)])[0])
        except (SQLAlchemyError, AggregatorError) as exc:
            cause = f"could not store this poll: {_describe(exc)}"
        logger.error(
            "member %s, source %s: %s", intent.result.source.member_id, intent.source_url, cause
        )
        try:
            with self.engine.begin() as connection:
                record_failure_on(connection, intent.result, cause)
        except Exception:
            # The database itself may be what failed: the caller's report names the cause.
            logger.exception("source %s: could not record the failure", intent.source_url)
        return AppliedIntent(error=cause)


def _lock_groups(
    intents: list[tuple[int, SourceIntent]], *, postgresql: bool
) -> list[list[tuple[int, SourceIntent]]]:
    """The transactions a batch is applied in. SQLite: one (a single writer anyway).
    PostgreSQL: as many as keep each one's title and link locks within MAX_MATCH_LOCKS, so
    that a batch of small polls does not lock out every other worker's items (a poll over
    the bound has a transaction of its own, holding all items alone as record_items does)."""
    if not postgresql:
        return [intents] if intents else []
    groups: list[list[tuple[int, SourceIntent]]] = []
    current: list[tuple[int, SourceIntent]] = []
    keys: set[int] = set()
    for pair in intents:
        mine = match_lock_keys(pair[1].items) if pair[1].kind is IntentKind.ITEMS else set()
        if current and len(keys | mine) > MAX_MATCH_LOCKS:
            groups.append(current)
            current, keys = [], set()
        current.append(pair)
        keys |= mine
    if current:
        groups.append(current)
    return groups


def _plain_unchanged(intent: SourceIntent) -> bool:
    return intent.kind is IntentKind.UNCHANGED and not intent.discovered


def _mark_unchanged(connection: Connection, intents: Sequence[SourceIntent]) -> bool:
    """mark_success of many unchanged sources in one executemany UPDATE per shape (304s
    keep their validators); False (and nothing written) when it failed, and then each is
    applied in its own savepoint."""
    sources = schema.sources.c
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for intent in intents:
        values = success_values(intent.result, body_hash=None, warning=None)
        shapes.setdefault(tuple(sorted(values)), []).append(
            {"b_url": intent.source_url, **{f"b_{name}": value for name, value in values.items()}}
        )
    try:
        with connection.begin_nested():
            for names, rows in shapes.items():
                statement = (
                    update(schema.sources)
                    .where(sources.url == bindparam("b_url"))
                    .values({name: bindparam(f"b_{name}") for name in names})
                )
                connection.execute(statement, rows)
    except Exception as exc:
        if _whole_transaction_failed(exc):
            raise
        logger.warning("marking %d unchanged sources together failed: %s", len(intents), exc)
        return False
    return True


def _whole_transaction_failed(exc: Exception) -> bool:
    """A fault of the transaction, not of one source: a deadlock or serialization failure
    (PostgreSQL rolls the whole transaction back) or a connection gone."""
    return (isinstance(exc, DBAPIError) and exc.connection_invalidated) or is_retried(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


@dataclass(frozen=True)
class _Job:
    intent: SourceIntent
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[AppliedIntent]


class StoreWriter:
    """One thread applying intents from any event loop; created idle, started by the first
    intent, stopped by close(). Callers on the loop only await apply()'s future."""

    def __init__(self, store: IntentsMixin, *, batch_sources: int = BATCH_SOURCES) -> None:
        self.store = store
        self.batch_sources = batch_sources
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._closed = False

    async def apply(self, intent: SourceIntent) -> AppliedIntent:
        """Apply `intent` with whatever else is waiting; what the store did with it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppliedIntent] = loop.create_future()
        with self._guard:
            if self._closed:
                raise StorageError(f"source {intent.source_url}: the store's writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
                self._thread.start()
            self._queue.put(_Job(intent, loop, future))
        # Shielded: a cancelled poll's intent is still applied whole (or not at all).
        return await asyncio.shield(future)

    def close(self) -> None:
        """Apply what is queued, then stop the thread (blocks: call it off the loop)."""
        with self._guard:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.batch_sources:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._apply(jobs)

    def _apply(self, jobs: list[_Job]) -> None:
        try:
            applied = self.store.apply_intents([job.intent for job in jobs])
        except Exception as exc:
            # A bug of ours: every poll of the batch gets it, none is left waiting.
            logger.exception("the store's writer failed on %d polls", len(jobs))
            for job in jobs:
                _settle(job, None, exc)
            return
        for job, result in zip(jobs, applied, strict=True):
            _settle(job, result, None)


def _settle(job: _Job, result: AppliedIntent | None, error: Exception | None) -> None:
    def resolve() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            assert result is not None
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(resolve)
    except RuntimeError:
        # The caller's loop is closed: nobody is waiting any more.
        logger.debug("source %s: applied after its event loop closed", job.intent.source_url)
