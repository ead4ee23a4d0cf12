"""The Store: everything the pipeline reads from and writes to the database.

Each poll of a source is recorded in one transaction, so a crash or a failed poll never
leaves half an update behind and never removes what was stored before: a failure only
updates the source's health columns. Items are upserted by (source, identity key); new
items are matched to existing stories through the pure rules in aggregator.dedupe.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import bindparam
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from aggregator.dedupe import CROSS_POST_WINDOW
from aggregator.dedupe import StoryCandidate
from aggregator.dedupe import match_story
from aggregator.dedupe import title_key
from aggregator.errors import StorageError
from aggregator.ingest.normalize import html_to_text
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import Credit
from aggregator.models import FetchResult
from aggregator.models import HiddenStory
from aggregator.models import Item
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import PublishedStory
from aggregator.store import migrate
from aggregator.store import schema
from aggregator.text import slugify

MAX_CANDIDATES = 50
# Bound on the values of one IN (...) list (SQLite allows 32,766 parameters, but a batch
# this size is already far beyond one feed).
_IN_CHUNK = 500
# An item as _upsert_item needs it to decide between unchanged, updated and new.
_STORED_ITEM = select(
    schema.items.c.id,
    schema.items.c.story_id,
    schema.items.c.content_hash,
    schema.items.c.published,
    schema.items.c.date_from_source,
)
GONE_STATUS = 410
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
PRUNE_BATCH = 1_000  # items deleted per transaction: writers wait at most one batch


@dataclass(frozen=True)
class SourceState:
    """What the database remembers about a source between polls."""

    validators: CacheValidators
    body_hash: str | None
    consecutive_failures: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    moved_to: str | None
    discovered_url: str | None = None  # the feed autodiscovery chose for this address
    gone_at: datetime | None = None  # when the site answered 410 Gone; not polled since


@dataclass(frozen=True)
class HiddenRecord:
    """A story taken out of the published feeds, and why (feeds.yaml or `aggregator hide`)."""

    target: str  # "urn:uuid:…" or an item's canonical URL
    reason: str
    origin: str  # "config" or "cli"
    hidden_at: datetime


@dataclass(frozen=True)
class ScheduleRecord:
    """What the scheduler remembers about a source between polls."""

    url: str
    next_poll_at: datetime | None  # None: never scheduled
    interval_seconds: int | None  # the adaptive interval; None: as configured
    unchanged_polls: int
    declared_interval_seconds: int | None  # the source's own <ttl>/sy:updatePeriod
    consecutive_failures: int


@dataclass(frozen=True)
class PruneReport:
    """What one retention pass deleted."""

    items: int
    stories: int
    host_pauses: int


@dataclass(frozen=True)
class HostPause:
    """A host that asked us to slow down (429/503), left alone until `until`."""

    host: str
    until: datetime
    reason: str


@dataclass(frozen=True)
class SourceHealth:
    """One source's health as stored, for the status page and alerts."""

    url: str
    member_id: str
    kind: str
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_warning: str | None
    consecutive_failures: int
    failing_since: datetime | None
    items: int
    last_new_item_at: datetime | None
    newest_item_published: datetime | None
    next_poll_at: datetime | None
    moved_to: str | None
    last_status: int | None


@dataclass(frozen=True)
class WebSubRecord:
    """One source's WebSub subscription as stored (service.websub reads and drives it)."""

    source_url: str
    callback_id: str
    hub: str
    topic: str
    secret: str
    state: str
    callback_url: str | None
    requested_at: datetime | None
    lease_expires_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AlertRecord:
    """An alert that was sent and still stands (so it is not sent again)."""

    kind: str
    subject: str
    detail: str
    sent_at: datetime


@dataclass(frozen=True)
class StoryCursor:
    """Where a page of stories (newest first) ended: the last story's date and row id."""

    published: datetime
    story_id: int

    def encode(self) -> str:
        """An opaque, URL-safe token; decode_cursor reads it back."""
        text = f"{self.published.isoformat()}|{self.story_id}"
        return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class StoryPage:
    stories: list[PublishedStory]
    next_cursor: StoryCursor | None  # None: this was the last page


