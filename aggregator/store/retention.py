"""Store methods for retention: pruning items older than network.retention.

Deletes in small batches under the item lock so polls wait at most one batch; must never
delete anything newer than the cutoff it is given.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import select

from aggregator.models import PruneReport
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.base import bump_data_version
from aggregator.store.base import lock_all_items
from aggregator.store.live_candidates import forget_deleted_items
from aggregator.store.stories import refresh_story_dates

PRUNE_BATCH = 1_000  # items deleted per transaction: writers wait at most one batch


class RetentionMixin(StoreBase):
    """Deleting old items, stories left empty, and host pauses that are over."""

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
                lock_all_items(connection)
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
                connection.execute(
                    delete(schema.story_keys).where(schema.story_keys.c.item_id.in_(item_ids))
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
                    refresh_story_dates(connection, story_id)
                bump_data_version(connection)
                pruned_items += len(item_ids)
                pruned_stories += len(emptied)
            # Committed: this process's in-memory candidates drop what was deleted.
            forget_deleted_items(self.engine)
            if len(rows) < batch_size:
                break
        with self.engine.begin() as connection:
            pauses = connection.execute(
                delete(schema.host_pauses).where(schema.host_pauses.c.paused_until <= now)
            ).rowcount
        return PruneReport(items=pruned_items, stories=pruned_stories, host_pauses=pauses or 0)
