"""Store methods for a poll's writes: items, cross-post matching, stories, source health.

Each poll of a source is recorded in one transaction, so a crash or a failed poll never
leaves half an update behind and never removes what was stored before: a failure only
updates the source's health columns. Items are upserted by (source, identity key); new
items are matched to existing stories through the pure rules in aggregator.dedupe, one by
one in the feed's order, then written together (new_items.py). This module must never
decide what matches (dedupe.py does) nor read for publishing.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import update

from aggregator.dedupe import Match
from aggregator.dedupe import StoryCandidate
from aggregator.dedupe import TextFeatures
from aggregator.dedupe import find_match
from aggregator.dedupe import text_features
from aggregator.dedupe import title_key
from aggregator.errors import StorageError
from aggregator.identity import body_digest
from aggregator.models import GONE_STATUS
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import PollOutcome
from aggregator.models import StoredItems
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.base import bump_data_version
from aggregator.store.base import lock_for_items
from aggregator.store.base import with_write_retries
from aggregator.store.corrections import corrections_for
from aggregator.store.corrections import read_corrections
from aggregator.store.corrections import staff_merge_match
from aggregator.store.corrections import stories_with
from aggregator.store.live_candidates import live_candidates
from aggregator.store.new_items import NewItem
from aggregator.store.new_items import insert_item_tags
from aggregator.store.new_items import insert_stories
from aggregator.store.new_items import item_values
from aggregator.store.new_items import merged_same_round
from aggregator.store.new_items import write_new_items
from aggregator.store.stories import CANDIDATE_ROWS
from aggregator.store.stories import CANDIDATE_TEXTS
from aggregator.store.stories import bounded_date
from aggregator.store.stories import candidate_ids
from aggregator.store.stories import refresh_story_dates
from aggregator.store.stories import save_story_keys
from aggregator.text import html_to_text

# Bound on the values of one IN (...) list (SQLite allows 32,766 parameters, but a batch
# this size is already far beyond one feed).
_IN_CHUNK = 500

# An item as _upsert_item needs it to decide between unchanged, updated and new.
_STORED_ITEM = select(
    schema.items.c.id,
    schema.items.c.story_id,
    schema.items.c.content_hash,
    schema.items.c.published,
    schema.items.c.updated,
    schema.items.c.date_from_source,
    schema.items.c.first_seen_at,
)


class ItemsMixin(StoreBase):
    """Recording polls: items upserted, matched to stories, the source's health updated."""

    # Each write method takes an optional `connection`: the writer's (store/writer.py),
    # whose transaction already holds the locks; without one it opens its own transaction.

    def record_failure(
        self, result: FetchResult, cause: str, *, connection: Connection | None = None
    ) -> None:
        """A failed poll touches only the source's health: stored items stay published."""
        if connection is not None:
            record_failure_on(connection, result, cause)
            return
        with self.engine.begin() as own:
            record_failure_on(own, result, cause)

    def record_unchanged(
        self, result: FetchResult, *, connection: Connection | None = None
    ) -> None:
        """A 304, or a 200 whose body is byte-identical to the last one."""
        if connection is not None:
            mark_success(connection, result, body_hash=None, warning=None)
            return
        with self.engine.begin() as own:
            mark_success(own, result, body_hash=None, warning=None)

    def record_items(
        self,
        result: FetchResult,
        items: Sequence[Item],
        *,
        warning: str | None = None,
        only_newer: bool = False,
        connection: Connection | None = None,
    ) -> StoredItems:
        """Store a successful poll's items in one transaction; count what changed.

        `only_newer` (a body a WebSub hub pushed): a stored item is changed only by a
        version that _is_newer says is newer; see there.

        Safe beside other processes writing the same database: see lock_for_items. A
        transaction PostgreSQL rolled back to break a deadlock is run again. With
        `connection` (the writer's, holding lock_for_sources' locks) it writes there and
        leaves retries to its caller.
        """
        unique = unique_by_key(items)
        if connection is not None:
            new, updated = self.store_items_on(connection, result, unique, warning, only_newer)
            return StoredItems(new=new, updated=updated)
        new, updated = with_write_retries(
            lambda: self._store_items(result, unique, warning, only_newer)
        )
        return StoredItems(new=new, updated=updated)

    def _store_items(
        self, result: FetchResult, unique: Sequence[Item], warning: str | None, only_newer: bool
    ) -> tuple[int, int]:
        """record_items' transaction: (new, updated) items."""
        with self.engine.begin() as connection:
            lock_for_items(connection, result.source.url, unique)
            return self.store_items_on(connection, result, unique, warning, only_newer)

    def store_items_on(
        self,
        connection: Connection,
        result: FetchResult,
        unique: Sequence[Item],
        warning: str | None,
        only_newer: bool,
    ) -> tuple[int, int]:
        """A poll's items written on `connection`, whose transaction already holds the
        locks lock_for_items takes for them (record_items, or the writer's batch):
        (new, updated) items. `unique`: no two items with one key (unique_by_key)."""
        assert result.content is not None
        new = updated = 0
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
        new, updated = self._apply_items(
            connection,
            source_id,
            unique,
            result.fetched_at,
            known=known,
            stale=stale,
            only_newer=only_newer,
        )
        # A pushed body is not what the next poll compares its download with: had a
        # version of it been refused here (_is_newer), the poll of those very bytes
        # would be skipped as unchanged and the member's correction never applied.
        body_hash = None if only_newer else body_digest(result.content)
        mark_success(connection, result, body_hash=body_hash, warning=warning)
        if new:
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.id == source_id)
                .values(last_new_item_at=result.fetched_at)
            )
        if new or updated:
            bump_data_version(connection)
        return new, updated

    def _apply_items(
        self,
        connection: Connection,
        source_id: int,
        unique: Sequence[Item],
        seen_at: datetime,
        *,
        known: Mapping[str, Any],
        stale: dict[str, list[int]],
        only_newer: bool,
    ) -> tuple[int, int]:
        """A poll's items on `connection`, `known` and `stale` read for them beforehand
        (_stored_by_key, _rekey_candidates): (new, updated) items.

        Edits and re-keys are written as they come. New items are decided one by one, in
        the feed's order (_find_story), and written together at the end (write_new_items:
        a few statements for the lot): the decisions of one source's items do not read
        each other's rows. Items of one member are never each other's candidates
        (stories.candidate_ids skips the item's own member), so only two reads could see
        an earlier new item of the same poll: staff's `merge:`/`keep_apart:` partners
        (corrections.py, by address, of any member) and an edit's refresh_story_dates of
        a story one of them joined. Before either, what is pending is written first, so
        every decision sees what it saw when each item was written as soon as decided.
        """
        new = updated = 0
        pending: list[NewItem] = []
        # From the corrections read once per transaction (as _find_story reads them).
        corrections = live_candidates(connection.engine).per_transaction(
            connection, read_corrections
        )
        partners = corrections.partners(item.url for item in unique if item.key not in known)
        for item in unique:
            existing = known.get(item.key)
            if existing is not None:
                if any(
                    entry.found is not None and entry.found.story_id == existing.story_id
                    for entry in pending
                ):
                    new += write_new_items(connection, source_id, pending, seen_at)
                    pending = []
                outcome = _update_item(connection, item, existing, seen_at, only_newer)
                updated += outcome is PollOutcome.UPDATED
                continue
            if _rekey_from_candidates(connection, stale, item):
                continue
            if pending and _sees_pending(item, pending, partners):
                new += write_new_items(connection, source_id, pending, seen_at)
                pending = []
            decided = self._decide_new_item(connection, item)
            if decided.found is not None and decided.found.others:
                # merge_same_round reads and moves the matched stories' stored items: one
                # that joined them earlier in this poll must be among them (written first).
                new += write_new_items(connection, source_id, pending, seen_at)
                pending = []
                decided = merged_same_round(connection, decided, seen_at)
            pending.append(decided)
        new += write_new_items(connection, source_id, pending, seen_at)
        return new, updated

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
        only_newer: bool = False,
    ) -> PollOutcome:
        """One item alone (as _apply_items writes a poll's): `known` and `stale` as
        _stored_by_key and _rekey_candidates read them; without them it is looked up alone."""
        if known is not None:
            existing = known.get(item.key)
        else:
            existing = connection.execute(
                _STORED_ITEM.where(
                    schema.items.c.source_id == source_id, schema.items.c.key == item.key
                )
            ).one_or_none()
        if existing is not None:
            return _update_item(connection, item, existing, seen_at, only_newer)
        if stale is not None:
            if _rekey_from_candidates(connection, stale, item):
                return PollOutcome.UNCHANGED
        elif _rekey_identical_item(connection, source_id, item, batch_keys):
            return PollOutcome.UNCHANGED
        decided = merged_same_round(connection, self._decide_new_item(connection, item), seen_at)
        if write_new_items(connection, source_id, [decided], seen_at):
            return PollOutcome.NEW
        return PollOutcome.UNCHANGED

    def _decide_new_item(self, connection: Connection, item: Item) -> NewItem:
        """The story a new item joins (or None: it starts one), with its text's features."""
        # The item's text is read once: matched under its title, stored under its title key
        # (how a later item compares it as a candidate).
        text = item_text(item)
        features = text_features(text, item.title)
        found = self._find_story(connection, item, features)
        return NewItem(item=item, text=text, features=features, found=found)

    def _find_story(
        self,
        connection: Connection,
        item: Item,
        features: TextFeatures | None = None,
        *,
        sql_only: bool = False,
    ) -> Match | None:
        """The story a new item joins, and why: the rule of aggregator.dedupe over the
        candidates the index gives (store/stories.py), from memory where it covers
        (live_candidates.LiveCandidates; `sql_only`: by SQL, as bench.growth measures). `features`
        are the item's (dedupe.text_features of its text under its title), if known."""
        live = None if sql_only else live_candidates(connection.engine)
        # Staff's corrections (feeds.yaml keep_apart:/merge:) overrule the automatic rule.
        if live is None:
            corrections = corrections_for(connection, item.url)
        else:
            corrections = live.per_transaction(connection, read_corrections).for_url(item.url)
        staff = staff_merge_match(connection, corrections)
        if staff is not None:
            return staff
        remembered = None if live is None else live.lookup(connection, item)
        ids = candidate_ids(connection, item) if remembered is None else remembered
        if not ids:
            # Most items have no candidate at all: skip reading their HTML as text.
            return None
        rows = connection.execute(CANDIDATE_ROWS, {"ids": sorted(ids)}).all()
        if live is not None and remembered is not None and len(rows) < len(ids):
            # Deleted since it was indexed (retention, another process): never a candidate.
            live.gone(set(ids) - {row.id for row in rows})
        if corrections.apart:
            apart = stories_with(connection, corrections.apart)
            rows = [row for row in rows if row.story_id not in apart]
        stored = {row.id: TextFeatures.from_json(row.match_features) for row in rows}
        # Rows stored before their features were (0006 fills them): read their text.
        missing = sorted(item_id for item_id, found in stored.items() if found is None)
        texts = (
            {
                row.id: item_text(row)
                for row in connection.execute(CANDIDATE_TEXTS, {"ids": missing})
            }
            if missing
            else {}
        )
        candidates = [
            StoryCandidate(
                story_id=row.story_id,
                member_id=row.member_id,
                url=row.url,
                title_key=row.title_key,
                published=row.published,
                text=texts.get(row.id, ""),
                item_id=row.id,
                stored_features=stored[row.id],
            )
            for row in rows
        ]
        if features is None:
            features = text_features(item_text(item), item.title)
        return find_match(
            url=item.url,
            title=item.title,
            published=item.published,
            text="",
            candidates=candidates,
            member_id=item.member_id,
            features=features,
        )