def decode_cursor(token: str) -> StoryCursor:
    """The cursor StoryCursor.encode made; ValueError for anything else."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        published_text, story_id_text = text.split("|")
        published = datetime.fromisoformat(published_text)
        story_id = int(story_id_text)
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"not a cursor this server made: {token!r}") from exc
    if published.tzinfo is None or story_id < 0:
        raise ValueError(f"not a cursor this server made: {token!r}")
    return StoryCursor(published=published, story_id=story_id)


TAG_SLUG_MAX = 100


def tag_slug(tag: str) -> str:
    """A tag as it is matched and published in paths: "Fair Food" and "fair-food" agree.

    The project's one slug rule (aggregator.text.slugify: accents folded, "Capacitación"
    is "capacitacion"), with room for longer tags than ids have; safe as a path segment
    and as a file name.
    """
    return slugify(tag, TAG_SLUG_MAX)


def body_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def story_uid(source_url: str, key: str) -> str:
    """A story's permanent id, derived from its first item so a rebuilt database agrees."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_url}\n{key}"))


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the exporter, the web server) read while a poll writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
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


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
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
                    _lock_for_writing(connection)
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
        key = _lock_key(job)
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

    # --- configuration -------------------------------------------------------------

    def sync_config(self, config: Config) -> None:
        """Make members and sources match feeds.yaml; stored items are never deleted."""
        with self.engine.begin() as connection:
            _lock_for_writing(connection)
            known_members = set(connection.scalars(select(schema.members.c.id)))
            for member in config.members:
                values = {"name": member.name, "url": member.url, "tags": list(member.tags)}
                if member.id in known_members:
                    connection.execute(
                        update(schema.members)
                        .where(schema.members.c.id == member.id)
                        .values(values)
                    )
                else:
                    connection.execute(schema.members.insert().values(id=member.id, **values))
            known_sources = dict(
                connection.execute(select(schema.sources.c.url, schema.sources.c.member_id)).all()
            )
            for member in config.members:
                for source in member.sources:
                    if source.url not in known_sources:
                        connection.execute(
                            schema.sources.insert().values(
                                url=source.url,
                                member_id=member.id,
                                kind=source.kind,
                                consecutive_failures=0,
                            )
                        )
                    elif known_sources[source.url] != member.id:
                        connection.execute(
                            update(schema.sources)
                            .where(schema.sources.c.url == source.url)
                            .values(member_id=member.id, kind=source.kind)
                        )
            # Member names, addresses and tags are published: renderings cached before are stale.
            _bump_data_version(connection)
        self.sync_hidden(config.hidden)

    # --- polling -------------------------------------------------------------------

    def source_state(self, url: str) -> SourceState:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(schema.sources).where(schema.sources.c.url == url)
            ).one_or_none()
        if row is None:
            raise StorageError(f"source {url} is not in the database: run sync_config first")
        return SourceState(
            validators=CacheValidators(etag=row.etag, last_modified=row.last_modified),
            body_hash=row.body_hash,
            consecutive_failures=row.consecutive_failures,
            last_polled_at=row.last_polled_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            moved_to=row.moved_to,
            discovered_url=row.discovered_url,
            gone_at=row.gone_at,
        )

    def remember_discovered_feed(self, url: str, discovered_url: str | None) -> None:
        """Keep the feed autodiscovery chose for source `url` (None forgets it).

        The validators and body hash of the page it was found on mean nothing for the feed,
        so they are cleared with every change of address.
        """
        sources = schema.sources.c
        with self.engine.begin() as connection:
            current = connection.scalar(select(sources.discovered_url).where(sources.url == url))
            if current == discovered_url:
                return
            connection.execute(
                update(schema.sources)
                .where(sources.url == url)
                .values(
                    discovered_url=discovered_url, etag=None, last_modified=None, body_hash=None
                )
            )

    def known_item_keys(self, url: str) -> set[str]:
        """The identity keys of the items stored for source `url` (to tell new ones)."""
        with self.engine.connect() as connection:
            return set(
                connection.scalars(
                    select(schema.items.c.key)
                    .join(schema.sources, schema.sources.c.id == schema.items.c.source_id)
                    .where(schema.sources.c.url == url)
                )
            )

    # --- moderation ----------------------------------------------------------------

    def story_exists(self, target: str) -> bool:
        """Whether `target` ("urn:uuid:…" or a canonical item URL) names a stored story."""
        with self.engine.connect() as connection:
            if target.startswith("urn:uuid:"):
                query = select(schema.stories.c.id).where(
                    schema.stories.c.uid == target.removeprefix("urn:uuid:")
                )
            else:
                query = select(schema.items.c.id).where(schema.items.c.url == target)
            return connection.execute(query.limit(1)).first() is not None

    def hide(self, target: str, reason: str, now: datetime, *, origin: str = "cli") -> None:
        """Take a story out of every published feed; the reason is kept with it."""
        table = schema.hidden_stories
        with self.engine.begin() as connection:
            connection.execute(table.delete().where(table.c.target == target))
            connection.execute(
                table.insert().values(target=target, reason=reason, origin=origin, hidden_at=now)
            )
            _bump_data_version(connection)

    def unhide(self, target: str) -> HiddenRecord | None:
        """Publish a hidden story again; returns what was removed, None if it was not hidden."""
        table = schema.hidden_stories
        with self.engine.begin() as connection:
            row = connection.execute(select(table).where(table.c.target == target)).one_or_none()
            if row is None:
                return None
            connection.execute(table.delete().where(table.c.target == target))
            _bump_data_version(connection)
        return HiddenRecord(row.target, row.reason, row.origin, row.hidden_at)

    def hidden_stories(self) -> list[HiddenRecord]:
        table = schema.hidden_stories
        with self.engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.hidden_at)).all()
        return [HiddenRecord(row.target, row.reason, row.origin, row.hidden_at) for row in rows]

    def sync_hidden(self, hidden: Iterable[HiddenStory], now: datetime | None = None) -> None:
        """Make the feeds.yaml `hidden:` list the stored one; `hide` command entries stay."""
        now = now or datetime.now(UTC)
        table = schema.hidden_stories
        wanted = {entry.target: entry.reason for entry in hidden}
        with self.engine.begin() as connection:
            current = {
                row.target: row
                for row in connection.execute(select(table).where(table.c.origin == "config"))
            }
            changed = False
            for target in current.keys() - wanted.keys():
                connection.execute(table.delete().where(table.c.target == target))
                changed = True
            for target, reason in wanted.items():
                row = current.get(target)
                if row is not None and row.reason == reason:
                    continue
                connection.execute(table.delete().where(table.c.target == target))
                connection.execute(
                    table.insert().values(
                        target=target, reason=reason, origin="config", hidden_at=now
                    )
                )
                changed = True
            if changed:
                _bump_data_version(connection)

    def record_failure(self, result: FetchResult, cause: str) -> PollReport:
        """A failed poll touches only the source's health: stored items stay published."""
        with self.engine.begin() as connection:
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.url == result.source.url)
                .values(
                    last_polled_at=result.fetched_at,
                    last_error=cause,
                    consecutive_failures=schema.sources.c.consecutive_failures + 1,
                    failing_since=func.coalesce(
                        schema.sources.c.failing_since,
                        literal(result.fetched_at, schema.UTCDateTime()),
                    ),
                    last_status=result.status,
                    moved_to=result.permanent_redirect,
                    **_gone_values(result),
                )
            )
        return PollReport(
            source=result.source,
            outcome=PollOutcome.FAILED,
            error=cause,
            moved_to=result.permanent_redirect,
        )

    def record_unchanged(self, result: FetchResult) -> PollReport:
        """A 304, or a 200 whose body is byte-identical to the last one."""
        with self.engine.begin() as connection:
            self._mark_success(connection, result, body_hash=None, warning=None)
        return PollReport(
            source=result.source,
            outcome=PollOutcome.UNCHANGED,
            moved_to=result.permanent_redirect,
        )

    def record_items(
        self,
        result: FetchResult,
        items: Sequence[Item],
        *,
        warning: str | None = None,
    ) -> PollReport:
        """Store a successful poll's items in one transaction; report what changed.

        Safe beside other processes writing the same database: see _lock_for_items. A
        transaction PostgreSQL rolled back to break a deadlock is run again.
        """
        unique = _unique_by_key(items)
        new = updated = 0
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                new, updated = self._store_items(result, unique, warning)
                break
            except OperationalError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if attempt == WRITE_ATTEMPTS or sqlstate not in RETRIED_SQLSTATES:
                    raise
        if new:
            outcome = PollOutcome.NEW
        elif updated:
            outcome = PollOutcome.UPDATED
        else:
            outcome = PollOutcome.UNCHANGED
        return PollReport(
            source=result.source,
            outcome=outcome,
            new=new,
            updated=updated,
            moved_to=result.permanent_redirect,
            warning=warning,
        )

    def _store_items(
        self, result: FetchResult, unique: Sequence[Item], warning: str | None
    ) -> tuple[int, int]:
        """record_items' transaction: (new, updated) items."""
        assert result.content is not None
        new = updated = 0
        with self.engine.begin() as connection:
            _lock_for_items(connection, result.source.url, unique)
            source_id = connection.scalar(
                select(schema.sources.c.id).where(schema.sources.c.url == result.source.url)
            )
            if source_id is None:
                raise StorageError(f"source {result.source.url} is not in the database")
            batch_keys = frozenset(item.key for item in unique)
            known = _stored_by_key(connection, source_id, batch_keys)
            stale = _rekey_candidates(
                connection,
                source_id,
                {item.content_hash for item in unique if item.key not in known},
                batch_keys,
            )
            for item in unique:
                outcome = self._upsert_item(
                    connection,
                    source_id,
                    item,
                    result.fetched_at,
                    batch_keys,
                    known=known,
                    stale=stale,
                )
                new += outcome is PollOutcome.NEW
                updated += outcome is PollOutcome.UPDATED
            self._mark_success(
                connection, result, body_hash=body_digest(result.content), warning=warning
            )
            if new:
                connection.execute(
                    update(schema.sources)
                    .where(schema.sources.c.id == source_id)
                    .values(last_new_item_at=result.fetched_at)
                )
            if new or updated:
                _bump_data_version(connection)
        return new, updated

    def _mark_success(
        self,
        connection: Connection,
        result: FetchResult,
        *,
        body_hash: str | None,
        warning: str | None,
    ) -> None:
        values: dict[str, Any] = {
            "last_polled_at": result.fetched_at,
            "last_success_at": result.fetched_at,
            "last_error": None,
            "last_warning": warning,
            "consecutive_failures": 0,
            "failing_since": None,
            "gone_at": None,
            "last_status": result.status,
            "moved_to": result.permanent_redirect,
        }
        if not result.not_modified:
            values["etag"] = result.validators.etag
            values["last_modified"] = result.validators.last_modified
        if body_hash is not None:
            values["body_hash"] = body_hash
        connection.execute(
            update(schema.sources).where(schema.sources.c.url == result.source.url).values(values)
        )

    def _upsert_item(
        self,
        connection: Connection,
        source_id: int,
        item: Item,
        seen_at: datetime,
        batch_keys: frozenset[str] = frozenset(),
        *,
        known: Mapping[str, Any] | None = None,
        stale: dict[str, list[int]] | None = None,
    ) -> PollOutcome:
        """`known` and `stale` are what record_items read for the whole batch in two queries
        (_stored_by_key, _rekey_candidates); without them each item is looked up alone."""
        if known is not None:
            existing = known.get(item.key)
        else:
            existing = connection.execute(
                _STORED_ITEM.where(
                    schema.items.c.source_id == source_id, schema.items.c.key == item.key
                )
            ).one_or_none()
        if existing is not None:
            if existing.content_hash == item.content_hash:
                return PollOutcome.UNCHANGED
            values = _item_values(item)
            if not item.date_from_source:
                # A source without dates: keep the first-seen time, or every edit would
                # jump the item back to the top of the combined feed.
                values["published"] = existing.published
                values["updated"] = seen_at
            connection.execute(
                update(schema.items).where(schema.items.c.id == existing.id).values(values)
            )
            _save_item_tags(connection, existing.id, item.tags, replace=True)
            _refresh_story_dates(connection, existing.story_id)
            return PollOutcome.UPDATED
        if stale is not None:
            if _rekey_from_candidates(connection, stale, item):
                return PollOutcome.UNCHANGED
        elif _rekey_identical_item(connection, source_id, item, batch_keys):
            return PollOutcome.UNCHANGED
        found = self._find_story(connection, item)
        new_story = False
        if found is None:
            story_id, new_story = _insert_story(connection, item)
        else:
            story_id = found
        # Values as parameters, not .values(): the statement is then compiled once and
        # cached, where building it per item was most of a first poll's time.
        item_id = connection.scalar(
            _upsert_statement(connection, _INSERT_ITEM),
            {
                "source_id": source_id,
                "member_id": item.member_id,
                "story_id": story_id,
                "key": item.key,
                "first_seen_at": seen_at,
                **_item_values(item),
            },
        )
        if item_id is None:
            # Another transaction stored this very item since `known` was read. The source
            # lock (_lock_for_items) makes that unreachable today; the unique constraint,
            # not the read before it, is what guarantees one row. Theirs stands.
            if new_story:
                connection.execute(
                    delete(schema.stories).where(schema.stories.c.id == story_id)
                )
            return PollOutcome.UNCHANGED
        _save_item_tags(connection, int(item_id), item.tags, replace=False)
        if not new_story:
            _refresh_story_dates(connection, story_id)
        return PollOutcome.NEW

    def _find_story(self, connection: Connection, item: Item) -> int | None:
        parameters = {
            "key": title_key(item.title),
            "earliest": item.published - CROSS_POST_WINDOW,
            "latest": item.published + CROSS_POST_WINDOW,
        }
        if item.url is None:
            rows = connection.execute(_CANDIDATES_BY_TITLE, parameters).all()
        else:
            rows = connection.execute(
                _CANDIDATES_BY_TITLE_OR_URL, {**parameters, "url": item.url}
            ).all()
        if not rows:
            # Most items have no candidate at all: skip reading their HTML as text.
            return None
        candidates = [
            StoryCandidate(
                story_id=row.story_id,
                member_id=row.member_id,
                url=row.url,
                title_key=row.title_key,
                published=row.published,
                text=html_to_text(row.content_html or row.summary),
            )
            for row in rows
        ]
        return match_story(
            url=item.url,
            title=item.title,
            published=item.published,
            text=html_to_text(item.content_html or item.summary),
            candidates=candidates,
        )

    # --- scheduling (aggregator.service.scheduler) ------------------------------------------

    def schedule_records(self) -> dict[str, ScheduleRecord]:
        """Every source's scheduling state, by URL."""
        columns = schema.sources.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    columns.url,
                    columns.next_poll_at,
                    columns.poll_interval_seconds,
                    columns.unchanged_polls,
                    columns.declared_interval_seconds,
                    columns.consecutive_failures,
                )
            ).all()
        return {
            row.url: ScheduleRecord(
                url=row.url,
                next_poll_at=row.next_poll_at,
                interval_seconds=row.poll_interval_seconds,
                unchanged_polls=row.unchanged_polls or 0,
                declared_interval_seconds=row.declared_interval_seconds,
                consecutive_failures=row.consecutive_failures,
            )
            for row in rows
        }

    def save_schedule(
        self,
        url: str,
        *,
        next_poll_at: datetime,
        interval_seconds: int | None,
        unchanged_polls: int,
        declared_interval_seconds: int | None,
        host_pause: HostPause | None = None,
        lease_owner: str | None = None,
    ) -> None:
        """Record the scheduler's decision after a poll, and the host's pause if any;
        the lease `lease_owner` holds on the source (claim_due_sources) ends with it."""
        with self.engine.begin() as connection:
            if lease_owner is not None:
                _release(connection, url, lease_owner)
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.url == url)
                .values(
                    next_poll_at=next_poll_at,
                    poll_interval_seconds=interval_seconds,
                    unchanged_polls=unchanged_polls,
                    declared_interval_seconds=declared_interval_seconds,
                )
            )
            if host_pause is not None:
                _save_host_pause(connection, host_pause)

    def set_next_poll(self, url: str, next_poll_at: datetime | None) -> None:
        """Move one source's next poll (None: due at once), e.g. after a config change."""
        with self.engine.begin() as connection:
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.url == url)
                .values(next_poll_at=next_poll_at, poll_interval_seconds=None, unchanged_polls=0)
            )

    def claim_due_sources(
        self,
        owner: str,
        now: datetime,
        *,
        lease: timedelta,
        limit: int,
        eligible: Callable[[str], bool] | None = None,
    ) -> list[ScheduleRecord]:
        """Claim up to `limit` due sources for `owner` until `now + lease`; their records.

        Due: never scheduled or next_poll_at passed, and no unexpired lease (a worker that
        died mid-poll holds its sources only until its leases run out). `eligible` (by URL)
        leaves out sources this worker must not poll (not in its feeds.yaml, host paused,
        in flight). Each source is claimed by one caller however many call at once: on
        PostgreSQL the due rows are read FOR UPDATE SKIP LOCKED in this short transaction
        (a concurrent claimer skips them rather than waiting), on SQLite the transaction
        holds the database's write lock. Oldest due first, so none starves.
        """
        columns = schema.sources.c
        with self.engine.begin() as connection:
            if connection.dialect.name != "postgresql":
                _lock_for_writing(connection)
            rows = connection.execute(
                select(
                    columns.id,
                    columns.url,
                    columns.next_poll_at,
                    columns.poll_interval_seconds,
                    columns.unchanged_polls,
                    columns.declared_interval_seconds,
                    columns.consecutive_failures,
                )
                .where(
                    or_(columns.next_poll_at.is_(None), columns.next_poll_at <= now),
                    or_(columns.lease_expires_at.is_(None), columns.lease_expires_at <= now),
                )
                .order_by(columns.next_poll_at.asc().nulls_first(), columns.id)
                .with_for_update(skip_locked=True)
            ).all()
            chosen = [row for row in rows if eligible is None or eligible(row.url)][:limit]
            if chosen:
                connection.execute(
                    update(schema.sources)
                    .where(columns.id.in_([row.id for row in chosen]))
                    .values(lease_owner=owner, lease_expires_at=now + lease)
                )
        return [
            ScheduleRecord(
                url=row.url,
                next_poll_at=row.next_poll_at,
                interval_seconds=row.poll_interval_seconds,
                unchanged_polls=row.unchanged_polls or 0,
                declared_interval_seconds=row.declared_interval_seconds,
                consecutive_failures=row.consecutive_failures,
            )
            for row in chosen
        ]

    def release_lease(self, url: str, owner: str) -> None:
        """End `owner`'s lease on source `url` (a poll abandoned at shutdown): due again
        at once for any worker. A lease that lapsed and was claimed by another stays."""
        with self.engine.begin() as connection:
            _release(connection, url, owner)

    def leases(self) -> dict[str, tuple[str, datetime]]:
        """Sources currently claimed: URL -> (owner, lease expiry)."""
        columns = schema.sources.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(columns.url, columns.lease_owner, columns.lease_expires_at).where(
                    columns.lease_owner.is_not(None)
                )
            ).all()
        return {row.url: (row.lease_owner, row.lease_expires_at) for row in rows}

    # --- retention -----------------------------------------------------------------

    def prune(
        self, cutoff: datetime, now: datetime, *, batch_size: int = PRUNE_BATCH
    ) -> PruneReport:
        """Delete items published before `cutoff`, stories left without items, and host
        pauses over by `now`.

        In transactions of `batch_size` items, oldest first, so a poll waits for one batch
        at most and readers never wait (SQLite's WAL, PostgreSQL's MVCC: they read the rows
        as they were until the batch commits). A story that keeps some items gets its
        dates from those; paging by cursor (newest first) goes on over what remains.
        """
        items = schema.items.c
        stories = schema.stories.c
        pruned_items = pruned_stories = 0
        while True:
            with self.engine.begin() as connection:
                _lock_all_items(connection)
                rows = connection.execute(
                    select(items.id, items.story_id)
                    .where(items.published < cutoff)
                    .order_by(items.published, items.id)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                item_ids = [row.id for row in rows]
                story_ids = sorted({row.story_id for row in rows})
                connection.execute(
                    delete(schema.item_tags).where(schema.item_tags.c.item_id.in_(item_ids))
                )
                connection.execute(delete(schema.items).where(items.id.in_(item_ids)))
                kept = set(
                    connection.scalars(
                        select(items.story_id).where(items.story_id.in_(story_ids)).distinct()
                    )
                )
                emptied = [story_id for story_id in story_ids if story_id not in kept]
                if emptied:
                    connection.execute(delete(schema.stories).where(stories.id.in_(emptied)))
                for story_id in sorted(kept):
                    _refresh_story_dates(connection, story_id)
                _bump_data_version(connection)
                pruned_items += len(item_ids)
                pruned_stories += len(emptied)
            if len(rows) < batch_size:
                break
        with self.engine.begin() as connection:
            pauses = connection.execute(
                delete(schema.host_pauses).where(schema.host_pauses.c.paused_until <= now)
            ).rowcount
        return PruneReport(items=pruned_items, stories=pruned_stories, host_pauses=pauses or 0)

    def host_pauses(self, now: datetime) -> dict[str, HostPause]:
        """Hosts still paused at `now`, by host."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.host_pauses).where(schema.host_pauses.c.paused_until > now)
            ).all()
        return {
            row.host: HostPause(host=row.host, until=row.paused_until, reason=row.reason)
            for row in rows
        }

    # --- status and alerts ---------------------------------------------------------

    def source_health(self) -> list[SourceHealth]:
        """Every source's health and counts, for /status and alerts."""
        columns = schema.sources.c
        counts = (
            select(
                schema.items.c.source_id,
                func.count().label("item_count"),
                func.max(schema.items.c.published).label("newest_published"),
            )
            .group_by(schema.items.c.source_id)
            .subquery()
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    schema.sources,
                    counts.c.item_count,
                    counts.c.newest_published,
                )
                .outerjoin(counts, counts.c.source_id == columns.id)
                .order_by(columns.id)
            ).all()
        return [
            SourceHealth(
                url=row.url,
                member_id=row.member_id,
                kind=row.kind,
                last_polled_at=row.last_polled_at,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                last_warning=row.last_warning,
                consecutive_failures=row.consecutive_failures,
                failing_since=row.failing_since,
                items=row.item_count or 0,
                last_new_item_at=row.last_new_item_at,
                newest_item_published=_aware(row.newest_published),
                next_poll_at=row.next_poll_at,
                moved_to=row.moved_to,
                last_status=row.last_status,
            )
            for row in rows
        ]

    def alert_records(self) -> dict[tuple[str, str], AlertRecord]:
        """Alerts sent and still standing, by (kind, subject)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(schema.alert_state)).all()
        return {
            (row.kind, row.subject): AlertRecord(
                kind=row.kind, subject=row.subject, detail=row.detail, sent_at=row.sent_at
            )
            for row in rows
        }

    def save_alert_records(
        self, added: Iterable[AlertRecord], removed: Iterable[tuple[str, str]]
    ) -> None:
        table = schema.alert_state
        with self.engine.begin() as connection:
            for kind, subject in removed:
                connection.execute(
                    table.delete().where(table.c.kind == kind, table.c.subject == subject)
                )
            for record in added:
                connection.execute(
                    table.delete().where(
                        table.c.kind == record.kind, table.c.subject == record.subject
                    )
                )
                connection.execute(
                    table.insert().values(
                        kind=record.kind,
                        subject=record.subject,
                        detail=record.detail,
                        sent_at=record.sent_at,
                    )
                )

    # --- reading for publishing ----------------------------------------------------

    def latest_stories(
        self,
        limit: int,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
        before: StoryCursor | None = None,
    ) -> list[PublishedStory]:
        """The newest `limit` stories, newest first, each with every member credited.

        The filters are those of story_page.
        """
        return self.story_page(
            limit, member_id=member_id, tag=tag, query=query, language=language, before=before
        ).stories

    def story_page(
        self,
        limit: int,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
        before: StoryCursor | None = None,
        offset: int = 0,
        stored_order: bool = False,
    ) -> StoryPage:
        """Up to `limit` stories, newest first, and the cursor of the page after them.

        A story is kept when one of its items is by `member_id`; when one of its items has
        the tag `tag`, or its member has (compared as tag_slug); when `query` occurs in one
        of its items' title or summary, case-insensitively; when one of its items is in
        `language` ("es" also takes "es-MX"). `before` continues after a page's cursor.
        `stored_order` orders by when each story was first stored, oldest first, which
        never reorders pages already seen (the Atom archive documents need that).
        """
        stories = schema.stories.c
        with self.engine.connect() as connection:
            conditions = _story_conditions(
                connection, member_id=member_id, tag=tag, query=query, language=language
            )
            if before is not None:
                conditions.append(
                    or_(
                        stories.published < before.published,
                        (stories.published == before.published) & (stories.id < before.story_id),
                    )
                )
            order = (
                [stories.id.asc()]
                if stored_order
                else [stories.published.desc(), stories.id.desc()]
            )
            story_rows = connection.execute(
                select(stories.id, stories.uid, stories.published)
                .where(*conditions)
                .order_by(*order)
                .offset(offset)
                .limit(limit + 1)
            ).all()
            more = len(story_rows) > limit
            story_rows = story_rows[:limit]
            story_ids = [row.id for row in story_rows]
            item_rows = connection.execute(
                select(
                    schema.items,
                    schema.members.c.name.label("member_name"),
                    schema.members.c.url.label("member_url"),
                )
                .join(schema.members, schema.members.c.id == schema.items.c.member_id)
                .where(schema.items.c.story_id.in_(story_ids))
                .order_by(schema.items.c.id)
            ).all()
        by_story: dict[int, list[Any]] = {story_id: [] for story_id in story_ids}
        for row in item_rows:
            by_story[row.story_id].append(row)
        last = story_rows[-1] if story_rows else None
        return StoryPage(
            stories=[
                _published_story(row.uid, by_story[row.id])
                for row in story_rows
                if by_story[row.id]
            ],
            next_cursor=(
                StoryCursor(published=last.published, story_id=last.id)
                if more and last is not None and not stored_order
                else None
            ),
        )

    def count_stories(
        self,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
    ) -> int:
        """How many stories story_page would go through with these filters."""
        with self.engine.connect() as connection:
            conditions = _story_conditions(
                connection, member_id=member_id, tag=tag, query=query, language=language
            )
            counted = connection.scalar(
                select(func.count()).select_from(schema.stories).where(*conditions)
            )
        return counted or 0

    def tag_slugs(self) -> list[str]:
        """Every tag in use, by item or by member, as tag_slug, sorted."""
        with self.engine.connect() as connection:
            slugs = set(connection.scalars(select(schema.item_tags.c.tag).distinct()))
            for tags in connection.scalars(select(schema.members.c.tags)):
                slugs.update(tag_slug(tag) for tag in tags)
        slugs.discard("")
        return sorted(slugs)

    def data_version(self) -> tuple[int, int]:
        """Changes whenever what is published may have changed; one cheap read."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    schema.schema_info.c.data_version,
                    select(func.max(schema.items.c.id)).scalar_subquery(),
                )
            ).one()
        return int(row[0] or 0), int(row[1] or 0)

    def healthy(self) -> bool:
        """Whether the database answers a query now (for /healthz)."""
        try:
            with self.engine.connect() as connection:
                connection.scalar(select(schema.schema_info.c.version))
        except SQLAlchemyError:
            return False
        return True

    def count_items(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(schema.items)) or 0

    # --- WebSub (aggregator.service.websub) ------------------------------------------------

    def remember_websub_hub(self, source_url: str, hub: str | None, topic: str | None) -> None:
        """Note the hub and topic a source's feed advertises now (hub None: none any more).

        A new hub or topic starts a new subscription (state "new") under a fresh callback id
        and secret; a feed that stopped advertising a hub loses its row. Either way the old
        subscription's deliveries find nothing and get 410 Gone, which ends it at the hub.
        """
        table = schema.websub_subscriptions
        with self.engine.begin() as connection:
            row = connection.execute(
                select(table.c.hub, table.c.topic).where(table.c.source_url == source_url)
            ).one_or_none()
            if hub is None or topic is None:
                if row is not None:
                    connection.execute(table.delete().where(table.c.source_url == source_url))
                return
            if row is not None and (row.hub, row.topic) == (hub, topic):
                return
            fresh = {
                "callback_id": secrets.token_urlsafe(18),
                "hub": hub,
                "topic": topic,
                # Hex: the spec limits hub.secret to 200 bytes and some hubs mangle symbols.
                "secret": secrets.token_hex(32),
                "state": "new",
                "callback_url": None,
                "requested_at": None,
                "lease_expires_at": None,
                "last_error": None,
            }
            if row is None:
                connection.execute(table.insert().values(source_url=source_url, **fresh))
            else:
                connection.execute(
                    update(table).where(table.c.source_url == source_url).values(fresh)
                )

    def websub_subscriptions(self) -> list[WebSubRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.websub_subscriptions).order_by(
                    schema.websub_subscriptions.c.source_url
                )
            ).all()
        return [_websub_record(row) for row in rows]

    def websub_subscription(self, callback_id: str) -> WebSubRecord | None:
        table = schema.websub_subscriptions
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.callback_id == callback_id)
            ).one_or_none()
        return _websub_record(row) if row is not None else None

    def save_websub_state(
        self,
        callback_id: str,
        state: str,
        *,
        error: str | None = None,
        requested_at: datetime | None = None,
        lease_expires_at: datetime | None = None,
        callback_url: str | None = None,
    ) -> None:
        """Move a subscription to `state`; `error` is always written (None clears it), the
        other values only when given."""
        values: dict[str, Any] = {"state": state, "last_error": error}
        if requested_at is not None:
            values["requested_at"] = requested_at
        if lease_expires_at is not None:
            values["lease_expires_at"] = lease_expires_at
        if callback_url is not None:
            values["callback_url"] = callback_url
        table = schema.websub_subscriptions
        with self.engine.begin() as connection:
            connection.execute(
                update(table).where(table.c.callback_id == callback_id).values(values)
            )

    def forget_websub_subscription(self, callback_id: str) -> None:
        table = schema.websub_subscriptions
        with self.engine.begin() as connection:
            connection.execute(table.delete().where(table.c.callback_id == callback_id))


