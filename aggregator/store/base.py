"""The Store's foundation: engine, schema check on open, and the locks every writer takes.

StoreBase holds the engine that each domain mixin (sources.py, items.py, …) works through;
the locking helpers here are the one definition of how writers exclude each other on
SQLite (its write lock) and PostgreSQL (advisory locks in one global order). This module
must never hold a domain's queries: those go in the mixin module of their domain.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from typing import Self
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.pool import QueuePool

from aggregator.dedupe import candidate_keys
from aggregator.errors import StorageError
from aggregator.models import Item
from aggregator.store import migrate
from aggregator.store import schema

WRITE_LOCK_KEY = 0x57535201  # the advisory lock PostgreSQL writers share ("WSR" 1)
SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL advisory locks of item writes, as (space, key) pairs, always taken in this
# order of space (and of key within one) so that two writers can never deadlock on them:
# every item write holds ITEM_LOCKS shared (a prune holds it alone), then its source's
# key, then one key per title and link its items could be matched to another member's on.
ITEM_LOCKS = 0x57535210
SOURCE_LOCKS = 0x57535211
MATCH_LOCKS = 0x57535212
# Session-level advisory locks for jobs only one process of a deployment should run at a
# time (Store.singleton), by job name.
SINGLETON_LOCKS = 0x57535220
# A poll with more distinct titles and links than this (a first poll of a long feed) holds
# ITEM_LOCKS alone instead: a lock per key would fill PostgreSQL's shared lock table
# (max_locks_per_transaction × max_connections, 6,400 by default).
MAX_MATCH_LOCKS = 256
# Deadlock or serialization failure (two writers updating the same stories in opposite
# orders): the loser's transaction is rolled back whole, so it is simply run again.
RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
WRITE_ATTEMPTS = 3
_T = TypeVar("_T")


def is_retried(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction was rolled back whole, and
    running it again is the fix."""
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRIED_SQLSTATES
    )


def with_write_retries(write: Callable[[], _T]) -> _T:
    """`write` (one whole transaction) run again after a deadlock or serialization
    failure, WRITE_ATTEMPTS times in all; any other fault, or the last one, is raised."""
    for _ in range(WRITE_ATTEMPTS - 1):
        try:
            return write()
        except OperationalError as exc:
            if not is_retried(exc):
                raise
    return write()


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the exporter, the web server) read while a poll writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


IN_MEMORY_SQLITE = frozenset({"sqlite://", "sqlite:///:memory:"})


