"""Writing a poll's new items: a few multi-row statements per source, whatever its size.

A poll's new items are decided first (items.py: the story each joins, in the feed's order),
then written here together: their new stories in one multi-row INSERT, the items in one
more, then every tag and every story key in one executemany each. The INSERTs are upserts
(ON CONFLICT DO NOTHING) returning the rows they stored, mapped back by each row's unique
columns, never by position: a row another transaction stored first returns nothing.

This module must never decide anything (which story an item joins is items.py's, through
dedupe.py) and never read for publishing.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from aggregator.dedupe import Match
from aggregator.dedupe import TextFeatures
from aggregator.dedupe import title_key
from aggregator.dedupe import with_heading
from aggregator.errors import StorageError
from aggregator.identity import story_uid
from aggregator.models import Item
from aggregator.store import schema
from aggregator.store.stories import IndexedItem
from aggregator.store.stories import merge_same_round
from aggregator.store.stories import save_story_keys_many
from aggregator.text import tag_slug

# Bound on the values of one IN (...) list.
_IN_CHUNK = 500


@dataclass(frozen=True)
class NewItem:
    """A new item of a poll, decided (the story it joins, if any) and not yet written."""

    item: Item
    text: str
    features: TextFeatures
    found: Match | None


def write_new_items(
    connection: Connection, source_id: int, pending: Sequence[NewItem], seen_at: datetime
) -> int:
    """Write these decided new items of one source: their new stories in one multi-row
    INSERT, the items in one more, then all their tags and all their story keys in one
    executemany each. How many were stored: an item another transaction stored since
    `known` was read is not (the unique constraint, not the read before it, guarantees
    one row; the source lock, lock_for_items, makes that unreachable today), theirs
    stands, and a story made for ours is deleted."""
    if not pending:
        return 0
    stories = insert_stories(connection, [entry.item for entry in pending if entry.found is None])
    rows = []
    for entry in pending:
        item, found = entry.item, entry.found
        rows.append(
            {
                "source_id": source_id,
                "member_id": item.member_id,
                "story_id": stories[item.key][0] if found is None else found.story_id,
                "key": item.key,
                "first_seen_at": seen_at,
                "merge_reason": None if found is None else found.evidence,
                **item_values(
                    item, with_heading(entry.features, entry.text, title_key(item.title))
                ),
            }
        )
    # Values as parameters, not .values(): the statement is then compiled once and cached.
    # Ids by key, not by position (see _upserts).
    item_ids = {
        row.key: int(row.id)
        for row in connection.execute(_upsert_statement(connection, _INSERT_ITEM), rows)
    }
    lost = [
        stories[entry.item.key][0]
        for entry in pending
        if entry.item.key not in item_ids
        and entry.found is None
        and stories[entry.item.key][1]
    ]
    if lost:
        connection.execute(delete(schema.stories).where(schema.stories.c.id.in_(lost)))
    stored = [entry.item for entry in pending if entry.item.key in item_ids]
    insert_item_tags(connection, {item_ids[item.key]: item.tags for item in stored})
    # Just inserted with item.member_id: no need to read it back.
    save_story_keys_many(
        connection,
        [
            IndexedItem(item_ids[item.key], item.title, item.url, item.published, item.member_id)
            for item in stored
        ],
    )
    # A joining item adds a credit and nothing else: the story's dates stay its first
    # item's (refresh_story_dates), so they are not refreshed here.
    return len(stored)


def merged_same_round(connection: Connection, decided: NewItem, seen_at: datetime) -> NewItem:
    """`decided` joining its story after the other stories of this round it matched were
    merged into it (stories.merge_same_round): the story it joins may then be another."""
    found = decided.found
    if found is None or not found.others:
        return decided
    item = decided.item
    story_id = merge_same_round(
        connection, found, member_id=item.member_id, url=item.url, seen_at=seen_at
    )
    return replace(decided, found=replace(found, story_id=story_id))


def _upserts(table: Any, conflict: list[str], *returned: str) -> dict[str, Any]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id and `returned`, per dialect: an insert
    that lost a race returns no row instead of failing its whole transaction.

    Given many rows, SQLAlchemy sends them as one multi-row INSERT ("insertmanyvalues").
    The rows it returns are mapped back by the returned unique columns, never by position
    (a row that met the constraint returns nothing). New ids follow the rows' order, as
    when each was inserted alone: SQLite inserts a VALUES list in order; PostgreSQL is
    asked to (`sort_by_parameter_order`: SQLAlchemy's INSERT … SELECT … ORDER BY form,
    still one statement; on SQLite the same option would send one INSERT per row).
    """
    columns = [table.c.id, *(table.c[name] for name in returned)]
    return {
        "postgresql": postgresql.insert(table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*columns, sort_by_parameter_order=True),
        "sqlite": sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(*columns),
    }


_INSERT_ITEM = _upserts(schema.items, ["source_id", "key"], "key")


_INSERT_STORY = _upserts(schema.stories, ["uid"], "uid")


def _upsert_statement(connection: Connection, statements: dict[str, Any]) -> Any:
    return statements[connection.dialect.name]


def insert_stories(connection: Connection, items: Sequence[Item]) -> dict[str, tuple[int, bool]]:
    """The stories whose first items are these (of one source): by item key, (the story's
    id, whether this call created it), in one multi-row INSERT (and one read when some
    were stored already).

    A story's uid is derived from its first item, so a story with that uid already stored
    (another process's, or one a re-keyed item left behind) is the same story and is used.
    """
    if not items:
        return {}
    uids = {item.key: story_uid(item.source_url, item.key) for item in items}
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        rows.setdefault(
            uids[item.key],
            {
                "uid": uids[item.key],
                "published": item.published,
                # What refresh_story_dates would set for a story of this one item.
                "updated": max(item.published, item.updated),
            },
        )
    created = {
        row.uid: int(row.id)
        for row in connection.execute(
            _upsert_statement(connection, _INSERT_STORY), list(rows.values())
        )
    }
    existing: dict[str, int] = {}
    missing = sorted(set(rows) - set(created))
    stories = schema.stories.c
    for start in range(0, len(missing), _IN_CHUNK):
        existing.update(
            (row.uid, int(row.id))
            for row in connection.execute(
                select(stories.id, stories.uid).where(
                    stories.uid.in_(missing[start : start + _IN_CHUNK])
                )
            )
        )
    found: dict[str, tuple[int, bool]] = {}
    claimed: set[str] = set()
    for item in items:
        uid = uids[item.key]
        if uid in created:
            # Created for the first item with this uid; any later one joins it.
            found[item.key] = (created[uid], uid not in claimed)
            claimed.add(uid)
        elif uid in existing:
            found[item.key] = (existing[uid], False)
        else:
            raise StorageError(f"story {uid} was neither stored nor found; try the poll again")
    return found


def insert_item_tags(connection: Connection, tags: Mapping[int, Iterable[str]]) -> None:
    """Each item's tags (as slugs, once each; none stored yet) in one executemany."""
    rows = [
        {"item_id": item_id, "tag": slug}
        for item_id, names in tags.items()
        for slug in dict.fromkeys(slug for slug in (tag_slug(tag) for tag in names) if slug)
    ]
    if rows:
        connection.execute(schema.item_tags.insert(), rows)


def item_values(item: Item, features: TextFeatures) -> dict[str, Any]:
    """The item's columns; `features` are its text's under its title key (as a candidate)."""
    return {
        "match_features": features.to_json(),
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
        "entry_digest": item.entry_digest,
    }