def record_failure_on(connection: Connection, result: FetchResult, cause: str) -> None:
    """Store.record_failure on `connection`: the source's health columns only."""
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


def success_values(
    result: FetchResult, *, body_hash: str | None, warning: str | None
) -> dict[str, Any]:
    """The source's columns after a successful poll (mark_success; the writer's batched
    UPDATE of unchanged sources writes the same)."""
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
    return values


def mark_success(
    connection: Connection, result: FetchResult, *, body_hash: str | None, warning: str | None
) -> None:
    """A successful poll on `connection`: the source's health, validators and body hash."""
    values = success_values(result, body_hash=body_hash, warning=warning)
    connection.execute(
        update(schema.sources).where(schema.sources.c.url == result.source.url).values(values)
    )


def _update_item(
    connection: Connection, item: Item, existing: Any, seen_at: datetime, only_newer: bool
) -> PollOutcome:
    """A stored item (`existing`, as _STORED_ITEM reads it) polled again: UNCHANGED, or
    UPDATED with its edit written."""
    if existing.content_hash == item.content_hash:
        return PollOutcome.UNCHANGED
    if only_newer and not _is_newer(item, existing):
        return PollOutcome.UNCHANGED
    text = item_text(item)
    values = item_values(item, text_features(text, title_key(item.title)))
    if not item.date_from_source:
        # A source without dates: keep the first-seen time, or every edit would
        # jump the item back to the top of the combined feed.
        values["published"] = existing.published
        values["updated"] = seen_at
    else:
        values["published"] = bounded_date(
            item.published, existing.published, existing.first_seen_at
        )
    connection.execute(update(schema.items).where(schema.items.c.id == existing.id).values(values))
    _save_item_tags(connection, existing.id, item.tags, replace=True)
    save_story_keys(
        connection, existing.id, item.title, item.url, values["published"], replace=True
    )
    refresh_story_dates(connection, existing.story_id)
    return PollOutcome.UPDATED