def _read_uncommitted(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Shared-cache readers would otherwise fail at once ("database table is locked")
    # while the writer's transaction is open: no busy timeout applies to them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA read_uncommitted=1")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    database = url.split("///", 1)[1] if "///" in url else ""
    return Path(database) if database and database != ":memory:" else None


def create_database_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        elif url in IN_MEMORY_SQLITE:
            # A plain in-memory database is one per connection, so one per thread: the
            # writer's thread (store/writer.py) and the reads a poll runs in threads would
            # each see an empty database of their own. One shared in-memory database
            # instead, private to this engine; its readers do not wait on the writer.
            # QueuePool keeps returned connections open, and with them the database.
            url = f"sqlite:///file:aggregator-{uuid.uuid4().hex}?mode=memory&cache=shared&uri=true"
            engine = create_engine(
                url, poolclass=QueuePool, connect_args={"check_same_thread": False}
            )
            event.listen(engine, "connect", _configure_sqlite)
            event.listen(engine, "connect", _read_uncommitted)
            return engine
        engine = create_engine(url)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def schema_state(url: str) -> migrate.SchemaState:
    """Where the database at `url` stands against this code's migrations; changes nothing."""
    engine = create_database_engine(url)
    try:
        with engine.connect() as connection:
            return migrate.schema_state(connection, url)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot open the database {url}: {exc}") from exc
    finally:
        engine.dispose()


class StoreBase:
    """The engine and its lifecycle; every domain mixin of Store builds on this class."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Self:
        """Open the database at `url`, creating or upgrading its schema as needed.

        With `upgrade=False` (web replicas, which must not race a migration) a database
        at an older schema revision is refused with the command that upgrades it. A
        database that is not ours, or newer than this code, is always refused untouched.
        """
        try:
            engine = create_database_engine(url)
            with engine.connect() as connection:
                state = migrate.schema_state(connection, url)
            if not state.up_to_date:
                if state.current is not None and not upgrade:
                    raise StorageError(
                        f"the database {url} is at schema revision {state.current}; this "
                        f"version of the aggregator needs {state.head}: run "
                        "`aggregator db upgrade` first (nothing was changed)"
                    )
                with engine.begin() as connection:
                    # Several processes may start on a new database at once: the write
                    # lock makes one migrate while the others wait, then find it done.
                    lock_for_writing(connection)
                    state = migrate.schema_state(connection, url)
                    if not state.up_to_date:
                        migrate.upgrade(connection, state)
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot open the database {url}: {exc.__class__.__name__}: {exc}"
            ) from exc
        except OSError as exc:
            raise StorageError(f"cannot open the database {url}: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def singleton(self, job: str) -> Iterator[bool]:
        """Whether this process may run `job` now: True in one process at a time.

        Several workers share one PostgreSQL database, and a job such as the alert check
        must not run in each of them (staff would get every alert once per worker). On
        PostgreSQL a session advisory lock decides, without waiting; SQLite deployments
        have one writing process, which always may.
        """
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = lock_key(job)
        with self.engine.connect() as connection:
            acquired = bool(
                connection.scalar(
                    text("SELECT pg_try_advisory_lock(:space, :key)"),
                    {"space": SINGLETON_LOCKS, "key": key},
                )
            )
            connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:space, :key)"),
                        {"space": SINGLETON_LOCKS, "key": key},
                    )
                    connection.commit()


def bump_data_version(connection: Connection) -> None:
    """Tell readers (the web server's render cache) that published output may have changed.

    Every write that changes what is published must call this, in its transaction.
    """
    connection.execute(
        update(schema.schema_info).values(data_version=schema.schema_info.c.data_version + 1)
    )


def lock_key(text: str) -> int:
    """A stable signed 32-bit key for an advisory lock (hashtext() is not guaranteed stable
    across PostgreSQL versions; this is computed the same everywhere)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _match_keys(item: Item) -> list[str]:
    """What a new item can be matched to another member's item on (see _find_story): the
    candidate index's title and link keys, so two workers storing halves of a cross-post
    with one title or link wait in turn. Not its title words: common words ("labour",
    "wages") would make every poll wait for every other; two halves with only equivalent
    headlines stored at the same instant may stay two stories (staff can `merge` them)."""
    return [key for key in candidate_keys(item.title, item.url) if not key.startswith("token\n")]


def match_lock_keys(items: Sequence[Item]) -> set[int]:
    """The MATCH_LOCKS keys lock_for_items takes for these items."""
    return {lock_key(text) for item in items for text in _match_keys(item)}


def lock_for_items(connection: Connection, source_url: str, items: Sequence[Item]) -> None:
    """Take, before reading anything, the locks that make a poll's item writes safe beside
    other processes (workers on other machines, an `aggregator fetch`).

    SQLite has one writer at a time: its write lock, now. PostgreSQL lets different
    sources' polls write at once: the source's advisory lock (one poll of a source at a
    time), and one per title and link of the poll's items, so that two members' halves of
    a cross-post, stored at the same instant by two workers, are matched in turn (the
    second sees the first's committed row) instead of becoming two stories. Locks are
    taken in one global order (see ITEM_LOCKS), so these waits cannot deadlock.
    """
    lock_for_sources(connection, {source_url: items})


def lock_for_sources(connection: Connection, polls: Mapping[str, Sequence[Item]]) -> None:
    """lock_for_items for several sources' polls written in one transaction (the writer's
    batch): on PostgreSQL every source key, then every title and link key, each space in
    sorted order, all before anything is read, so that batches of two workers wait for
    each other in the one global order and can never deadlock on these locks."""
    if connection.dialect.name != "postgresql":
        lock_for_writing(connection)
        return
    keys = sorted(set().union(*(match_lock_keys(items) for items in polls.values())))
    sources = sorted({lock_key(url) for url in polls})
    named = ", ".join(sorted(polls))
    try:
        if len(keys) > MAX_MATCH_LOCKS:
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (ITEM_LOCKS,))
            keys = []
        else:
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock_shared(%s, 0)", (ITEM_LOCKS,))
        # unnest yields the sorted keys in order, so they are locked in that order.
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) AS key",
            (SOURCE_LOCKS, sources),
        )
        if keys:
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) AS key",
                (MATCH_LOCKS, keys),
            )
    except OperationalError as exc:
        if is_retried(exc):
            raise
        raise StorageError(f"could not lock the items of {named} for writing: {exc}") from exc


def lock_all_items(connection: Connection) -> None:
    """Wait until no poll is writing items, and keep them all out until commit (prune)."""
    if connection.dialect.name != "postgresql":
        lock_for_writing(connection)
        return
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (ITEM_LOCKS,))


def lock_for_writing(connection: Connection) -> None:
    """Take the database's write lock now, at the start of a read-then-write transaction.

    Two `aggregator fetch` processes (or a fetch and the scheduler) polling the same source
    would otherwise both find an item missing and both insert it: a unique-constraint crash
    on SQLite, a duplicate story elsewhere. SQLite waits up to its busy timeout for the
    lock; PostgreSQL takes a transaction-scoped advisory lock.
    """
    try:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
    except OperationalError as exc:
        raise StorageError(
            "the database is busy: another aggregator process has been writing to it for "
            f"more than {SQLITE_BUSY_TIMEOUT_MS // 1000} s; try again when it has finished"
        ) from exc