def _story_conditions(
    connection: Connection,
    *,
    member_id: str | None,
    tag: str | None,
    query: str | None,
    language: str | None,
) -> list[ColumnElement[bool]]:
    stories = schema.stories.c
    items = schema.items.c
    hidden = schema.hidden_stories.c
    # Stories staff hid (by story id or by any of its items' URLs) are never published.
    conditions: list[ColumnElement[bool]] = [
        (literal("urn:uuid:") + stories.uid).not_in(select(hidden.target)),
        stories.id.not_in(select(items.story_id).where(items.url.in_(select(hidden.target)))),
    ]
    if member_id is not None:
        by_member = select(items.story_id).where(items.member_id == member_id)
        conditions.append(stories.id.in_(by_member))
    if tag is not None:
        slug = tag_slug(tag)
        tagged_items = (
            select(items.story_id)
            .join(schema.item_tags, schema.item_tags.c.item_id == items.id)
            .where(schema.item_tags.c.tag == slug)
        )
        options: list[ColumnElement[bool]] = [stories.id.in_(tagged_items)]
        # Members are few: matching their tags here keeps the SQL free of JSON operators.
        tagged_members = [
            row.id
            for row in connection.execute(select(schema.members.c.id, schema.members.c.tags))
            if slug in {tag_slug(member_tag) for member_tag in row.tags}
        ]
        if tagged_members:
            options.append(
                stories.id.in_(select(items.story_id).where(items.member_id.in_(tagged_members)))
            )
        conditions.append(or_(*options) if slug else false())
    if query:
        pattern = "%" + _escape_like(query) + "%"
        conditions.append(
            stories.id.in_(
                select(items.story_id).where(
                    or_(
                        items.title.ilike(pattern, escape="\\"),
                        items.summary.ilike(pattern, escape="\\"),
                    )
                )
            )
        )
    if language:
        folded = language.lower()
        conditions.append(
            stories.id.in_(
                select(items.story_id).where(
                    or_(
                        func.lower(items.language) == folded,
                        func.lower(items.language).like(_escape_like(folded) + "-%", escape="\\"),
                    )
                )
            )
        )
    return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _save_item_tags(
    connection: Connection, item_id: int, tags: Iterable[str], *, replace: bool
) -> None:
    table = schema.item_tags
    if replace:
        connection.execute(table.delete().where(table.c.item_id == item_id))
    slugs = dict.fromkeys(slug for slug in (tag_slug(tag) for tag in tags) if slug)
    if slugs:
        connection.execute(table.insert(), [{"item_id": item_id, "tag": slug} for slug in slugs])


