"""The story side of the store: the cross-post candidate index, which item speaks for a
story, and what staff read about a story and its merges (`aggregator story`).

The index holds each item under dedupe.candidate_keys, so a new item's candidates are a few
bounded range reads in one statement, never a scan, ranked by how much they share with the
item and capped, so the rule's work per item does not grow with the database. A writing
process holds the same rows in memory (live_candidates.py over candidate_index.py)
and asks the database only where memory does not cover. Stories of one round of polls
that a new item matches are merged (merge_same_round), so a round's stories do not
depend on the order its polls finished. This module must never decide what matches
(dedupe.py does), a member joining a story must never change what the story shows or its
date, and a story seen before the current round must never be merged away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy import update

from aggregator.dedupe import CROSS_POST_WINDOW
from aggregator.dedupe import Match
from aggregator.dedupe import candidate_keys
from aggregator.errors import StorageError
from aggregator.models import Item
from aggregator.models import MergeRecord
from aggregator.models import StoryItemRecord
from aggregator.models import StoryRecord
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.candidate_index import MAX_CANDIDATES as MAX_CANDIDATES
from aggregator.store.candidate_index import MAX_CANDIDATES_PER_KEY
from aggregator.store.candidate_index import Found
from aggregator.store.candidate_index import lookup_keys
from aggregator.store.candidate_index import rank_candidates
from aggregator.store.live_candidates import noted_live_candidates
from aggregator.urls import slash_variants

# The rule name of a merge staff asked for (store/corrections.py), not the automatic rule's.
STAFF_MERGE = "staff merge"
# The rule name of stories of one round of polls merged because a new item matched them all
# (merge_same_round).
SAME_ROUND_MERGE = "same round"
# How far before its first-seen time an edit may move an item's date: a source that re-dates
# a post to 1990 cannot move it (nor its story) out of the feeds.
BACKDATE_LIMIT = CROSS_POST_WINDOW
# Items first seen this close to a story's first item came in the same round of polls: among
# them the earliest published speaks for the story (the original poster, however the
# concurrent polls finished). An item seen later only joins: its claimed date cannot put it
# first, or a member could take over another's story by back-dating a copy of its link.
SAME_ROUND = timedelta(minutes=15)


def speaking_item(rows: Sequence[Any]) -> Any:
    """The item (a row with published, first_seen_at, id) whose title, text, link, image and
    date a story shows: see SAME_ROUND."""
    first_seen = min(row.first_seen_at for row in rows)
    same_round = [row for row in rows if row.first_seen_at <= first_seen + SAME_ROUND]
    return min(same_round, key=lambda row: (row.published, row.id))


_ITEM_MEMBER = select(schema.items.c.member_id).where(schema.items.c.id == bindparam("item_id"))


@dataclass(frozen=True)
class IndexedItem:
    """A stored item as the candidate index holds it: its id, what its keys are made of
    (title and link), its date and its member (items.member_id)."""

    item_id: int
    title: str
    url: str | None
    published: datetime
    member_id: str


def save_story_keys(
    connection: Connection,
    item_id: int,
    title: str,
    url: str | None,
    published: datetime,
    *,
    replace: bool = False,
    member_id: str | None = None,
) -> None:
    """Index the item under dedupe.candidate_keys, so later items find it as a candidate.
    `member_id` is the stored item's (items.member_id); read from the row when not given."""
    table = schema.story_keys
    if replace:
        connection.execute(table.delete().where(table.c.item_id == item_id))
    if member_id is None:
        # The stored row's, not the Item's: a source moved to another member keeps its
        # items' member, and the candidate read must skip exactly what items says.
        member_id = connection.scalar(_ITEM_MEMBER, {"item_id": item_id})
        if member_id is None:
            raise StorageError(f"item {item_id} is not stored; its story keys cannot be")
    save_story_keys_many(connection, [IndexedItem(item_id, title, url, published, member_id)])


