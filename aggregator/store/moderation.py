"""Store methods for moderation: stories staff hid, from feeds.yaml or `aggregator hide`.

Hiding never deletes anything: hidden stories are left out when stories are read for
publishing (published.py). Every change here bumps the data version in its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from datetime import datetime

from sqlalchemy import select

from aggregator.models import HiddenRecord
from aggregator.models import HiddenStory
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.base import bump_data_version


class ModerationMixin(StoreBase):
    """Hiding and unhiding stories, and the feeds.yaml `hidden:` list."""

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
            bump_data_version(connection)

    def unhide(self, target: str) -> HiddenRecord | None:
        """Publish a hidden story again; returns what was removed, None if it was not hidden."""
        table = schema.hidden_stories
        with self.engine.begin() as connection:
            row = connection.execute(select(table).where(table.c.target == target)).one_or_none()
            if row is None:
                return None
            connection.execute(table.delete().where(table.c.target == target))
            bump_data_version(connection)
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
                bump_data_version(connection)