def _bump_data_version(connection: Connection) -> None:
    """Tell readers (the web server's render cache) that published output may have changed.

    Every write that changes what is published must call this, in its transaction.
    """
    connection.execute(
        update(schema.schema_info).values(data_version=schema.schema_info.c.data_version + 1)
    )


def _websub_record(row: Any) -> WebSubRecord:
    return WebSubRecord(
        source_url=row.source_url,
        callback_id=row.callback_id,
        hub=row.hub,
        topic=row.topic,
        secret=row.secret,
        state=row.state,
        callback_url=row.callback_url,
        requested_at=row.requested_at,
        lease_expires_at=row.lease_expires_at,
        last_error=row.last_error,
    )


def _aware(value: Any) -> datetime | None:
    """An aggregate over a UTCDateTime column comes back untyped on SQLite: make it aware."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _release(connection: Connection, url: str, owner: str) -> None:
    columns = schema.sources.c
    connection.execute(
        update(schema.sources)
        .where(columns.url == url, columns.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )


def _save_host_pause(connection: Connection, pause: HostPause) -> None:
    """Pause a host, keeping the later of an existing and the new pause."""
    table = schema.host_pauses
    current = connection.scalar(select(table.c.paused_until).where(table.c.host == pause.host))
    if current is None:
        connection.execute(
            table.insert().values(host=pause.host, paused_until=pause.until, reason=pause.reason)
        )
    elif current < pause.until:
        connection.execute(
            update(table)
            .where(table.c.host == pause.host)
            .values(paused_until=pause.until, reason=pause.reason)
        )


# Cross-post candidates: same title key within the window, or (second form) same link.
# Built once with bound parameters so that each lookup reuses the compiled statement.
_CANDIDATE_COLUMNS = select(
    schema.items.c.story_id,
    schema.items.c.member_id,
    schema.items.c.url,
    schema.items.c.title_key,
    schema.items.c.published,
    schema.items.c.content_html,
    schema.items.c.summary,
).limit(MAX_CANDIDATES)
_SAME_TITLE: ColumnElement[bool] = (
    (schema.items.c.title_key == bindparam("key"))
    & (schema.items.c.published >= bindparam("earliest"))
    & (schema.items.c.published <= bindparam("latest"))
)
_CANDIDATES_BY_TITLE = _CANDIDATE_COLUMNS.where(_SAME_TITLE)
_CANDIDATES_BY_TITLE_OR_URL = _CANDIDATE_COLUMNS.where(
    or_(_SAME_TITLE, schema.items.c.url == bindparam("url"))
)


def _stored_by_key(connection: Connection, source_id: int, keys: Iterable[str]) -> dict[str, Any]:
    """The stored rows (as _STORED_ITEM reads them) of this source's items with these keys."""
    found: dict[str, Any] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        rows = connection.execute(
            _STORED_ITEM.add_columns(schema.items.c.key).where(
                schema.items.c.source_id == source_id, schema.items.c.key.in_(chunk)
            )
        ).all()
        found.update((row.key, row) for row in rows)
    return found


