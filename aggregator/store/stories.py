"""The story side of the store: the cross-post candidate index, which item speaks for a
story, and what staff read about a story and its merges (`aggregator story`).

The index holds each item under dedupe.candidate_keys, so a new item's candidates are a few
bounded range reads in one statement, never a scan, ranked by how much they share with the
item and capped, so the rule's work per item does not grow with the database. A writing
process holds the same rows in memory (LiveCandidates over candidate_index.CandidateIndex)
and asks the database only where memory does not cover. Stories of one round of polls
that a new item matches are merged (merge_same_round), so a round's stories do not
depend on the order its polls finished. This module must never decide what matches
(dedupe.py does), a member joining a story must never change what the story shows or its
date, and a story seen before the current round must never be merged away.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from typing import Any
from typing import TypeVar
from typing import cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import event
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
from aggregator.store.candidate_index import EVERYTHING
from aggregator.store.candidate_index import MAX_CANDIDATES as MAX_CANDIDATES
from aggregator.store.candidate_index import MAX_CANDIDATES_PER_KEY
from aggregator.store.candidate_index import CandidateIndex
from aggregator.store.candidate_index import Found
from aggregator.store.candidate_index import lookup_keys
from aggregator.store.candidate_index import micros
from aggregator.store.candidate_index import rank_candidates
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


# Entries (one per item and key) the in-memory index holds at most: about 80 bytes each,
# so 40 MB; a database with more, or a round that grows past it, is matched by SQL.
MAX_LIVE_ENTRIES = 500_000
# Item ids below the highest seen that were not seen (another process's transaction still
# open when this one read, on PostgreSQL, whose sequence hands out ids before commits):
# looked for again at each sync, the newest this many at most.
MAX_ID_GAPS = 2_000
_T = TypeVar("_T")
_ROWS = select(_KEYS.item_id, _KEYS.key, _KEYS.published, _KEYS.member_id)
_NEWER_ROWS = _ROWS.where(_KEYS.item_id > bindparam("after"))
_GAP_ROWS = _ROWS.where(_KEYS.item_id.in_(bindparam("ids", expanding=True)))


class LiveCandidates:
    """candidate_ids answered from memory for the write transactions of one engine.

    The index (candidate_index.CandidateIndex) is filled once from story_keys (all of it,
    when it has at most MAX_LIVE_ENTRIES rows; else it stays empty and every lookup goes to
    SQL), then kept current:
    - this process's writes are told to it by save_story_keys (a replaced item's keys
      replace its entries), so a round's own new items are candidates at once;
    - at the first lookup of each transaction (after its locks: base.lock_for_sources) it
      reads the rows other processes committed since: ids above the highest it holds, and
      the ids it skipped (gaps: a PostgreSQL transaction still open when it last read);
    - a transaction or savepoint rolled back after it wrote through it empties it (the
      next lookup loads it again), so a rolled-back item is never a candidate;
    - this process's retention prune empties it, and an id the store finds gone
      (CANDIDATE_ROWS without it: another process's prune) empties it too; the next
      lookup reads it whole.
    Limits: another process's edit of an item's title or link, and its deletes, are seen
    when the index is next read whole (as above), not at once; on SQLite, an id another
    process frees by deleting the newest items and hands out again before this process's
    next transaction is not read again until then. SQLite deployments have one writing
    process (base.StoreBase.singleton); PostgreSQL's workers hold advisory locks on the
    titles and links they write, so a new item's strongest candidates are never another
    worker's uncommitted rows in either path. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: CandidateIndex | None = None
        self._stale = True
        self._highest = 0
        self._gaps: set[int] = set()
        self._with_gaps = False
        self._transaction: Any = None
        self._cached: dict[object, object] = {}
        # Connections whose open transaction wrote to or read into the index: their
        # rollback must empty it.
        self._touched: set[Connection] = set()

    def lookup(self, connection: Connection, item: Item) -> list[int] | None:
        """candidate_ids(connection, item) from memory; None where the index does not
        cover (too large, the windows outside it, no transaction): ask the database."""
        keys = lookup_keys(item.title, item.url)
        with self._lock:
            if not self._begin(connection) or self._index is None:
                return None
            return self._index.candidates(keys, item.published, item.member_id)

    def per_transaction(self, connection: Connection, read: Callable[[Connection], _T]) -> _T:
        """`read(connection)`, read once per transaction (for small tables staff write,
        such as story_corrections)."""
        with self._lock:
            if self._begin(connection) and read in self._cached:
                return cast(_T, self._cached[read])
        value = read(connection)
        with self._lock:
            if self._transaction is connection.get_transaction():
                self._cached[read] = value
        return value

    def note(
        self,
        connection: Connection,
        item_id: int,
        member_id: str,
        published: datetime,
        keys: Sequence[str],
    ) -> None:
        """save_story_keys wrote these keys for the item (in place of its old ones)."""
        with self._lock:
            if self._index is None or self._stale:
                return
            self._touched.add(connection)
            self._index.add(item_id, member_id, published, keys)
            self._gaps.discard(item_id)
            # Before this transaction's first read of others' rows, ids below this one may
            # be theirs, not yet read: the highest id read moves only after that read.
            if self._transaction is connection.get_transaction():
                self._passed(item_id)

    def gone(self, item_ids: Iterable[int]) -> None:
        """Items the index gave that are no longer stored: dropped now; read whole next."""
        with self._lock:
            if self._index is not None:
                self._index.discard(item_ids)
        self.invalidate()

    def invalidate(self) -> None:
        """Items were deleted (retention): read the index whole at the next lookup. A
        deleted entry must not stay, even unreturned: it would hold a place under a
        key's cap that a stored item has in the database's answer."""
        with self._lock:
            self._stale = True
            self._index = None
            self._transaction = None

    def entries(self) -> int:
        with self._lock:
            return 0 if self._index is None else len(self._index)

    def _begin(self, connection: Connection) -> bool:
        """Bring the index up to date for `connection`'s transaction, once per transaction.
        False outside a transaction."""
        transaction = connection.get_transaction()
        if transaction is None:
            return False
        if transaction is self._transaction:
            return True
        self._cached.clear()
        self._touched.add(connection)
        self._with_gaps = connection.dialect.name == "postgresql"
        if self._stale:
            self._load(connection)
        elif self._index is not None and not self._index.full:
            self._refresh(connection)
        self._transaction = transaction
        return True

    def _load(self, connection: Connection) -> None:
        rows = connection.execute(_ROWS.limit(MAX_LIVE_ENTRIES + 1)).all()
        self._stale = False
        self._gaps.clear()
        if len(rows) > MAX_LIVE_ENTRIES:
            self._index = None
            return
        self._index = CandidateIndex(covers_from=EVERYTHING, max_entries=MAX_LIVE_ENTRIES)
        self._index.load(
            (row.item_id, row.key, micros(row.published), row.member_id) for row in rows
        )
        self._highest = max((row.item_id for row in rows), default=0)
        if self._with_gaps:
            held = set(self._index.item_ids())
            self._gaps = {
                number
                for number in range(max(1, self._highest - MAX_ID_GAPS), self._highest)
                if number not in held
            }

    def _refresh(self, connection: Connection) -> None:
        assert self._index is not None
        rows = list(connection.execute(_NEWER_ROWS, {"after": self._highest}))
        gaps = sorted(self._gaps)
        for start in range(0, len(gaps), _GAP_CHUNK):
            rows += connection.execute(_GAP_ROWS, {"ids": gaps[start : start + _GAP_CHUNK]})
        found: dict[int, tuple[str, datetime, list[str]]] = {}
        for row in rows:
            found.setdefault(row.item_id, (row.member_id, row.published, []))[2].append(row.key)
        for item_id, (member_id, published, keys) in found.items():
            self._index.add(item_id, member_id, published, keys)
            self._gaps.discard(item_id)
        for item_id in sorted(found):
            self._passed(item_id)

    def _passed(self, item_id: int) -> None:
        """`item_id` is read or written: ids between the highest before and it that are
        not held are gaps (PostgreSQL; SQLite hands ids out under its one write lock, in
        commit order, so it has none to wait for)."""
        if item_id <= self._highest:
            return
        if self._with_gaps and self._index is not None:
            self._gaps.update(
                number
                for number in range(max(self._highest + 1, item_id - MAX_ID_GAPS), item_id)
                if number not in self._index
            )
            if len(self._gaps) > MAX_ID_GAPS:
                self._gaps = set(sorted(self._gaps)[-MAX_ID_GAPS:])
        self._highest = item_id

    def _ended(self, connection: Connection, *, rolled_back: bool) -> None:
        with self._lock:
            if connection not in self._touched:
                return
            self._touched.discard(connection)
            if rolled_back:
                self._stale = True
                self._index = None
            self._transaction = None
            self._cached.clear()

    def _savepoint_rolled_back(self, connection: Connection) -> None:
        with self._lock:
            if connection in self._touched:
                self._stale = True
                self._index = None
                self._transaction = None


# IN lists of the gaps read again (well under every database's parameter limit).
_GAP_CHUNK = 500
_LIVE: WeakKeyDictionary[Engine, LiveCandidates] = WeakKeyDictionary()
_LIVE_GUARD = threading.Lock()


def live_candidates(engine: Engine) -> LiveCandidates:
    """The engine's LiveCandidates, made on first use. Kept per engine (not per Store
    method call) because save_story_keys, which sees only a connection, must reach it."""
    with _LIVE_GUARD:
        live = _LIVE.get(engine)
        if live is None:
            live = _LIVE[engine] = LiveCandidates()
            event.listen(engine, "commit", lambda conn: live._ended(conn, rolled_back=False))
            event.listen(engine, "rollback", lambda conn: live._ended(conn, rolled_back=True))
            event.listen(
                engine,
                "rollback_savepoint",
                lambda conn, _name, _context: live._savepoint_rolled_back(conn),
            )
        return live


def forget_deleted_items(engine: Engine) -> None:
    """Items were deleted through `engine` (and committed): its LiveCandidates, if any,
    reads story_keys whole at its next lookup."""
    live = _LIVE.get(engine)
    if live is not None:
        live.invalidate()


def noted_live_candidates(engine: Engine) -> LiveCandidates | None:
    """The engine's LiveCandidates if a lookup made one (writes alone never do)."""
    return _LIVE.get(engine)


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
