"""How a poll's new items are written (store/items.py): a few multi-row statements per
source whatever its size, each item's id mapped back to its own tags, candidate keys and
story, and staff's corrections between two items of one poll seen as when each item was
written alone. Each runs on SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import event
from sqlalchemy import select

from aggregator.dedupe import Match
from aggregator.dedupe import TextFeatures
from aggregator.dedupe import candidate_keys
from aggregator.identity import story_uid
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import StoryCorrection
from aggregator.store import Store
from aggregator.store import schema
from aggregator.text import tag_slug
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import HARVEST_FEED
from tests.store.test_database import NOW
from tests.store.test_database import fetched
from tests.store.test_database import item


def numbered(number: int, source: Any = HARVEST_FEED) -> Item:
    """Item `number` of a source: its own headline, text, link and two tags of its own."""
    words = ("wages", "heat", "shade", "water", "housing", "transport", "overtime", "safety")
    topic = f"{words[number % len(words)]} {words[(number // len(words)) % len(words)]}"
    return item(
        source,
        key=f"guid:{source.member_id}-{number}",
        url=f"https://{source.member_id}.example/news/{number}",
        title=f"Campaign report {number}: {topic} in region {number * 7}",
        content_html=f"<p>Report number {number} on {topic}, for region {number * 7}.</p>",
        published=NOW - timedelta(hours=number),
        updated=NOW - timedelta(hours=number),
        tags=(f"topic {number}", f"region {number * 7}"),
        content_hash=f"hash-{source.member_id}-{number}",
    )


class Counting(Store):
    """A store that counts the statements store_items_on sends (an executemany or a
    multi-row INSERT counts once), leaving out _find_story's reads: those are the story
    engine's, one lookup per new item by design."""

    counted: list[str]
    _counting = False

    def store_items_on(
        self,
        connection: Connection,
        result: FetchResult,
        unique: Sequence[Item],
        warning: str | None,
        only_newer: bool,
    ) -> tuple[int, int]:
        with self._counting_on(True):
            return super().store_items_on(connection, result, unique, warning, only_newer)

    def _find_story(
        self,
        connection: Connection,
        item: Item,
        features: TextFeatures | None = None,
        *,
        sql_only: bool = False,
    ) -> Match | None:
        with self._counting_on(False):
            return super()._find_story(connection, item, features, sql_only=sql_only)

    @contextmanager
    def _counting_on(self, on: bool) -> Iterator[None]:
        before, self._counting = self._counting, on
        try:
            yield
        finally:
            self._counting = before


def counting_store(database_url: str) -> Counting:
    store = Counting.open(database_url)
    store.counted = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if store._counting:
            store.counted.append(statement.split(None, 1)[0].upper())

    event.listen(store.engine, "before_cursor_execute", count)
    return store


def test_a_poll_of_new_items_is_written_in_a_few_statements_whatever_its_size(
    database_url: str,
) -> None:
    store = counting_store(database_url)
    try:
        store.sync_config(CONFIG)
        sizes = {}
        for source, size in ((HARVEST_FEED, 3), (GARMENT_FEED, 30)):
            store.counted.clear()
            report = store.record_items(
                fetched(source), [numbered(number, source) for number in range(size)]
            )
            assert report.new == size
            sizes[size] = list(store.counted)
        assert sizes[3] == sizes[30]
        # Reads (source, known keys, re-key candidates, corrections), one INSERT each of
        # stories, items, tags and story keys, the source's health, last_new_item_at,
        # the data version.
        assert len(sizes[30]) <= 12, sizes[30]
        assert sizes[30].count("INSERT") == 4, sizes[30]
    finally:
        store.close()


def stored_by_key(store: Store) -> dict[str, Any]:
    items = schema.items.c
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(items.id, items.key, items.title, items.story_id, items.merge_reason)
        ).all()
    return {row.key: row for row in rows}


def by_item(store: Store, table: Any, column: str) -> dict[int, set[str]]:
    """`column` of `table`'s rows, gathered per item id."""
    found: dict[int, set[str]] = {}
    with store.engine.connect() as connection:
        for row in connection.execute(select(table)):
            found.setdefault(row.item_id, set()).add(getattr(row, column))
    return found


def story_uids(store: Store) -> dict[int, str]:
    stories = schema.stories.c
    with store.engine.connect() as connection:
        return {row.id: row.uid for row in connection.execute(select(stories.id, stories.uid))}