def _rekey_candidates(
    connection: Connection, source_id: int, hashes: Iterable[str], batch_keys: frozenset[str]
) -> dict[str, list[int]]:
    """Stored items of this source, by content hash, that _rekey_identical_item could pick:
    a hash among `hashes` and a key that is gone from this poll."""
    items = schema.items.c
    candidates: dict[str, list[int]] = {}
    ordered = sorted(hashes)
    for start in range(0, len(ordered), _IN_CHUNK):
        query = select(items.id, items.content_hash, items.key).where(
            items.source_id == source_id, items.content_hash.in_(ordered[start : start + _IN_CHUNK])
        )
        for row in connection.execute(query.order_by(items.id)):
            if row.key not in batch_keys:
                candidates.setdefault(row.content_hash, []).append(row.id)
    return candidates


def _rekey_from_candidates(connection: Connection, stale: dict[str, list[int]], item: Item) -> bool:
    """_rekey_identical_item over the batch's prefetched candidates (each is used once: once
    re-keyed its key is in the batch, so the one-query version would not pick it again)."""
    ids = stale.get(item.content_hash)
    if not ids:
        return False
    connection.execute(
        update(schema.items).where(schema.items.c.id == ids.pop(0)).values(key=item.key)
    )
    return True


def _upserts(table: Any, conflict: list[str]) -> dict[str, Any]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, per dialect: an insert that lost a race
    returns no row instead of failing its whole transaction."""
    return {
        "postgresql": postgresql.insert(table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(table.c.id),
        "sqlite": sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(table.c.id),
    }


_INSERT_ITEM = _upserts(schema.items, ["source_id", "key"])
_INSERT_STORY = _upserts(schema.stories, ["uid"])


def _upsert_statement(connection: Connection, statements: dict[str, Any]) -> Any:
    return statements[connection.dialect.name]


def _insert_story(connection: Connection, item: Item) -> tuple[int, bool]:
    """The story whose first item is `item`: (its id, whether this call created it).

    Its uid is derived from the item, so a story with that uid already stored (another
    process's, or one a re-keyed item left behind) is the same story and is used.
    """
    uid = story_uid(item.source_url, item.key)
    story_id = connection.scalar(
        _upsert_statement(connection, _INSERT_STORY),
        {
            "uid": uid,
            "published": item.published,
            # What _refresh_story_dates would set for a story of this one item.
            "updated": max(item.published, item.updated),
        },
    )
    if story_id is not None:
        return int(story_id), True
    existing = connection.scalar(select(schema.stories.c.id).where(schema.stories.c.uid == uid))
    if existing is None:
        raise StorageError(f"story {uid} was neither stored nor found; try the poll again")
    return int(existing), False


def _lock_key(text: str) -> int:
    """A stable signed 32-bit key for an advisory lock (hashtext() is not guaranteed stable
    across PostgreSQL versions; this is computed the same everywhere)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _match_keys(item: Item) -> list[str]:
    """What a new item can be matched to another member's item on (see _find_story)."""
    keys = [f"title\n{title_key(item.title)}"]
    if item.url is not None:
        keys.append(f"url\n{item.url}")
    return keys


def _lock_for_items(connection: Connection, source_url: str, items: Sequence[Item]) -> None:
    """Take, before reading anything, the locks that make a poll's item writes safe beside
    other processes (workers on other machines, an `aggregator fetch`).

    SQLite has one writer at a time: its write lock, now. PostgreSQL lets different
    sources' polls write at once: the source's advisory lock (one poll of a source at a
    time), and one per title and link of the poll's items, so that two members' halves of
    a cross-post, stored at the same instant by two workers, are matched in turn (the
    second sees the first's committed row) instead of becoming two stories. Locks are
    taken in one global order (see ITEM_LOCKS), so these waits cannot deadlock.
    """
    if connection.dialect.name != "postgresql":
        _lock_for_writing(connection)
        return
    keys = sorted({_lock_key(text) for item in items for text in _match_keys(item)})
    try:
        if len(keys) > MAX_MATCH_LOCKS:
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (ITEM_LOCKS,))
            keys = []
        else:
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock_shared(%s, 0)", (ITEM_LOCKS,)
            )
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%s, %s)", (SOURCE_LOCKS, _lock_key(source_url))
        )
        if keys:
            # unnest yields the sorted keys in order, so they are locked in that order.
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) AS key",
                (MATCH_LOCKS, keys),
            )
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) in RETRIED_SQLSTATES:
            raise
        raise StorageError(f"could not lock the items of {source_url} for writing: {exc}") from exc


