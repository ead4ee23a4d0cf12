"""Staff's corrections of the cross-post rule: feeds.yaml `keep_apart:` and `merge:`.

sync_corrections makes the story_corrections table a copy of the two lists and applies
every group to the stored stories (merges first, then splits, so keeping apart wins), on
each sync of feeds.yaml: a rebuilt database gets them back. The poll's matching reads
them once per write transaction (read_corrections, then CorrectionsTable.for_url per new
item; corrections_for is the same answer as one query): a merge group joins its partner's
story, a keep-apart group removes its partners' stories from the candidates before the
automatic rule runs.

Splitting and joining recompute each story's dates from the item that speaks for it
(stories.speaking_item: the earliest first seen), so a correction can never let one member
take over another's story. This module must never decide what the automatic rule matches
(dedupe.py does), and never delete an item: only stories left empty by a merge go.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import aliased

from aggregator.dedupe import Match
from aggregator.identity import story_uid
from aggregator.models import StoryCorrection
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.base import bump_data_version
from aggregator.store.stories import STAFF_MERGE
from aggregator.store.stories import refresh_story_dates
from aggregator.store.stories import speaking_item
from aggregator.urls import slash_variants


@dataclass(frozen=True)
class ItemCorrections:
    """What staff said about one item address: the addresses it must never share a story
    with, and those it must share one with (with the reason given, if any)."""

    apart: frozenset[str] = frozenset()
    merge: tuple[str, ...] = ()
    merge_reason: str | None = None


def _variants(urls: Iterable[str]) -> list[str]:
    """The addresses as staff wrote them, with and without their trailing slash."""
    return sorted({variant for url in urls for variant in slash_variants(url)})


def corrections_for(connection: Connection, url: str | None) -> ItemCorrections:
    """The corrections naming `url`: one indexed read of story_corrections (what
    CorrectionsTable.for_url answers from a copy of the table read once)."""
    if url is None:
        return ItemCorrections()
    table = schema.story_corrections
    mine = aliased(table)
    own = _variants([url])
    rows = connection.execute(
        select(table.c.kind, table.c.url, table.c.reason)
        .join(mine, and_(mine.c.kind == table.c.kind, mine.c.group_id == table.c.group_id))
        .where(mine.c.url.in_(own), table.c.url.not_in(own))
        .order_by(table.c.kind, table.c.group_id, table.c.url)
    ).all()
    return _item_corrections(rows)


def _item_corrections(rows: Iterable[Any]) -> ItemCorrections:
    """An ItemCorrections from a url's partners (kind, url, reason), in (kind, group, url)
    order: the first merge reason given is the one kept."""
    rows = list(rows)
    merge = tuple(dict.fromkeys(row.url for row in rows if row.kind == "merge"))
    reasons = [row.reason for row in rows if row.kind == "merge" and row.reason]
    return ItemCorrections(
        apart=frozenset(row.url for row in rows if row.kind == "keep_apart"),
        merge=merge,
        merge_reason=reasons[0] if reasons else None,
    )


@dataclass(frozen=True)
class _Partner:
    kind: str
    url: str
    reason: str | None


@dataclass(frozen=True)
class CorrectionsTable:
    """story_corrections as read once (read_corrections): corrections_for's answers
    without a query per item. The rows are (kind, group_id, url, reason)."""

    rows: tuple[tuple[str, int, str, str | None], ...] = ()

    def for_url(self, url: str | None) -> ItemCorrections:
        """What corrections_for(connection, url) returns on the table these rows copy."""
        if url is None or not self.rows:
            return ItemCorrections()
        own = set(_variants([url]))
        groups = {(kind, group) for kind, group, member, _ in self.rows if member in own}
        return _item_corrections(
            _Partner(kind, member, reason)
            for kind, group, member, reason in sorted(self.rows, key=lambda row: row[:3])
            if (kind, group) in groups and member not in own
        )

    def partners(self, urls: Iterable[str | None]) -> dict[str, frozenset[str]]:
        """For each of these item addresses that a correction names, every address (with
        its slash variant) at which corrections_for's readers (staff_merge_match,
        stories_with) could look up a stored item for it; addresses no correction names
        are left out (store_items_on: a poll's new items)."""
        found: dict[str, frozenset[str]] = {}
        for url in urls:
            if url is None or not self.rows:
                continue
            own = set(_variants([url]))
            groups = {(kind, group) for kind, group, member, _ in self.rows if member in own}
            others = [
                member
                for kind, group, member, _ in self.rows
                if (kind, group) in groups and member not in own
            ]
            if others:
                found[url] = frozenset(_variants(others))
        return found


def read_corrections(connection: Connection) -> CorrectionsTable:
    """The whole story_corrections table (small: staff write it in feeds.yaml)."""
    table = schema.story_corrections.c
    rows = connection.execute(select(table.kind, table.group_id, table.url, table.reason))
    return CorrectionsTable(
        tuple((row.kind, row.group_id, row.url, row.reason) for row in rows)
    )


def stories_with(connection: Connection, urls: Iterable[str]) -> set[int]:
    """The stories holding an item at any of these addresses."""
    wanted = _variants(urls)
    if not wanted:
        return set()
    items = schema.items.c
    return set(connection.scalars(select(items.story_id).where(items.url.in_(wanted))))


def staff_merge_match(connection: Connection, corrections: ItemCorrections) -> Match | None:
    """The story a new item joins because staff listed it under `merge:` with a stored item
    (the earliest seen of its partners), or None when no partner is stored yet."""
    if not corrections.merge:
        return None
    items = schema.items.c
    partner = connection.execute(
        select(items.id, items.story_id, items.member_id, items.url)
        .where(items.url.in_(_variants(corrections.merge)))
        .order_by(items.first_seen_at, items.id)
        .limit(1)
    ).one_or_none()
    if partner is None:
        return None
    return Match(
        story_id=partner.story_id,
        rule=STAFF_MERGE,
        evidence=_merge_evidence(partner, corrections.merge_reason),
    )


def _merge_evidence(partner: Any, reason: str | None) -> dict[str, object]:
    """items.merge_reason for an item staff merged (read by `aggregator story` and /status)."""
    evidence: dict[str, object] = {
        "rule": STAFF_MERGE,
        "matched_item": partner.id,
        "matched_member": partner.member_id,
        "merge_with": partner.url,
    }
    if reason:
        evidence["reason"] = reason
    return evidence


_STORY_ITEM = select(
    schema.items.c.id,
    schema.items.c.story_id,
    schema.items.c.member_id,
    schema.items.c.url,
    schema.items.c.key,
    schema.items.c.published,
    schema.items.c.updated,
    schema.items.c.first_seen_at,
    schema.sources.c.url.label("source_url"),
).join(schema.sources, schema.sources.c.id == schema.items.c.source_id)


def apply_merge(connection: Connection, urls: Sequence[str], reason: str | None) -> bool:
    """Join the stories holding these items into the one whose item was seen first; its
    speaking item stays the story's face. Whether anything changed."""
    items = schema.items.c
    listed = connection.execute(_STORY_ITEM.where(items.url.in_(_variants(urls)))).all()
    story_ids = {row.story_id for row in listed}
    if len(story_ids) < 2:
        return False
    rows = connection.execute(_STORY_ITEM.where(items.story_id.in_(story_ids))).all()
    target = speaking_item(rows).story_id
    anchor = speaking_item([row for row in listed if row.story_id == target])
    others = story_ids - {target}
    for row in listed:
        if row.story_id != target:
            connection.execute(
                update(schema.items)
                .where(items.id == row.id)
                .values(merge_reason=_merge_evidence(anchor, reason))
            )
    connection.execute(
        update(schema.items).where(items.story_id.in_(others)).values(story_id=target)
    )
    connection.execute(delete(schema.stories).where(schema.stories.c.id.in_(others)))
    refresh_story_dates(connection, target)
    return True


def apply_keep_apart(connection: Connection, urls: Sequence[str]) -> bool:
    """Split these items out of any story they share: in each such story the listed item
    that speaks first stays, each other listed item gets a story of its own. Whether
    anything changed."""
    items = schema.items.c
    listed = connection.execute(_STORY_ITEM.where(items.url.in_(_variants(urls)))).all()
    by_story: dict[int, list[Any]] = {}
    for row in listed:
        by_story.setdefault(row.story_id, []).append(row)
    changed = False
    for story_id, group in by_story.items():
        if len(group) < 2:
            continue
        staying = speaking_item(group)
        for row in group:
            if row.id == staying.id:
                continue
            own = _new_story(connection, row)
            connection.execute(
                update(schema.items)
                .where(items.id == row.id)
                .values(story_id=own, merge_reason=None)
            )
            refresh_story_dates(connection, own)
        refresh_story_dates(connection, story_id)
        changed = True
    return changed


def _new_story(connection: Connection, row: Any) -> int:
    """A new story for an item split out of another. Its id is the one the item would have
    had starting its own story (so a rebuilt database agrees), unless that is taken (the
    item started the story it leaves): then one derived from it."""
    uid = story_uid(row.source_url, row.key)
    stories = schema.stories.c
    while connection.scalar(select(stories.id).where(stories.uid == uid)) is not None:
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{uid}\nkept apart"))
    result = connection.execute(
        schema.stories.insert().values(uid=uid, published=row.published, updated=row.updated)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class CorrectionsMixin(StoreBase):
    """feeds.yaml's `keep_apart:` and `merge:` lists, stored and applied to the stories."""

    def sync_corrections(self, corrections: Iterable[StoryCorrection]) -> None:
        """Store these corrections in place of the previous ones and apply them all.

        Applying is idempotent: a group already applied changes nothing. Removing an entry
        undoes nothing already split or joined (a story is not split back by guesswork);
        the automatic rule simply stops being overruled for items seen later.
        """
        entries = list(corrections)
        table = schema.story_corrections
        with self.engine.begin() as connection:
            connection.execute(table.delete())
            rows = [
                {"kind": entry.kind, "group_id": number, "url": url, "reason": entry.reason}
                for number, entry in enumerate(entries)
                for url in entry.items
            ]
            if rows:
                connection.execute(table.insert(), rows)
            changed = False
            # Merges first, so that keeping apart wins where the two would disagree.
            for entry in entries:
                if entry.kind == "merge":
                    changed |= apply_merge(connection, entry.items, entry.reason)
            for entry in entries:
                if entry.kind == "keep_apart":
                    changed |= apply_keep_apart(connection, entry.items)
            if changed:
                bump_data_version(connection)