def test_ids_map_back_to_their_own_items_when_rows_are_missing_from_the_returns(
    store: Store,
) -> None:
    """Item 2 was stored by "another transaction" after the poll read what it knew, and
    item 4's story uid is taken (a story a re-keyed item left behind): both multi-row
    INSERTs return fewer rows than they were given, so any mapping by position would give
    items after them the wrong ids, tags, keys and stories."""
    store.sync_config(CONFIG)
    theirs = replace(numbered(2), title="Their version of report 2", content_hash="theirs")
    store.record_items(fetched(), [theirs])
    behind = story_uid(HARVEST_FEED.url, numbered(4).key)
    with store.engine.begin() as connection:
        left_behind = connection.scalar(
            schema.stories.insert()
            .values(uid=behind, published=NOW, updated=NOW)
            .returning(schema.stories.c.id)
        )
    before = stored_by_key(store)
    polled = [numbered(number) for number in (5, 1, 4, 2, 0, 3)]
    with store.engine.begin() as connection:
        source_id = connection.scalar(
            select(schema.sources.c.id).where(schema.sources.c.url == HARVEST_FEED.url)
        )
        assert source_id is not None
        # As if `known` had been read before the other writer's commit.
        new, updated = store._apply_items(
            connection, source_id, polled, NOW, known={}, stale={}, only_newer=False
        )
    assert (new, updated) == (5, 0)
    stored = stored_by_key(store)
    assert stored[theirs.key] == before[theirs.key]  # theirs stands, untouched
    tags = by_item(store, schema.item_tags, "tag")
    keys = by_item(store, schema.story_keys, "key")
    uids = story_uids(store)
    for polled_item in polled:
        if polled_item.key == theirs.key:
            continue
        row = stored[polled_item.key]
        assert row.title == polled_item.title
        assert tags[row.id] == {tag_slug(tag) for tag in polled_item.tags}
        assert keys[row.id] == set(candidate_keys(polled_item.title, polled_item.url))
        assert uids[row.story_id] == story_uid(HARVEST_FEED.url, polled_item.key)
    assert stored[numbered(4).key].story_id == left_behind
    # The story made for our item 2 was deleted: one story per stored item, no more.
    assert len(uids) == len(stored)
    # Ids in the feed's order, as when each item was inserted alone.
    ids = [stored[polled_item.key].id for polled_item in polled if polled_item.key != theirs.key]
    assert ids == sorted(ids)


def joint(number: int, source: Any, **changes: Any) -> Item:
    """Posts of one campaign: the same headline and text, each with its own link."""
    return replace(
        numbered(number, source),
        title="Heat protections must cover every farmworker",
        content_html=numbered(0).content_html,
        **changes,
    )


def test_a_merge_of_two_items_of_one_poll_joins_the_second_to_the_first(store: Store) -> None:
    first, second = numbered(1), numbered(2)
    merge = StoryCorrection("merge", (first.url or "", second.url or ""), "one campaign")
    store.sync_config(replace(CONFIG, corrections=(merge,)))
    report = store.record_items(fetched(), [first, numbered(3), second])
    assert report.new == 3
    stored = stored_by_key(store)
    assert stored[second.key].story_id == stored[first.key].story_id
    assert stored[second.key].merge_reason["merge_with"] == first.url
    assert stored[numbered(3).key].story_id != stored[first.key].story_id


def test_keep_apart_between_two_items_of_one_poll_holds(store: Store) -> None:
    """Harvest's two posts both match Garment's stored story by the automatic rule; staff
    keep them apart, so the second, seeing the first in that story, starts its own."""
    garment = joint(9, GARMENT_FEED)
    first, second = joint(1, HARVEST_FEED), joint(2, HARVEST_FEED)
    apart = StoryCorrection("keep_apart", (first.url or "", second.url or ""), "two walkouts")
    store.sync_config(replace(CONFIG, corrections=(apart,)))
    store.record_items(fetched(GARMENT_FEED), [garment])
    report = store.record_items(fetched(), [first, second])
    assert report.new == 2
    stored = stored_by_key(store)
    assert stored[first.key].story_id == stored[garment.key].story_id
    assert stored[second.key].story_id != stored[garment.key].story_id


def test_an_edit_after_a_new_item_that_joined_its_story_sees_that_item(store: Store) -> None:
    """The new item (staff merged with the stored one, and dated earlier, in the same round)
    speaks for the story; the edit later in the same poll recomputes the story's dates, and
    must see it: the pending item is written before the edit."""
    stored, joining = numbered(1), numbered(2)
    merge = StoryCorrection("merge", (stored.url or "", joining.url or ""), None)
    store.sync_config(replace(CONFIG, corrections=(merge,)))
    store.record_items(fetched(), [stored])
    edited = replace(stored, summary="Edited.", content_hash="edited")
    later = NOW + timedelta(minutes=5)
    report = store.record_items(fetched(body=b"<rss>2</rss>", at=later), [joining, edited])
    assert (report.new, report.updated) == (1, 1)
    rows = stored_by_key(store)
    assert rows[joining.key].story_id == rows[stored.key].story_id
    with store.engine.connect() as connection:
        published = connection.scalar(
            select(schema.stories.c.published).where(
                schema.stories.c.id == rows[stored.key].story_id
            )
        )
    assert published == joining.published