def _lock_all_items(connection: Connection) -> None:
    """Wait until no poll is writing items, and keep them all out until commit (prune)."""
    if connection.dialect.name != "postgresql":
        _lock_for_writing(connection)
        return
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (ITEM_LOCKS,))


def _lock_for_writing(connection: Connection) -> None:
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


def _rekey_identical_item(
    connection: Connection, source_id: int, item: Item, batch_keys: frozenset[str]
) -> bool:
    """Give a stored item the new key of an item that is identical to it for readers.

    Some feeds (a known WordPress plugin bug) stamp fresh GUIDs on every item at every
    request: each poll would insert every item again. An item of the same source whose
    key is gone from this poll and whose content hash matches is the same item, re-keyed.
    Called only when no stored item has `item.key`.
    """
    items = schema.items.c
    query = select(items.id).where(
        items.source_id == source_id, items.content_hash == item.content_hash
    )
    if batch_keys:
        query = query.where(items.key.not_in(batch_keys))
    stale = connection.scalar(query.limit(1))
    if stale is None:
        return False
    connection.execute(update(schema.items).where(items.id == stale).values(key=item.key))
    return True


def _gone_values(result: FetchResult) -> dict[str, Any]:
    """A 410 Gone marks the source gone (first time kept); other failures leave it be."""
    if result.status != GONE_STATUS:
        return {}
    return {
        "gone_at": func.coalesce(
            schema.sources.c.gone_at, literal(result.fetched_at, schema.UTCDateTime())
        )
    }