def _sees_pending(
    item: Item, pending: Sequence[NewItem], partners: Mapping[str, frozenset[str]]
) -> bool:
    """Whether deciding `item` could read the rows of a pending (decided, unwritten) item:
    a pending item at an address staff's corrections pair it with (CorrectionsTable.partners),
    or of another member (never the case within one source's poll: a guard, not a path)."""
    addresses = partners.get(item.url) if item.url is not None else None
    return any(
        entry.item.member_id != item.member_id
        or (addresses is not None and entry.item.url in addresses)
        for entry in pending
    )


def _is_newer(item: Item, existing: Any) -> bool:
    """Whether a pushed version of a stored item may replace it: only when the feed dates
    it (date_from_source) and its `updated` is strictly later than the stored `updated`.

    Why: a signed WebSub delivery can be captured and sent again later (a replay); its
    signature still verifies, so the body must not be able to make an item older. A
    version dated no later than what is stored is an old one (or a copy of it): ignored.
    An undated item's `updated` is only when we saw it, which a replay would always beat,
    so a push never changes an undated item. That blocks no genuine correction: a poll
    (which reads the member's own current feed, never a replayed body) still applies it,
    and a feed that dates its edits gets them pushed as before.
    """
    return item.date_from_source and item.updated > existing.updated


def _save_item_tags(
    connection: Connection, item_id: int, tags: Iterable[str], *, replace: bool
) -> None:
    table = schema.item_tags
    if replace:
        connection.execute(table.delete().where(table.c.item_id == item_id))
    insert_item_tags(connection, {item_id: tags})


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
        update(schema.items)
        .where(schema.items.c.id == ids.pop(0))
        .values(key=item.key, entry_digest=item.entry_digest)
    )
    return True


def _insert_story(connection: Connection, item: Item) -> tuple[int, bool]:
    """The story whose first item is `item`: (its id, whether this call created it)."""
    return insert_stories(connection, [item])[item.key]


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
    # The entry digest goes with the key: a digest always names an entry of the row's key.
    connection.execute(
        update(schema.items)
        .where(items.id == stale)
        .values(key=item.key, entry_digest=item.entry_digest)
    )
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


def unique_by_key(items: Iterable[Item]) -> list[Item]:
    """A feed that repeats an entry contributes it once (the first occurrence wins)."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique


def item_text(item: Item | Any) -> str:
    """The plain text the cross-post rule compares: the item's content, else its summary
    (an Item, or a stored row with the same two columns)."""
    return html_to_text(item.content_html or item.summary)
