"""The Store: everything the pipeline reads from and writes to the database.

Each poll of a source is recorded in one transaction, so a crash or a failed poll never
leaves half an update behind and never removes what was stored before: a failure only
updates the source's health columns. Items are upserted by (source, identity key); new
items are matched to existing stories through the pure rules in aggregator.dedupe.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from aggregator.dedupe import CROSS_POST_WINDOW
from aggregator.dedupe import StoryCandidate
from aggregator.dedupe import html_text
from aggregator.dedupe import match_story
from aggregator.dedupe import title_key
from aggregator.errors import StorageError
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import Credit
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import PublishedStory
from aggregator.store import schema
from aggregator.store.schema import SCHEMA_VERSION

MAX_CANDIDATES = 50
SQLITE_BUSY_TIMEOUT_MS = 30_000


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


def create_database_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1] if "///" in url else ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating if new) the database at `url`; StorageError if it is unusable."""
        try:
            engine = create_database_engine(url)
            with engine.begin() as connection:
                _ensure_schema(connection, url)
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot open the database {url}: {exc.__class__.__name__}: {exc}"
            ) from exc
        except OSError as exc:
            raise StorageError(f"cannot open the database {url}: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- configuration -------------------------------------------------------------

    def sync_config(self, config: Config) -> None:
        """Make members and sources match feeds.yaml; stored items are never deleted."""
        with self.engine.begin() as connection:
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
        )

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
                    moved_to=result.permanent_redirect,
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
        """Store a successful poll's items in one transaction; report what changed."""
        assert result.content is not None
        new = updated = 0
        with self.engine.begin() as connection:
            source_id = connection.scalar(
                select(schema.sources.c.id).where(schema.sources.c.url == result.source.url)
            )
            if source_id is None:
                raise StorageError(f"source {result.source.url} is not in the database")
            for item in _unique_by_key(items):
                outcome = self._upsert_item(connection, source_id, item, result.fetched_at)
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
        self, connection: Connection, source_id: int, item: Item, seen_at: datetime
    ) -> PollOutcome:
        existing = connection.execute(
            select(
                schema.items.c.id,
                schema.items.c.story_id,
                schema.items.c.content_hash,
                schema.items.c.published,
                schema.items.c.date_from_source,
            ).where(schema.items.c.source_id == source_id, schema.items.c.key == item.key)
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
            _refresh_story_dates(connection, existing.story_id)
            return PollOutcome.UPDATED
        story_id = self._find_story(connection, item)
        if story_id is None:
            inserted = connection.execute(
                schema.stories.insert().values(
                    uid=story_uid(item.source_url, item.key),
                    published=item.published,
                    updated=item.updated,
                )
            ).inserted_primary_key
            assert inserted is not None
            story_id = int(inserted[0])
        connection.execute(
            schema.items.insert().values(
                source_id=source_id,
                member_id=item.member_id,
                story_id=story_id,
                key=item.key,
                first_seen_at=seen_at,
                **_item_values(item),
            )
        )
        _refresh_story_dates(connection, story_id)
        return PollOutcome.NEW

    def _find_story(self, connection: Connection, item: Item) -> int | None:
        key = title_key(item.title)
        conditions: list[ColumnElement[bool]] = [
            (schema.items.c.title_key == key)
            & (schema.items.c.published >= item.published - CROSS_POST_WINDOW)
            & (schema.items.c.published <= item.published + CROSS_POST_WINDOW)
        ]
        if item.url is not None:
            conditions.append(schema.items.c.url == item.url)
        rows = connection.execute(
            select(
                schema.items.c.story_id,
                schema.items.c.member_id,
                schema.items.c.url,
                schema.items.c.title_key,
                schema.items.c.published,
                schema.items.c.content_html,
                schema.items.c.summary,
            )
            .where(or_(*conditions))
            .limit(MAX_CANDIDATES)
        ).all()
        candidates = [
            StoryCandidate(
                story_id=row.story_id,
                member_id=row.member_id,
                url=row.url,
                title_key=row.title_key,
                published=row.published,
                text=html_text(row.content_html or row.summary),
            )
            for row in rows
        ]
        return match_story(
            url=item.url,
            title=item.title,
            published=item.published,
            text=html_text(item.content_html or item.summary),
            candidates=candidates,
        )

    # --- reading for publishing ----------------------------------------------------

    def latest_stories(self, limit: int, *, member_id: str | None = None) -> list[PublishedStory]:
        """The newest `limit` stories, newest first, each with every member credited."""
        query = select(schema.stories.c.id, schema.stories.c.uid).order_by(
            schema.stories.c.published.desc(), schema.stories.c.id.desc()
        )
        if member_id is not None:
            query = query.where(
                schema.stories.c.id.in_(
                    select(schema.items.c.story_id).where(schema.items.c.member_id == member_id)
                )
            )
        with self.engine.connect() as connection:
            story_rows = connection.execute(query.limit(limit)).all()
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
        return [
            _published_story(row.uid, by_story[row.id]) for row in story_rows if by_story[row.id]
        ]

    def count_items(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(schema.items)) or 0


def _ensure_schema(connection: Connection, url: str) -> None:
    tables = set(inspect(connection).get_table_names())
    if not tables:
        schema.metadata.create_all(connection)
        connection.execute(schema.schema_info.insert().values(version=SCHEMA_VERSION))
        return
    if "schema_info" not in tables:
        raise StorageError(
            f"the database {url} was not created by this aggregator (no schema_info table): "
            "point --database at a new file or an empty database"
        )
    version = connection.scalar(select(schema.schema_info.c.version))
    if version != SCHEMA_VERSION:
        raise StorageError(
            f"the database {url} is at schema version {version}, this aggregator needs "
            f"{SCHEMA_VERSION}: it was not opened, nothing was changed"
        )


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
        image=primary.image,
        language=primary.language,
    )
