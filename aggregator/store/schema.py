"""The database schema: SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

Only this package knows SQL. Times are stored as naive UTC (SQLite has no time zones)
and come back timezone-aware through UTCDateTime, so no naive datetime ever leaves it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass a UTC-aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite returns text for some expressions
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


# The tables as the code uses them now. Every change here needs a migration in
# store/migrations/versions (`alembic revision --autogenerate` against a database at the
# previous revision); tests/store/test_migrate.py checks the two agree.
metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    # Always 1, written by the first migration; the schema's revision is Alembic's
    # (the alembic_version table, read by store.migrate).
    Column("version", Integer, nullable=False),
    # Bumped by every write that changes what is published, so the web server can tell
    # with one cheap read whether a cached rendering is still current.
    Column("data_version", Integer, nullable=False, default=0, server_default="0"),
)

members = Table(
    "members",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("tags", JSON, nullable=False, default=list),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_new_item_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_warning", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("moved_to", Text),
    # For a `url:` source (or a `feed:` that turned out to be a web page): the feed
    # autodiscovery chose, polled instead of the configured address until it fails.
    Column("discovered_url", Text),
    # Scheduling state (aggregator.service.scheduler): a restart continues from here.
    Column("next_poll_at", UTCDateTime),  # NULL: never scheduled, due at once
    Column("poll_interval_seconds", Integer),  # the adaptive interval; NULL: as configured
    Column("unchanged_polls", Integer, nullable=False, default=0, server_default="0"),
    Column("declared_interval_seconds", Integer),  # RSS <ttl> / sy:updatePeriod, remembered
    Column("failing_since", UTCDateTime),  # first failure of the current streak
    Column("last_status", Integer),  # HTTP status of the last poll (410 means gone)
    # When the site answered 410 Gone: `fetch` stops polling the address (a new address in
    # feeds.yaml is a new source row, polled again).
    Column("gone_at", UTCDateTime),
    # The worker polling this source now (service.scheduler), until lease_expires_at: each
    # due source is claimed by one worker, and a crashed worker's claims lapse on their own.
    Column("lease_owner", Text),
    Column("lease_expires_at", UTCDateTime),
)

# A host that answered 429 or 503 is left alone until paused_until.
host_pauses = Table(
    "host_pauses",
    metadata,
    Column("host", Text, primary_key=True),
    Column("paused_until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
)

# Alerts already sent and still standing, so each is sent once (and its recovery once).
alert_state = Table(
    "alert_state",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("detail", Text, nullable=False, default="", server_default=""),
    Column("sent_at", UTCDateTime, nullable=False),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Index("ix_stories_published", "published", "id"),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("member_id", String(40), ForeignKey("members.id"), nullable=False),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("key", Text, nullable=False),
    Column("url", Text),
    Column("title", Text, nullable=False),
    Column("title_key", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("date_from_source", Boolean, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("image", Text),
    Column("language", String(35)),
    Column("content_hash", String(64), nullable=False),
    # Why the store joined this item to a story stored before it (the rule and its
    # evidence, aggregator.dedupe.Match.evidence); NULL when the
    # item started its story. Shown by `aggregator story` and /status.
    Column("merge_reason", JSON),
    # What the cross-post rule compares of the item's text (dedupe.TextFeatures.to_json),
    # written with the item so that matching never converts a candidate's HTML again.
    # NULL or another version: computed from the text when the item is a candidate.
    Column("match_features", JSON),
    # The digest of the parsed entry the row was last written from, with everything else
    # normalize's output depends on (aggregator.ingest.normalize.entry_digests): a poll
    # does not normalize an entry whose digest is stored. NULL matches no entry.
    Column("entry_digest", String(32)),
    UniqueConstraint("source_id", "key", name="uq_items_source_key"),
    Index("ix_items_story", "story_id"),
    Index("ix_items_url", "url"),
    Index("ix_items_title_key", "title_key", "published"),
    Index("ix_items_member_published", "member_id", "published"),
    Index("ix_items_published", "published"),  # retention: the oldest items first
    Index("ix_items_first_seen", "first_seen_at"),  # /status: the latest merges
)

# The cross-post candidate index: each item under every key of dedupe.candidate_keys (its
# title key, its distinctive title words, its article link), with its date, so a new item's
# candidates are a few indexed range reads within the time window, never a scan.
story_keys = Table(
    "story_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("published", UTCDateTime, nullable=False),
    # The item's member (items.member_id, which never changes), so that the candidate read
    # skips the new item's own member without reading the items table.
    Column("member_id", String(40), nullable=False),
    # Covering: a candidate read (store/stories.py) is one range read of this index, with
    # no lookup of a table row per row read (random reads that grew with the database).
    Index("ix_story_keys_candidates", "key", "published", "member_id", "item_id"),
    Index("ix_story_keys_item", "item_id"),
)

# Each item's tags as slugs (text.tag_slug), so the per-tag feeds and the API's
# tag filter are one indexed lookup on SQLite and PostgreSQL alike (no JSON operators).
item_tags = Table(
    "item_tags",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Index("ix_item_tags_tag", "tag", "item_id"),
)

# Stories staff took out of the published feeds, by story id ("urn:uuid:…", lower case) or
# by an item's canonical URL; `origin` says whether feeds.yaml or the `hide` command did it.
hidden_stories = Table(
    "hidden_stories",
    metadata,
    Column("target", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("origin", String(8), nullable=False),
    Column("hidden_at", UTCDateTime, nullable=False),
)

# Staff's corrections of the cross-post rule, a copy of feeds.yaml's `keep_apart:` and
# `merge:` lists (store/corrections.py): one row per item address of each group, so a new
# item's corrections are one indexed read by its link. `group_id` is the entry's position.
story_corrections = Table(
    "story_corrections",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("group_id", Integer, primary_key=True),
    Column("url", Text, primary_key=True),
    Column("reason", Text),
    Index("ix_story_corrections_url", "url"),
)

# WebSub subscriptions (aggregator.service.websub): one per source whose feed advertises a hub.
# `callback_id` is the unguessable last segment of our callback URL; a new hub or topic gets
# a new one (and a new secret), so deliveries for an old subscription find nothing (410).
websub_subscriptions = Table(
    "websub_subscriptions",
    metadata,
    Column("source_url", Text, primary_key=True),
    Column("callback_id", String(64), nullable=False, unique=True),
    Column("hub", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    # new, pending, active, unsubscribing, denied, failed or refused (see aggregator.service.websub)
    Column("state", String(16), nullable=False, default="new", server_default="new"),
    Column("callback_url", Text),  # the hub.callback last sent
    Column("requested_at", UTCDateTime),  # when the last (un)subscribe request was sent
    Column("lease_expires_at", UTCDateTime),
    Column("last_error", Text),
)