def _unique_by_key(items: Iterable[Item]) -> list[Item]:
    """A feed that repeats an entry contributes it once (the first occurrence wins)."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique


def _item_values(item: Item) -> dict[str, Any]:
    return {
        "url": item.url,
        "title": item.title,
        "title_key": title_key(item.title),
        "content_html": item.content_html,
        "summary": item.summary,
        "published": item.published,
        "updated": item.updated,
        "date_from_source": item.date_from_source,
        "authors": list(item.authors),
        "tags": list(item.tags),
        "image": item.image,
        "language": item.language,
        "content_hash": item.content_hash,
    }


def _refresh_story_dates(connection: Connection, story_id: int) -> None:
    published, updated = connection.execute(
        select(func.min(schema.items.c.published), func.max(schema.items.c.updated)).where(
            schema.items.c.story_id == story_id
        )
    ).one()
    connection.execute(
        update(schema.stories)
        .where(schema.stories.c.id == story_id)
        .values(published=published, updated=max(published, updated))
    )


def _published_story(uid: str, rows: Sequence[Any]) -> PublishedStory:
    """One story from its items: the earliest published speaks for it, all are credited.

    Ordering by publication rather than storage keeps the original poster first however
    the concurrent polls happened to finish.
    """
    rows = sorted(rows, key=lambda row: (row.published, row.id))
    primary = rows[0]
    member_credits: list[Credit] = []
    credited: set[str] = set()
    tags: list[str] = []
    for row in rows:
        if row.member_id not in credited:
            credited.add(row.member_id)
            member_credits.append(
                Credit(
                    member_id=row.member_id,
                    member_name=row.member_name,
                    member_url=row.member_url,
                    item_url=row.url,
                )
            )
        tags.extend(tag for tag in row.tags if tag.casefold() not in {t.casefold() for t in tags})
    return PublishedStory(
        id=f"urn:uuid:{uid}",
        url=primary.url,
        title=primary.title,
        content_html=primary.content_html,
        summary=primary.summary,
        published=min(row.published for row in rows),
        updated=max(row.updated for row in rows),
        credits=tuple(member_credits),
        authors=tuple(primary.authors),
        tags=tuple(tags),
        # A cross-poster may have a picture where the original post has none.
        image=primary.image or next((row.image for row in rows if row.image), None),
        language=primary.language,
    )