def save_story_keys_many(connection: Connection, items: Sequence[IndexedItem]) -> None:
    """Index these items (none indexed yet) under dedupe.candidate_keys in one executemany.

    Every write of the candidate index goes through here (save_story_keys too), so that
    whatever must follow the index's contents has one place to hook into.
    """
    keys = {
        item.item_id: list(dict.fromkeys(candidate_keys(item.title, item.url))) for item in items
    }
    rows = [
        {
            "key": key,
            "item_id": item.item_id,
            "published": item.published,
            "member_id": item.member_id,
        }
        for item in items
        for key in keys[item.item_id]
    ]
    if rows:
        connection.execute(schema.story_keys.insert(), rows)
    # The round's in-memory candidates (LiveCandidates) learn every key written, so an item
    # written earlier in this transaction is a candidate for the next, as with the SQL read.
    live = noted_live_candidates(connection.engine)
    if live is not None:
        for item in items:
            live.note(connection, item.item_id, item.member_id, item.published, keys[item.item_id])


_KEYS = schema.story_keys.c


def _nearest(index: int, rank: int, after: bool) -> Select[Any]:
    """Key number `index`'s candidates on one side of the item's date, nearest first: one
    bounded range read of the covering (key, published, member_id, item_id) index, with no
    table row read per index entry, whatever the size of the database."""
    published = _KEYS.published
    side = (
        (published >= bindparam("at"), published <= bindparam(f"latest{index}"))
        if after
        else (published < bindparam("at"), published >= bindparam(f"earliest{index}"))
    )
    nearest = (
        select(
            _KEYS.item_id.label("item_id"),
            published.label("published"),
            literal_column(str(rank)).label("rank"),
        )
        .where(
            _KEYS.key == bindparam(f"key{index}"), *side, _KEYS.member_id != bindparam("member")
        )
        # The covering index's own order (ties broken as the in-memory index breaks them:
        # candidate_index.CandidateIndex), so that the cap keeps the same rows everywhere.
        .order_by(
            *(
                (published, _KEYS.member_id, _KEYS.item_id)
                if after
                else (published.desc(), _KEYS.member_id.desc(), _KEYS.item_id.desc())
            )
        )
        .limit(MAX_CANDIDATES_PER_KEY // 2)
        .subquery()  # LIMIT inside a UNION member needs its own SELECT (SQLite)
    )
    return select(nearest.c.item_id, nearest.c.published, nearest.c.rank)


@lru_cache(maxsize=64)
def _candidates_statement(ranks: tuple[int, ...]) -> Select[Any]:
    """Every key's nearest candidates in one statement, one row per item: how many keys it
    shares and the best rank among them. Cached per shape, so it is compiled once."""
    parts = union_all(
        *(
            _nearest(index, rank, after)
            for index, rank in enumerate(ranks)
            for after in (True, False)
        )
    ).subquery()
    return select(
        parts.c.item_id,
        func.count().label("shared"),
        func.max(parts.c.rank).label("rank"),
        func.min(parts.c.published).label("published"),
    ).group_by(parts.c.item_id)


CANDIDATE_ROWS = select(
    schema.items.c.id,
    schema.items.c.story_id,
    schema.items.c.member_id,
    schema.items.c.url,
    schema.items.c.title_key,
    schema.items.c.published,
    schema.items.c.match_features,
).where(schema.items.c.id.in_(bindparam("ids", expanding=True)))
# The text of candidates stored without (current) match features: rows older than 0006.
CANDIDATE_TEXTS = select(
    schema.items.c.id, schema.items.c.content_html, schema.items.c.summary
).where(schema.items.c.id.in_(bindparam("ids", expanding=True)))


def candidate_ids(connection: Connection, item: Item) -> list[int]:
    """Other members' items sharing a candidate key with `item` within its window (the
    link window for links), the MAX_CANDIDATES best first (candidate_index.rank_candidates):
    a shared link, then the same title, then the most distinctive title words shared, then
    the nearest in time. The database's answer; LiveCandidates gives the same from memory."""
    keys = lookup_keys(item.title, item.url)
    parameters: dict[str, Any] = {"at": item.published, "member": item.member_id}
    for index, lookup in enumerate(keys):
        parameters[f"key{index}"] = lookup.key
        parameters[f"earliest{index}"] = item.published - lookup.window
        parameters[f"latest{index}"] = item.published + lookup.window
    statement = _candidates_statement(tuple(lookup.rank for lookup in keys))
    rows = connection.execute(statement, parameters).all()
    return rank_candidates(
        (Found(row.item_id, row.shared, row.rank, row.published) for row in rows), item.published
    )


def bounded_date(claimed: datetime, stored: datetime, first_seen: datetime) -> datetime:
    """An edited item's date: a claim may move it back, but never before both its stored
    date and BACKDATE_LIMIT before it was first seen (re-dating to 1990 moves nothing)."""
    floor = min(stored, first_seen - BACKDATE_LIMIT)
    return max(claimed, floor)


def refresh_story_dates(connection: Connection, story_id: int) -> None:
    """A story's dates are those of the item that speaks for it (speaking_item): members
    joining it later, whatever dates they claim, never move it."""
    items = schema.items.c
    rows = connection.execute(
        select(items.id, items.published, items.updated, items.first_seen_at).where(
            items.story_id == story_id
        )
    ).all()
    if not rows:
        return
    row = speaking_item(rows)
    published, updated = row.published, row.updated
    connection.execute(
        update(schema.stories)
        .where(schema.stories.c.id == story_id)
        .values(published=published, updated=max(published, updated))
    )


# What merge_same_round decides on, for every item of the stories it may merge.
_GROUP_COLUMNS = ("id", "story_id", "member_id", "url", "first_seen_at", "merge_reason")
_GROUP_ROWS = select(*(schema.items.c[name] for name in _GROUP_COLUMNS)).where(
    schema.items.c.story_id.in_(bindparam("ids", expanding=True))
)


def merge_same_round(
    connection: Connection,
    found: Match,
    *,
    member_id: str,
    url: str | None,
    seen_at: datetime,
) -> int:
    """The story a new item (of `member_id`, at `url`, first seen at `seen_at`) joins, after
    merging into it the other stories the rule matched (found.others) that came in the same
    round of polls.

    Had the new item been stored first, each of those stories' items would have matched it
    and joined its story: which of them came first is an accident of how the round's polls
    finished, so they become one story whatever the order. A story is merged only when
    every item of it was first seen within SAME_ROUND of `seen_at` (a story readers saw
    before this round is never taken away from a feed: a member joining it adds a credit
    and nothing else), when no staff keep_apart: separates it from the stories it joins, and
    when it shares no member with them (a member's two posts are two stories; the rule
    never puts them together directly, so a bridge must not either). The surviving story
    is the chosen one when it was seen before the round, else the oldest row (the id a
    reader may already have been shown first); its dates are refreshed from the item that
    speaks for it (speaking_item: the earliest published of the round, whatever the order).
    """
    if not found.others or found.rule == STAFF_MERGE:
        return found.story_id
    bridges = {other.story_id: other for other in found.others}
    rows = connection.execute(_GROUP_ROWS, {"ids": sorted({found.story_id, *bridges})}).all()
    by_story: dict[int, list[Any]] = {}
    for row in rows:
        by_story.setdefault(row.story_id, []).append(row)
    group = list(by_story.get(found.story_id, []))
    members = {member_id, *(row.member_id for row in group)}
    earliest = seen_at - SAME_ROUND
    merged: list[int] = []
    for story_id in sorted(bridges):
        own = by_story.get(story_id, [])
        if (
            not own
            or any(row.first_seen_at < earliest for row in own)
            or members & {row.member_id for row in own}
            or _kept_apart(connection, [*group, *own], {row.id for row in own})
        ):
            continue
        merged.append(story_id)
        group += own
        members |= {row.member_id for row in own}
    if not merged:
        return found.story_id
    # A chosen story seen before this round keeps its id (its readers keep it); else the
    # oldest row, whichever item of the round came first.
    earlier_seen = any(row.first_seen_at < earliest for row in by_story.get(found.story_id, []))
    survivor = found.story_id if earlier_seen else min(found.story_id, *merged)
    for row in group:
        if row.story_id == survivor:
            continue
        bridge = bridges.get(row.story_id, found)
        connection.execute(
            update(schema.items)
            .where(schema.items.c.id == row.id)
            .values(
                story_id=survivor,
                merge_reason=_same_round_evidence(
                    bridge, member_id=member_id, url=url, earlier=row.merge_reason
                ),
            )
        )
    gone = sorted({found.story_id, *merged} - {survivor})
    connection.execute(delete(schema.stories).where(schema.stories.c.id.in_(gone)))
    refresh_story_dates(connection, survivor)
    return survivor


def _kept_apart(connection: Connection, rows: Sequence[Any], moving: set[int]) -> bool:
    """Whether a staff keep_apart: group names an item of `moving` (item ids) and another
    of `rows` that is not moving."""
    addresses: dict[str, set[int]] = {}
    for row in rows:
        if row.url is not None:
            for variant in slash_variants(row.url):
                addresses.setdefault(variant, set()).add(row.id)
    if not addresses:
        return False
    table = schema.story_corrections.c
    listed = connection.execute(
        select(table.group_id, table.url).where(
            table.kind == "keep_apart", table.url.in_(sorted(addresses))
        )
    ).all()
    groups: dict[int, set[int]] = {}
    for entry in listed:
        groups.setdefault(entry.group_id, set()).update(addresses[entry.url])
    return any(ids & moving and ids - moving for ids in groups.values())


def _same_round_evidence(
    bridge: Match, *, member_id: str, url: str | None, earlier: object
) -> dict[str, object]:
    """items.merge_reason of an item moved by merge_same_round: the new item that bridged
    the stories, and why the rule matched it with this item's story."""
    evidence: dict[str, object] = {
        "rule": SAME_ROUND_MERGE,
        "bridging_member": member_id,
        "bridging_url": url,
        "matched_member": member_id,
        "bridge": bridge.evidence,
    }
    if earlier is not None:
        evidence["earlier"] = earlier
    return evidence


# Rows read back for recent_merges before the staff merges are left out (staff made those).
_RECENT_MERGES_READ = 200


class StoriesMixin(StoreBase):
    """What staff read about stories: their items and why they were merged."""

    def recent_merges(self, since: datetime, limit: int) -> list[MergeRecord]:
        """The latest items the automatic rule joined to another member's story, first seen
        at or after `since`, newest first (an indexed read of the newest items)."""
        items = schema.items.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    items.member_id,
                    items.title,
                    items.url,
                    items.first_seen_at,
                    items.merge_reason,
                    schema.stories.c.uid,
                )
                .join(schema.stories, schema.stories.c.id == items.story_id)
                .where(items.first_seen_at >= since, items.merge_reason.is_not(None))
                .order_by(items.first_seen_at.desc(), items.id.desc())
                .limit(_RECENT_MERGES_READ)
            ).all()
        found = []
        for row in rows:
            evidence = row.merge_reason
            if not isinstance(evidence, dict) or evidence.get("rule") == STAFF_MERGE:
                continue
            matched = str(evidence.get("matched_member", ""))
            if matched == row.member_id:
                continue
            found.append(
                MergeRecord(
                    story_id=f"urn:uuid:{row.uid}",
                    member_id=row.member_id,
                    title=row.title,
                    url=row.url,
                    first_seen_at=row.first_seen_at,
                    matched_member=matched,
                    rule=str(evidence.get("rule", "")),
                    evidence=evidence,
                )
            )
        return found[:limit]

    def story_record(self, target: str) -> StoryRecord | None:
        """The story named by its id ("urn:uuid:…") or one of its items' canonical links."""
        items = schema.items.c
        with self.engine.connect() as connection:
            if target.startswith("urn:uuid:"):
                story = connection.execute(
                    select(schema.stories).where(
                        schema.stories.c.uid == target.removeprefix("urn:uuid:")
                    )
                ).one_or_none()
            else:
                story = connection.execute(
                    select(schema.stories)
                    .join(schema.items, items.story_id == schema.stories.c.id)
                    .where(items.url == target)
                    .limit(1)
                ).one_or_none()
            if story is None:
                return None
            rows = connection.execute(
                select(schema.items).where(items.story_id == story.id).order_by(items.id)
            ).all()
        first = speaking_item(rows)
        ordered = sorted(rows, key=lambda row: (row is not first, row.first_seen_at, row.id))
        return StoryRecord(
            id=f"urn:uuid:{story.uid}",
            published=story.published,
            items=tuple(
                StoryItemRecord(
                    item_id=row.id,
                    member_id=row.member_id,
                    title=row.title,
                    url=row.url,
                    published=row.published,
                    first_seen_at=row.first_seen_at,
                    merge_reason=row.merge_reason,
                )
                for row in ordered
            ),
        )
