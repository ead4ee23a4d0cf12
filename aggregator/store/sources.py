"""Store methods for sources: feeds.yaml sync and what a source remembers between polls.

Never writes a poll's items (items.py) or its schedule (scheduling.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import select
from sqlalchemy import update

from aggregator.errors import StorageError
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import SourceState
from aggregator.store import schema
from aggregator.store.base import bump_data_version
from aggregator.store.base import lock_for_writing
from aggregator.store.corrections import CorrectionsMixin
from aggregator.store.moderation import ModerationMixin


class SourcesMixin(ModerationMixin, CorrectionsMixin):
    """Members and sources as feeds.yaml has them, and each source's remembered state.

    Built on ModerationMixin because syncing feeds.yaml also syncs its `hidden:` list.
    """

    def sync_config(self, config: Config) -> None:
        """Make members and sources match feeds.yaml; stored items are never deleted."""
        with self.engine.begin() as connection:
            lock_for_writing(connection)
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
            bump_data_version(connection)
        self.sync_hidden(config.hidden)
        self.sync_corrections(config.corrections)

    def source_state(self, url: str) -> SourceState:
        state = self.source_states([url]).get(url)
        if state is None:
            raise StorageError(f"source {url} is not in the database: run sync_config first")
        return state

    def source_states(self, urls: Sequence[str]) -> dict[str, SourceState]:
        """What the database remembers about each of these sources, by URL, in one read
        per _IN_CHUNK addresses (a round reads its sources' states once). Sources not in
        the database are left out."""
        sources = schema.sources.c
        found: dict[str, SourceState] = {}
        ordered = sorted(set(urls))
        with self.engine.connect() as connection:
            for start in range(0, len(ordered), _IN_CHUNK):
                chunk = ordered[start : start + _IN_CHUNK]
                for row in connection.execute(select(schema.sources).where(sources.url.in_(chunk))):
                    found[row.url] = _source_state(row)
        return found

    def remember_discovered_feed(
        self, url: str, discovered_url: str | None, *, connection: Connection | None = None
    ) -> None:
        """Keep the feed autodiscovery chose for source `url` (None forgets it); on
        `connection` (the writer's) when given, else in a transaction of its own.

        The validators and body hash of the page it was found on mean nothing for the feed,
        so they are cleared with every change of address.
        """
        if connection is not None:
            remember_discovered_feed_on(connection, url, discovered_url)
            return
        with self.engine.begin() as own:
            remember_discovered_feed_on(own, url, discovered_url)

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


# Bound on the values of one IN (...) list, as in items.py.
_IN_CHUNK = 500


def _source_state(row: Any) -> SourceState:
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


def remember_discovered_feed_on(
    connection: Connection, url: str, discovered_url: str | None
) -> None:
    """Store.remember_discovered_feed on `connection` (the writer's transaction)."""
    sources = schema.sources.c
    current = connection.scalar(select(sources.discovered_url).where(sources.url == url))
    if current == discovered_url:
        return
    connection.execute(
        update(schema.sources)
        .where(sources.url == url)
        .values(discovered_url=discovered_url, etag=None, last_modified=None, body_hash=None)
    )
